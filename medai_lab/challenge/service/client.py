"""Talk to the hub's challenge service: what ``medai-lab challenge submit --hub`` and the Lab use.

>>> c = Client.from_hub("https://hub.example.org")  # token: $JUPYTERHUB_API_TOKEN  # doctest: +SKIP
>>> c.submit("liver.ts", phase="validation")                                 # doctest: +SKIP
>>> c.status()                                                               # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from medai_lab.challenge.errors import ChallengeError
from medai_lab.challenge.service import SERVICE
from medai_lab.challenge.service.archive import pack, upload_cap

TIMEOUT_S = 600.0  # a large upload over a slow link


class ServiceError(ChallengeError):
    """The service refused or failed a request; ``status`` is its HTTP status (0: unreachable)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def service_url(hub: str) -> str:
    """The service's URL from the hub's public URL (or the service URL itself)."""
    hub = hub.rstrip("/")
    if not hub.startswith(("http://", "https://")):
        raise ChallengeError(f"--hub must be an http(s) URL, got {hub!r}")
    if hub.endswith(f"/services/{SERVICE}"):
        return hub
    return f"{hub.removesuffix('/hub')}/services/{SERVICE}"


class Client:
    """The challenge service at ``url``, called with a JupyterHub ``token``."""

    def __init__(self, url: str, token: str) -> None:
        if not token:
            raise ChallengeError(
                "no JupyterHub token: pass --token, or run this in a hub server's terminal "
                "(JUPYTERHUB_API_TOKEN is set there)"
            )
        self.url, self.token = url.rstrip("/"), token

    @classmethod
    def from_hub(cls, hub: str, token: str | None = None) -> Client:
        """The service of the hub at ``hub``; token default: ``$JUPYTERHUB_API_TOKEN``."""
        return cls(service_url(hub), token or os.environ.get("JUPYTERHUB_API_TOKEN", ""))

    def info(self) -> dict[str, Any]:
        """Challenge name, phases, limits and the caller's team."""
        return self._call("GET", "info")

    def status(self, phase: str | None = None) -> list[dict[str, Any]]:
        """The caller's own submissions, newest first."""
        return self._call("GET", "submissions", params={"phase": phase})

    def result(self, submission_id: int) -> dict[str, Any]:
        """One of the caller's submissions."""
        return self._call("GET", f"submissions/{int(submission_id)}")

    def leaderboard(self, phase: str | None = None) -> dict[str, Any]:
        """``{"phase", "hidden", "rows"}`` of a phase."""
        return self._call("GET", "leaderboard", params={"phase": phase})

    def submit(
        self, path: str | os.PathLike[str], *, phase: str | None = None, fmt: str | None = None
    ) -> dict[str, Any]:
        """Pack ``path`` (model file + sidecar, package or predictions folder) and submit it."""
        limit_mb = float(self.info()["submission_mb"])
        with tempfile.TemporaryDirectory(prefix="medai-submit-") as tmp:
            archive, entry = pack(path, tmp)
            size = Path(archive).stat().st_size
            if size > upload_cap(limit_mb):  # refused here, not by a cut connection mid-upload
                raise ServiceError(
                    f"the submission packs to {size / 2**20:.1f} MiB; the limit is "
                    f"{limit_mb:g} MiB",
                    413,
                )
            params = {"phase": phase, "format": fmt, "entry": entry}
            with open(archive, "rb") as body:
                return self._call(
                    "POST",
                    "submissions",
                    params=params,
                    data=body,
                    headers={
                        "Content-Type": "application/zip",
                        "Content-Length": str(Path(archive).stat().st_size),
                    },
                )

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        import requests

        headers = {"Authorization": f"token {self.token}", **kw.pop("headers", {})}
        params = {k: v for k, v in (kw.pop("params", None) or {}).items() if v is not None}
        try:
            r = requests.request(
                method, f"{self.url}/api/{path}", headers=headers, params=params,
                timeout=TIMEOUT_S, allow_redirects=False, **kw,
            )  # fmt: skip
        except requests.RequestException as exc:
            raise ServiceError(f"cannot reach the challenge service at {self.url}: {exc}") from None
        if r.status_code < 300:
            return r.json()
        try:
            message = str(r.json().get("message") or r.reason)
        except ValueError:
            message = f"{r.status_code} {r.reason}"
        if r.status_code == 404 and "has no submission" not in message:
            message = f"no challenge service at {self.url} (is the hub started with --challenge?)"
        raise ServiceError(f"challenge service: {message}", r.status_code)


# --- the terminal (medai-lab challenge submit|status|leaderboard --hub URL) -------------------


def submit_line(
    hub: str,
    path: str | os.PathLike[str],
    *,
    token: str | None = None,
    phase: str | None = None,
    fmt: str | None = None,
) -> str:
    """Submit ``path`` through the hub's service; the one line to print."""
    row = Client.from_hub(hub, token).submit(path, phase=phase, fmt=fmt)
    return (
        f"submission {row['id']} accepted for team {row['team']}, phase {row['phase']} "
        f"({row['format']}): {row['status']}"
    )


def status_lines(hub: str, *, token: str | None = None, phase: str | None = None) -> list[str]:
    """One line per submission of the caller's team, newest first."""
    from medai_lab.challenge.api import describe_result

    rows = Client.from_hub(hub, token).status(phase)
    return [describe_result(r) for r in rows] or ["no submissions yet"]
