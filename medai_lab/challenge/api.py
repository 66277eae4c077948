"""The challenge as a Python object: create, submit, evaluate, results, leaderboard, viewer.

>>> from medai_lab.challenge import Challenge
>>> ch = Challenge.create("hack", "challenge.yaml")                 # doctest: +SKIP
>>> ch.submit("liver.ts", team="owls")                              # doctest: +SKIP
>>> ch.evaluate()                                                   # doctest: +SKIP
>>> ch.leaderboard("validation")                                    # doctest: +SKIP

A challenge folder holds ``challenge.yaml`` (the validated spec, absolute paths),
``challenge.db`` (SQLite), ``submissions/<sha256>/`` (read-only copies) and
``results/<id>/`` (checked predictions and the per-case CSV). The hidden images and labels
stay where the spec says; only the evaluating process reads the labels.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from medai_lab.challenge.errors import ChallengeError, QuotaError
from medai_lab.challenge.spec import ENTRY as ENTRY  # re-exported (format -> entry name)
from medai_lab.challenge.spec import Spec, load_spec, parse_spec
from medai_lab.challenge.store import Store, utc_now

SPEC_FILE, DB_FILE = "challenge.yaml", "challenge.db"
_TEAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def resolve_team(team: str | None = None) -> str:
    """``team``, else the JupyterHub user (``$JUPYTERHUB_USER``); checked for a safe name."""
    name = team or os.environ.get("JUPYTERHUB_USER", "")
    if not name:
        raise ChallengeError(
            "no team: pass --team NAME (on the hub, your JupyterHub user name is used)"
        )
    if not _TEAM.match(name):
        raise ChallengeError(f"team name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
    return name


class Challenge:
    """One challenge folder (see module docstring); open with :meth:`open` or :meth:`create`."""

    def __init__(self, root: str | os.PathLike[str], spec: Spec) -> None:
        self.root = Path(root).resolve()
        self.spec = spec
        self.store = Store(self.root / DB_FILE)

    # --- set-up ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls, root: str | os.PathLike[str], spec: str | os.PathLike[str] | Spec | Mapping[str, Any]
    ) -> Challenge:
        """Make a new challenge folder from a spec (YAML path, mapping or :class:`Spec`)."""
        import yaml

        from medai_lab import atomic

        if isinstance(spec, Spec):
            parsed = spec
        elif isinstance(spec, Mapping):
            parsed = parse_spec(spec, base=Path.cwd())
        else:
            parsed = load_spec(spec)
        root = Path(root)
        if (root / DB_FILE).exists() or (root.exists() and any(root.iterdir())):
            raise ChallengeError(f"challenge folder is not empty: {root}")
        for phase in parsed.phases:
            if root.resolve() in (phase.images, phase.labels) or any(
                root.resolve() in p.parents for p in (phase.images, phase.labels)
            ):
                raise ChallengeError("keep the phase data outside the challenge folder")
        (root / "submissions").mkdir(parents=True, exist_ok=True)
        (root / "results").mkdir(exist_ok=True)
        text = yaml.safe_dump(parsed.to_dict(), sort_keys=False)
        atomic.write_text(root / SPEC_FILE, text)
        ch = cls(root, parsed)
        ch.store.create()
        return ch

    @classmethod
    def create_from_data(
        cls,
        root: str | os.PathLike[str],
        task: str,
        *,
        validation: str | os.PathLike[str] | None = None,
        test: str | os.PathLike[str] | None = None,
        name: str | None = None,
        **limits: Any,
    ) -> Challenge:
        """A challenge from MSD-layout folders (``imagesTr/`` + ``labelsTr/``), default settings."""
        phases: dict[str, Any] = {}
        if validation is not None:
            phases["validation"] = {"hidden": False, "data": str(Path(validation).resolve())}
        if test is not None:
            phases["test"] = {"hidden": True, "data": str(Path(test).resolve())}
        if not phases:
            raise ChallengeError("give a validation and/or a test data folder")
        raw = {"name": name or f"{task}-challenge", "task": task, "phases": phases}
        if limits:
            raw["limits"] = limits
        return cls.create(root, raw)

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Challenge:
        """An existing challenge folder."""
        root = Path(root)
        if not (root / SPEC_FILE).is_file() or not (root / DB_FILE).is_file():
            raise ChallengeError(f"not a challenge folder (no {SPEC_FILE}): {root}")
        return cls(root, load_spec(root / SPEC_FILE))

    # --- submitting -----------------------------------------------------------------------

    def submit(
        self,
        path: str | os.PathLike[str],
        *,
        team: str | None = None,
        phase: str | None = None,
        fmt: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """Check, store and queue a submission; its database row (``id``, ``status``...).

        Raises :class:`QuotaError` when the team has used its submissions for the UTC day,
        and :class:`ChallengeError` for an invalid or repeated submission.
        """
        from medai_lab.challenge import submission

        team = resolve_team(team)
        ph = self.spec.phase(phase)
        now = now or utc_now()
        day = now.astimezone(timezone.utc).date().isoformat()
        with self.store.connect() as con:
            self._check_quota(con, team, ph.name, ph.submissions_per_day, day, now)
        cand = submission.inspect(path, self.spec, ph, fmt)
        sha = submission.content_hash(cand.files)
        stored = submission.store(cand, self.root / "submissions", sha)
        with self.store.connect(write=True) as con:
            same = self.store.find(con, team, ph.name, sha)
            if same is not None:
                raise ChallengeError(
                    f"identical to submission {same['id']} of {same['created_at']}; "
                    "not queued again"
                )
            self._check_quota(con, team, ph.name, ph.submissions_per_day, day, now)
            self.store.set_quotas(con, {p.name: p.submissions_per_day for p in self.spec.phases})
            try:
                new_id = self._insert(con, cand, sha, team, ph.name, now, day, stored)
            except sqlite3.IntegrityError as exc:
                if "quota" not in str(exc):
                    raise
                self._check_quota(con, team, ph.name, ph.submissions_per_day, day, now)
                raise
        row = self.store.get(new_id)
        assert row is not None
        return row

    def _insert(self, con: Any, cand: Any, sha: str, team: str, phase: str, now: datetime,
                day: str, stored: Path) -> int:  # fmt: skip
        return self.store.insert(
            con,
            sha256=sha,
            team=team,
            phase=phase,
            format=cand.fmt,
            created_at=now.astimezone(timezone.utc).isoformat(timespec="seconds"),
            day=day,
            size_bytes=cand.size_bytes,
            path=str(stored.relative_to(self.root)),
        )

    def _check_quota(
        self, con: Any, team: str, phase: str, limit: int, day: str, now: datetime
    ) -> None:
        used = self.store.count_today(con, team, phase, day)
        if used >= limit:
            start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
            wait = start + timedelta(days=1) - now.astimezone(timezone.utc)
            hours, minutes = divmod(max(0, int(wait.total_seconds())) // 60, 60)
            raise QuotaError(
                f"team {team!r} has used its {limit} submission(s) for phase {phase!r} today "
                f"(UTC); the next one is accepted after 00:00 UTC, in {hours} h {minutes} min"
            )

    # --- evaluating -----------------------------------------------------------------------

    def evaluate(
        self,
        *,
        max_submissions: int | None = None,
        watch_s: float = 0.0,
        track: bool = True,
        tracking_uri: str | None = None,
        sandbox_dir: str | os.PathLike[str] | None = None,
        log: Callable[[str], None] | None = None,
        workers: int = 1,
        gpu_pool: Any = None,
        stale_s: float | None = None,
    ) -> list[dict[str, Any]]:
        """Score queued submissions, ``workers`` at once; keep polling for ``watch_s`` seconds.

        Teams take turns (round-robin, each team's oldest first, at most
        ``limits.team_concurrency`` running per team). ``gpu_pool``: an allocator of GPU units
        (the hub's ``GpuAllocator``), see :mod:`.slots`. Submissions left running by a dead
        evaluator (or one silent for ``stale_s`` seconds) are queued again first.
        Returns the results (as :meth:`result` for the instructor) of what was evaluated;
        raises :class:`ChallengeError` when the disk is full (see :mod:`.evaluator`).
        """
        from medai_lab.challenge.claims import STALE_S
        from medai_lab.challenge.evaluator import evaluate_queue

        return evaluate_queue(
            self, workers=workers, max_submissions=max_submissions, watch_s=watch_s,
            track=track, tracking_uri=tracking_uri, sandbox_dir=sandbox_dir, log=log,
            gpu_pool=gpu_pool, stale_s=STALE_S if stale_s is None else stale_s,
        )  # fmt: skip

    def dry_run(
        self, path: str | os.PathLike[str], team: str | None = None, **options: Any
    ) -> dict[str, Any]:
        """Run a submission in the evaluation sandbox on visible cases; nothing is stored.

        No test slot is used and the leaderboard does not change. Options (``phase``, ``fmt``,
        ``max_cases``, ``sandbox_dir``, ``gpu_pool``) and the report: :func:`.dryrun.dry_run`.
        """
        from medai_lab.challenge.dryrun import dry_run

        return dry_run(self, path, team, **options)

    # --- results --------------------------------------------------------------------------

    def result(self, submission_id: int, team: str | None = "") -> dict[str, Any]:
        """Status and scores of a submission.

        ``team=None`` is the instructor's view (everything). A team (default: the hub user)
        sees only its own submissions, and per-case rows only in a phase that is not hidden.
        """
        row = self.store.get(int(submission_id))
        if row is None:
            raise ChallengeError(f"no submission {submission_id}")
        if team is not None:
            who = resolve_team(team or None)
            if row["team"] != who:
                raise ChallengeError(f"submission {submission_id} is not one of team {who!r}'s")
        hidden = self.spec.phase(row["phase"]).hidden
        out: dict[str, Any] = {k: row[k] for k in ("id", "team", "phase", "format", "status")}
        out["submitted"] = row["created_at"]
        out["hidden"] = hidden
        if team is None:
            out["sha256"], out["notes"] = row["sha256"], row["notes"]
        score = self.store.score(int(submission_id))
        if score is not None:
            out["score"] = {k: v for k, v in score.items() if k != "submission_id"}
            if team is not None and hidden:
                from medai_lab.challenge.feedback import public_score

                rows = self.store.metric_rows(int(submission_id))
                feedback = self.spec.phase(row["phase"]).feedback
                out["score"] = public_score(
                    self.spec, feedback, int(submission_id), out["score"], rows
                )
            if team is None or not hidden:
                status = {c["case"]: c for c in self.store.case_rows(int(submission_id))}
                out["cases"] = [
                    {**r, "status": status.get(r["case"], {}).get("status")}
                    for r in self.store.metric_rows(int(submission_id))
                ]
        return out

    def submissions(
        self, team: str | None = None, phase: str | None = None
    ) -> list[dict[str, Any]]:
        """The queue and history: one row per submission (no scores, no evaluator leases)."""
        internal = ("lease", "heartbeat_at", "claim_seq")
        rows = self.store.submissions(team, phase)
        return [{k: v for k, v in r.items() if k not in internal} for r in rows]

    def requeue_stale(self, every: bool = False) -> int:
        """Queue again what a killed evaluator left 'running' (``every``: all running ones)."""
        from medai_lab.challenge.claims import requeue_stale

        return len(requeue_stale(self.store, every=every))

    # --- leaderboard and viewer -----------------------------------------------------------

    def leaderboard(self, phase: str | None = None, *, public: bool = False) -> Any:
        """The ranked table of a phase (pandas DataFrame); see :mod:`.leaderboard`.

        ``public``: the teams' view of a hidden phase with feedback settings (:mod:`.feedback`).
        """
        from medai_lab.challenge.leaderboard import build

        return build(self, self.spec.phase(phase).name, public=public)

    def leaderboard_html(self, phase: str | None = None) -> str:
        from medai_lab.challenge.leaderboard import build, to_html

        ph = self.spec.phase(phase)
        return to_html(build(self, ph.name), self.spec, ph)

    def leaderboard_widget(self, phase: str | None = None) -> Any:
        from medai_lab.challenge.leaderboard import widget

        return widget(self, self.spec.phase(phase).name)

    def case_paths(self, submission_id: int, case: str, team: str | None = None) -> dict[str, Path]:
        """Image, truth and prediction files of one of a team's own validation cases."""
        res = self.result(submission_id, team=team or "")
        if res["hidden"]:
            raise ChallengeError(
                f"phase {res['phase']!r} is hidden: only aggregate scores are shown"
            )
        from medai_lab.challenge.runner import phase_cases, prediction_file

        phase = self.spec.phase(res["phase"])
        images = phase_cases(phase)
        if case not in images:
            raise ChallengeError(f"no case {case!r} in phase {phase.name!r}")
        pred = prediction_file(self.root / "results" / str(submission_id) / "predictions", case)
        if not pred.is_file():
            raise ChallengeError(f"submission {submission_id} has no scored prediction yet")
        truth = prediction_file(phase.labels, case)
        return {"image": images[case], "truth": truth, "prediction": pred}

    def view(self, submission_id: int, case: str, team: str | None = None) -> Any:
        """Open one of a team's validation cases in the viewer (truth and prediction overlays)."""
        paths = self.case_paths(submission_id, case, team)
        try:
            from medai_lab.widgets import view
        except ImportError:
            raise ChallengeError(
                "the viewer (medai_lab.widgets) is not installed; case_paths() gives the files"
            ) from None
        return view(paths["image"], labels=paths["truth"], prediction=paths["prediction"])


def describe_result(res: dict[str, Any]) -> str:
    """One line for the evaluator's log (no per-case data)."""
    head = (
        f"submission {res['id']} ({res['team']}, {res['phase']}, {res['format']}): {res['status']}"
    )
    score = res.get("score")
    if not score:
        return head
    fails = ", ".join(f"{n} {c}" for c, n in score["failures"].items()) or "none"
    return (
        f"{head}: Dice {_f(score['dice_mean'])}, HD95 {_f(score['hd95_mean'])} mm, "
        f"NSD {_f(score['nsd_mean'])}; failed cases: {fails}"
    )


def _f(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"
