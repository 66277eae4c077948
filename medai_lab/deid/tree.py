"""De-identify a folder tree: parallel, atomic, audited; every input accounted for once.

Output: ``OUT/<study>/<series>/<sop>.dcm`` named by the new UIDs (input names may carry
identity), ``OUT/quarantine/<input path>`` plus ``.reason.txt`` for files that cannot be
de-identified safely, and ``OUT/deid_audit.csv``. Workers write to a private temporary
folder inside OUT; files are renamed into place in sorted input order, so reruns with the
same key give byte-identical trees.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from medai_lab import atomic
from medai_lab.deid.engine import Deidentifier
from medai_lab.deid.keys import load_or_create_key
from medai_lab.deid.profile import Profile
from medai_lab.deid.report import COUNT_COLUMNS, DeidReport
from medai_lab.errors import MedaiError

AUDIT_NAME = "deid_audit.csv"
QUARANTINE = "quarantine"
_TMP = ".medai-deid-partial"
_BATCH = 32
_QUARANTINE_NOTE = (
    "Files here were NOT de-identified: they are copies of the inputs, identifiers and all.\n"
    "Each has a .reason.txt. Never share this folder; remove it before handing OUT on.\n"
)


@dataclass
class _Result:
    rel: str
    reason: str = ""
    tmp: str = ""
    uids: tuple[str, str, str] = ("", "", "")
    counts: Counter[str] | None = None
    link: dict[str, str] | None = None


_WORKER: Deidentifier | None = None


def _init_worker(key: bytes, options: tuple[str, ...], allow: bool, linkage: bool) -> None:
    global _WORKER
    _WORKER = Deidentifier(key, options, allow_burned_in=allow, linkage=linkage)


def _run_batch(src: str, tmp: str, batch: list[tuple[int, str]]) -> list[_Result]:
    deid = _WORKER
    assert deid is not None
    out = []
    for index, rel in batch:
        try:
            with open(os.path.join(src, rel), "rb") as fh:
                buf = fh.read()
        except OSError as exc:
            out.append(_Result(rel, f"unreadable: {exc.strerror or type(exc).__name__}"))
            continue
        outcome = deid.process(buf)
        if outcome.parts is None:
            out.append(_Result(rel, outcome.reason, counts=outcome.counts))
            continue
        path = os.path.join(tmp, f"{index}.dcm")
        with open(path, "wb") as fh:
            fh.writelines(outcome.parts)
        out.append(_Result(rel, "", path, outcome.uids, outcome.counts, outcome.link))
    return out


def list_inputs(root: Path) -> list[str]:
    """Every regular file under ``root`` (relative POSIX paths, sorted)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path):
                found.append(Path(os.path.relpath(path, root)).as_posix())
    return sorted(found)


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def deidentify_tree(
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    options: Iterable[str] = (),
    key_file: str | os.PathLike[str] | None = None,
    key: bytes | None = None,
    workers: int | None = None,
    allow_burned_in: bool = False,
    linkage_file: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> DeidReport:
    """De-identify every file under ``in_dir`` into ``out_dir``; see the module docstring.

    Parameters
    ----------
    options
        PS3.15 option names (``retain-safe-private``, ``clean-descriptors``, ...).
    key_file, key
        The project key (file created on first use); ``key`` overrides ``key_file``.
    workers
        Processes; default one per core (one for small inputs).
    linkage_file
        Write original <-> pseudonym pairs here (never inside ``out_dir``).
    """
    src, out = Path(in_dir).resolve(), Path(out_dir).resolve()
    if not src.is_dir():
        raise MedaiError(f"input folder not found: {in_dir}")
    if _inside(out, src) or _inside(src, out):
        raise MedaiError("output folder must not be inside the input folder or contain it")
    for extra, what in ((key_file, "key file"), (linkage_file, "linkage file")):
        if extra is not None and _inside(Path(extra).resolve(), out):
            raise MedaiError(f"{what} must not be inside the output folder")
    opts = tuple(options)
    Profile.build(opts)  # unknown or contradictory options fail before anything is written
    secret = key if key is not None else load_or_create_key(key_file)
    files = list_inputs(src)
    if workers is None:
        workers = 1 if len(files) < 64 else min(os.cpu_count() or 1, 8)
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / _TMP
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        init = (secret, opts, allow_burned_in, linkage_file is not None)
        results = _process(str(src), str(tmp), files, init, workers, progress)
        rows, links = _finish(src, out, results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _write_audit(out / AUDIT_NAME, rows)
    if linkage_file is not None:
        _write_linkage(Path(linkage_file), links)
    return DeidReport(out, rows, time.perf_counter() - start, opts)


def _process(
    src: str, tmp: str, files: Sequence[str], init: tuple, workers: int, progress: bool
) -> list[_Result]:
    from tqdm.auto import tqdm

    batches = [list(enumerate(files))[i : i + _BATCH] for i in range(0, len(files), _BATCH)]
    results: list[_Result] = []
    bar = tqdm(total=len(files), unit="file", desc="de-identify", disable=not progress)
    try:
        if workers <= 1:
            _init_worker(*init)
            for batch in batches:
                results.extend(_run_batch(src, tmp, batch))
                bar.update(len(batch))
        else:
            with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=init) as pool:
                futures = [pool.submit(_run_batch, src, tmp, b) for b in batches]
                for fut, batch in zip(futures, batches, strict=True):
                    results.extend(fut.result())
                    bar.update(len(batch))
    finally:
        bar.close()
    return results


def _finish(src: Path, out: Path, results: list[_Result]) -> tuple[list[dict], list[dict]]:
    """Move outputs into place in input order; quarantine duplicates and failures."""
    rows, links, claimed = [], {}, {}
    for r in sorted(results, key=lambda r: r.rel):
        counts = r.counts or Counter()
        row = {"input": r.rel, "status": "deidentified", "output": "", "reason": ""}
        if not r.reason:
            target = Path(*r.uids[:2], r.uids[2] + ".dcm")
            if target in claimed:
                r.reason = f"duplicate: same SOP Instance UID as {claimed[target]}"
                os.unlink(r.tmp)
            else:
                claimed[target] = r.rel
                (out / target).parent.mkdir(parents=True, exist_ok=True)
                os.replace(r.tmp, out / target)
                row["output"] = target.as_posix()
                if r.link:
                    links[(r.link["original_patient_id"], r.link["original_study_uid"])] = r.link
        if r.reason:
            _quarantine(src, out, r.rel, r.reason)
            row.update(status="quarantined", output=f"{QUARANTINE}/{r.rel}", reason=r.reason)
        row.update({col: counts.get(key, 0) for col, key in COUNT_COLUMNS.items()})
        rows.append(row)
    return rows, sorted(links.values(), key=lambda d: (d["pseudonym"], d["study_uid"]))


def _quarantine(src: Path, out: Path, rel: str, reason: str) -> None:
    qdir = out / QUARANTINE
    note = qdir / "README.txt"
    if not note.exists():
        atomic.write_text(note, _QUARANTINE_NOTE)
    target = qdir / rel
    with atomic.atomic_path(target) as tmp:
        shutil.copyfile(src / rel, tmp)
    atomic.write_text(target.with_name(target.name + ".reason.txt"), reason + "\n")


def _csv_text(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _write_audit(path: Path, rows: list[dict]) -> None:
    columns = ["input", "status", "output", "reason", *COUNT_COLUMNS]
    atomic.write_text(path, _csv_text(rows, columns))


def _write_linkage(path: Path, links: list[dict]) -> None:
    columns = [
        "pseudonym",
        "original_patient_id",
        "original_patient_name",
        "study_uid",
        "original_study_uid",
    ]
    with atomic.atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_csv_text(links, columns))
