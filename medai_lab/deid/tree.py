"""De-identify a folder tree: parallel, atomic, audited; every input accounted for once.

Output: ``OUT/<study>/<series>/<sop>.dcm`` named by the new UIDs, ``OUT/quarantine/<input
pseudonym>.dcm`` plus ``<input pseudonym>.reason.txt`` for files that cannot be
de-identified safely, and ``OUT/deid_audit.csv``. Hospital exports name files and folders
after patients, so nothing written (audit, reasons, names, messages) carries an input path:
each input is named by its keyed pseudonym (:func:`input_pseudonym`); the optional input
linkage file, kept outside OUT, maps them back. Each file's header is de-identified, then
its pixels are OCR-checked under the pixel policy (:mod:`medai_lab.deid.pixelstep`), in
the same worker process. Workers write to a private temporary folder inside OUT; files are
renamed into place in sorted input order, so reruns with the same key give byte-identical
trees.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medai_lab import atomic
from medai_lab.cpushare import cpu_count
from medai_lab.deid.engine import Deidentifier
from medai_lab.deid.keys import Keyed, load_or_create_key
from medai_lab.deid.pixelstep import PixelResult, check_policy, require_engine
from medai_lab.deid.profile import Profile
from medai_lab.deid.report import COUNT_COLUMNS, DeidReport
from medai_lab.errors import MedaiError

AUDIT_NAME = "deid_audit.csv"
QUARANTINE = "quarantine"
_TMP = ".medai-deid-partial"
_BATCH = 32
PIXEL_COLUMNS = ["pixels", "text_boxes", "frames_checked", "ocr_engine"]
AUDIT_COLUMNS = ["input", "status", "output", "reason", *PIXEL_COLUMNS, *COUNT_COLUMNS]
LINKAGE_COLUMNS = [
    "pseudonym",
    "original_patient_id",
    "original_patient_name",
    "study_uid",
    "original_study_uid",
]
INPUT_LINKAGE_COLUMNS = ["input", "input_path", "status", "output"]
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
    pixels: PixelResult = field(default_factory=PixelResult)


_WORKER: Deidentifier | None = None


def _init_worker(
    key: bytes, options: tuple[str, ...], allow: bool, linkage: bool, pixels: str
) -> None:
    global _WORKER
    _WORKER = Deidentifier(key, options, allow_burned_in=allow, linkage=linkage, pixels=pixels)


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
            out.append(_Result(rel, outcome.reason, counts=outcome.counts, pixels=outcome.pixels))
            continue
        path = os.path.join(tmp, f"{index}.dcm")
        with open(path, "wb") as fh:
            fh.writelines(outcome.parts)
        out.append(
            _Result(rel, "", path, outcome.uids, outcome.counts, outcome.link, outcome.pixels)
        )
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


def input_pseudonym(keyed: Keyed, rel: str) -> str:
    """An input file's name in everything written: ``in-`` and 16 hex digits.

    HMAC-SHA256 of the relative POSIX path under the project key: the same file gets the
    same name in every run with that key, and nobody without the key can test a guess.
    """
    return "in-" + keyed.digest("input-path", rel)[:8].hex()


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
    input_linkage: str | os.PathLike[str] | None = None,
    pixels: str = "redact",
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
    allow_burned_in
        With ``pixels="off"`` only: do not quarantine files likely to carry burned-in text.
    linkage_file
        Write original patient <-> pseudonym pairs here (never inside ``out_dir``).
    input_linkage
        Write input pseudonym <-> input path pairs here (never inside ``out_dir``).
    pixels
        ``redact`` (OCR, fill text regions), ``quarantine`` (any text found quarantines
        the file) or ``off`` (headers only; likely burned-in text quarantined by rule).
    """
    # messages never echo a path given here: exports name folders after patients
    src, out = Path(in_dir).resolve(), Path(out_dir).resolve()
    if not src.is_dir():
        raise MedaiError("input folder not found (IN_DIR is not a folder)")
    if _inside(out, src) or _inside(src, out):
        raise MedaiError("output folder must not be inside the input folder or contain it")
    for extra, what in (
        (key_file, "key file"),
        (linkage_file, "linkage file"),
        (input_linkage, "linkage file"),
    ):
        if extra is not None and _inside(Path(extra).resolve(), out):
            raise MedaiError(f"{what} must not be inside the output folder")
        if extra is not None and what != "key file" and _inside(Path(extra).resolve(), src):
            raise MedaiError(f"{what} must not be inside the input folder")
    opts = tuple(options)
    Profile.build(opts)  # unknown or contradictory options fail before anything is written
    require_engine(check_policy(pixels))  # no OCR engine: one line, before any work
    secret = key if key is not None else load_or_create_key(key_file)
    files = list_inputs(src)
    if workers is None:
        workers = 1 if len(files) < 64 else min(cpu_count(), 8)
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / _TMP
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        init = (secret, opts, allow_burned_in, linkage_file is not None, pixels)
        results = _process(str(src), str(tmp), files, init, workers, progress)
        rows, links, names = _finish(src, out, results, Keyed(secret))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _write_audit(out / AUDIT_NAME, rows)
    if linkage_file is not None:
        _write_private_csv(Path(linkage_file), links, LINKAGE_COLUMNS)
    if input_linkage is not None:
        _write_private_csv(Path(input_linkage), names, INPUT_LINKAGE_COLUMNS)
    return DeidReport(out, rows, time.perf_counter() - start, opts, pixels)


def _process(
    src: str, tmp: str, files: Sequence[str], init: tuple, workers: int, progress: bool
) -> list[_Result]:
    numbered = list(enumerate(files))
    batches = [numbered[i : i + _BATCH] for i in range(0, len(numbered), _BATCH)]
    results: list[_Result] = []
    bar = _bar(len(files), progress)
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


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, progress: bool) -> Any:
    """A progress bar (counts only, no names); tqdm is imported only when one is shown."""
    if not progress:
        return _NoBar()
    from medai_lab.progress import progress_bar

    return progress_bar(total=total, unit="file", desc="de-identify")


def _finish(
    src: Path, out: Path, results: list[_Result], keyed: Keyed
) -> tuple[list[dict], list[dict], list[dict]]:
    """Move outputs into place in input order; quarantine duplicates and failures.

    Returns the audit rows, the patient linkage rows and the input linkage rows.
    """
    rows: list[dict[str, Any]] = []
    links: dict[tuple[str, str], dict[str, Any]] = {}
    claimed: dict[Path, str] = {}
    names: list[dict[str, Any]] = []
    for r in sorted(results, key=lambda r: r.rel):
        counts = r.counts or Counter()
        name = input_pseudonym(keyed, r.rel)
        row: dict[str, Any] = {"input": name, "status": "deidentified", "output": "", "reason": ""}
        if not r.reason:
            target = Path(*r.uids[:2], r.uids[2] + ".dcm")
            if target in claimed:
                r.reason = f"duplicate: same SOP Instance UID as {claimed[target]}"
                os.unlink(r.tmp)
            else:
                claimed[target] = name
                (out / target).parent.mkdir(parents=True, exist_ok=True)
                os.replace(r.tmp, out / target)
                row["output"] = target.as_posix()
                if r.link:
                    links[(r.link["original_patient_id"], r.link["original_study_uid"])] = r.link
        if r.reason:
            row.update(status="quarantined", output=_quarantine(src, out, r.rel, name, r.reason))
            row["reason"] = r.reason
        px = r.pixels
        row.update(
            pixels=px.action, text_boxes=px.boxes, frames_checked=px.frames, ocr_engine=px.engine
        )
        row.update({col: counts.get(key, 0) for col, key in COUNT_COLUMNS.items()})
        rows.append(row)
        names.append(
            {"input": name, "input_path": r.rel, "status": row["status"], "output": row["output"]}
        )
    rows.sort(key=lambda row: row["input"])  # row order tells nothing about input names
    names.sort(key=lambda row: row["input"])
    return rows, sorted(links.values(), key=lambda d: (d["pseudonym"], d["study_uid"])), names


def _quarantine(src: Path, out: Path, rel: str, name: str, reason: str) -> str:
    """Copy the input to ``quarantine/<name>.dcm`` with its reason; the copy's path."""
    qdir = out / QUARANTINE
    note = qdir / "README.txt"
    if not note.exists():
        atomic.write_text(note, _QUARANTINE_NOTE)
    target = qdir / f"{name}.dcm"
    with atomic.atomic_path(target) as tmp:
        shutil.copyfile(src / rel, tmp)
    atomic.write_text(qdir / f"{name}.reason.txt", reason + "\n")
    return f"{QUARANTINE}/{name}.dcm"


def _csv_text(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _write_audit(path: Path, rows: list[dict]) -> None:
    atomic.write_text(path, _csv_text(rows, AUDIT_COLUMNS))


def _write_private_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """A CSV only its owner can read (linkage files re-identify)."""
    with atomic.atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_csv_text(rows, columns))
