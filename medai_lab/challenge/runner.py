"""Turn a stored submission into a folder of checked predictions, one per case of a phase.

Model submissions run in the sandbox (:mod:`medai_lab.challenge.sandbox`); prediction folders
are only checked. Every output is checked here, by the trusted process, before scoring: a
regular file (no links), a NIfTI label map on the image's grid with whole, non-negative
values. A case without a valid prediction gets an empty label map on the image grid, so it
scores as a miss (Dice 0, NSD 0) through the same evaluation as every other case.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medai_lab.challenge.errors import ChallengeError
from medai_lab.challenge.slots import Slot
from medai_lab.challenge.spec import Phase, Spec

GRID_TOL_MM = 1e-3


class DiskFull(ChallengeError):
    """A write of the evaluator found no space (the submission goes back to the queue)."""


class SandboxStartError(ChallengeError):
    """The sandbox could not be set up or started (not the submission's fault)."""


def is_disk_full(exc: BaseException | None) -> bool:
    """An ENOSPC / EDQUOT anywhere in the exception's chain."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def box_dir() -> str:
    return os.environ.get("MEDAI_SANDBOX_DIR") or tempfile.gettempdir()


@dataclass
class RunResult:
    """Where the predictions are and how each case went (``ok`` or a failure category)."""

    pred_dir: Path
    cases: dict[str, tuple[str, float | None]]
    notes: list[str] = field(default_factory=list)
    peak_memory_mb: float | None = None

    @property
    def failures(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for status, _ in self.cases.values():
            if status != "ok":
                out[status] = out.get(status, 0) + 1
        return dict(sorted(out.items()))


def phase_cases(phase: Phase) -> dict[str, Path]:
    """Case name -> image file of a phase, sorted by name."""
    from medai_lab.evaluation.report import case_name

    cases = {}
    for path in sorted(phase.images.iterdir()):
        name = case_name(path)
        if name is not None and not path.name.startswith(".") and path.is_file():
            cases[name] = path
    return cases


def run_submission(
    spec: Spec,
    phase: Phase,
    fmt: str,
    stored: Path,
    entry: str,
    pred_dir: Path,
    hide: list[Path],
    sandbox_dir: str | os.PathLike[str] | None = None,
    slot: Slot | None = None,
    limit_cases: int | None = None,
) -> RunResult:
    """Produce ``pred_dir/<case>.nii.gz`` for every case of ``phase`` (see module docstring).

    ``slot``: where the sandbox runs; ``limit_cases``: only the first cases (a dry run).
    Raises :class:`SandboxStartError` when the sandbox cannot be set up or started (the
    evaluator's fault, not the submission's) and :class:`DiskFull` when a write finds no space.
    """
    cases = phase_cases(phase)
    names = list(cases)[:limit_cases]
    pred_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(pred_dir, {})
    if fmt == "predictions":
        for c in names:
            src = prediction_file(stored, c)
            dst = pred_dir / f"{c}{'.nii' if src.name.endswith('.nii') else '.nii.gz'}"
            result.cases[c] = (_accept(src, cases[c], dst), None)
    else:
        from medai_lab.challenge.sandbox import Sandbox

        try:
            box = Sandbox(spec.limits, hide, sandbox_dir, slot)
            run = box.run(fmt, stored, entry, [cases[c] for c in names])
        except OSError as exc:
            if is_disk_full(exc):
                where = sandbox_dir or box_dir()
                raise DiskFull(f"no space left on the sandbox disk ({where})") from exc
            raise SandboxStartError(
                f"the sandbox could not start ({type(exc).__name__}"
                f"{': ' + errno.errorcode.get(exc.errno, '') if exc.errno else ''})"
            ) from exc
        result.peak_memory_mb = run.peak_memory_mb
        try:
            result.notes = run.notes
            for i, c in enumerate(names):
                status, seconds = run.outcomes[i]
                if status == "ok":
                    out = run.out_dir / f"{i:04d}.nii.gz"
                    status = _accept(out, cases[c], pred_dir / f"{c}.nii.gz")
                result.cases[c] = (status, seconds)
        finally:
            shutil.rmtree(run.out_dir.parent, ignore_errors=True)
    for c, (status, _) in list(result.cases.items()):
        if status != "ok":
            _empty_like(cases[c], pred_dir / f"{c}.nii.gz")
    return result


def prediction_file(folder: Path, case: str) -> Path:
    """``<case>.nii.gz`` or ``<case>.nii`` in ``folder`` (the first that exists)."""
    for ext in (".nii.gz", ".nii"):
        if (folder / f"{case}{ext}").exists():
            return folder / f"{case}{ext}"
    return folder / f"{case}.nii.gz"


def _accept(src: Path, image: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` if it is a valid label map for ``image``; its status."""
    import nibabel as nib

    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return "invalid_output"
    tmp = dst.with_name(f".partial-{dst.name}")  # keeps the suffix nibabel reads
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "invalid_output"
        with os.fdopen(fd, "rb") as fh, open(tmp, "wb") as out:
            fd = -1
            shutil.copyfileobj(fh, out)
        ref = nib.load(str(image))
        try:
            pred = nib.load(str(tmp))
            ok = _same_grid(pred, ref) and _whole_labels(np.asanyarray(pred.dataobj))
        except Exception:
            ok = False
        if not ok:
            return "invalid_output"
        os.replace(tmp, dst)
        return "ok"
    finally:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)


def _same_grid(pred: object, ref: object) -> bool:
    from medai_lab.evaluation.report import affine_difference_mm

    shape = tuple(ref.shape[:3])  # type: ignore[attr-defined]
    if tuple(pred.shape) != shape:  # type: ignore[attr-defined]
        return False
    gap = affine_difference_mm(pred.affine, ref.affine, shape)  # type: ignore[attr-defined]
    return bool(gap < GRID_TOL_MM)


def _whole_labels(arr: np.ndarray) -> bool:
    if arr.dtype.kind not in "biuf":
        return False
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        return False
    return not arr.size or (arr.min() >= 0 and arr.max() <= 255)


def _empty_like(image: Path, dst: Path) -> None:
    import nibabel as nib

    from medai_lab.io import Volume, save_nifti

    ref = nib.load(str(image))
    save_nifti(Volume(np.zeros(ref.shape[:3], np.uint8), np.array(ref.affine)), dst)
