"""Check a submission without running any of it, hash it, and store it read-only.

Formats
-------
``torchscript`` / ``onnx``
    A model file from ``medai-lab export`` (``.ts`` / ``.pt`` / ``.onnx``) with its JSON
    preprocessing sidecar next to it (``model.ts`` -> ``model.ts.json``, found by
    :func:`medai_lab.export.find_sidecar`).
``python``
    A folder with ``predict.py`` at its top and any weights files. ``predict.py`` defines::

        def predict(image, affine, context):
            '''image: float32 array (x, y, z) as stored in the NIfTI file; affine: its 4x4
            voxel-to-RAS-mm matrix; context: what setup() returned, else the package folder
            (pathlib.Path). Return an integer label map with image's shape.'''

    and may define ``setup(package_dir) -> object``, called once before the first case.
``predictions``
    A folder of label maps named like the phase's cases (validation phases only).

Nothing submitted is imported or unpickled here: that happens only inside the sandbox.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from medai_lab.challenge.errors import ChallengeError
from medai_lab.challenge.spec import Phase, Spec

MODEL_SUFFIXES = {".ts": "torchscript", ".pt": "torchscript", ".onnx": "onnx"}
MAX_FILES = 10_000
_SIDECAR_KEYS = ("patch_size", "spacing", "intensity", "labels")


@dataclass(frozen=True)
class Candidate:
    """A checked submission: its format and files (relative name -> source path)."""

    fmt: str
    files: dict[str, Path]
    size_bytes: int
    entry: str  # the file or folder name the sandbox starts from


def inspect(path: str | os.PathLike[str], spec: Spec, phase: Phase, fmt: str | None) -> Candidate:
    """Check ``path`` as a submission to ``phase``; raise :class:`ChallengeError` with the fix."""
    src = Path(path)
    if not src.exists():
        raise ChallengeError(f"submission not found: {src}")
    fmt = fmt or _guess(src)
    if fmt not in phase.formats:
        raise ChallengeError(
            f"phase {phase.name!r} accepts {', '.join(phase.formats)}; this is a {fmt} submission"
        )
    if fmt in ("torchscript", "onnx"):
        cand = _model(src, fmt, spec)
    elif fmt == "python":
        cand = _package(src)
    else:
        cand = _predictions(src, phase)
    limit = spec.limits.submission_mb * 2**20
    if cand.size_bytes > limit:
        raise ChallengeError(
            f"submission is {cand.size_bytes / 2**20:.1f} MiB; the limit is "
            f"{spec.limits.submission_mb:g} MiB"
        )
    return cand


def content_hash(files: dict[str, Path]) -> str:
    """SHA-256 over every file's relative name, size and bytes, in name order."""
    h = hashlib.sha256()
    for rel in sorted(files):
        data = files[rel]
        h.update(rel.encode("utf-8") + b"\0" + str(data.stat().st_size).encode() + b"\0")
        with open(data, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def store(cand: Candidate, root: Path, sha: str) -> Path:
    """Copy the files to ``root/<sha>/`` (read-only); an existing copy is reused as it is."""
    final = root / sha
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{sha}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for rel, source in cand.files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        if content_hash({rel: tmp / rel for rel in cand.files}) != sha:
            raise ChallengeError("the submission changed while it was being stored; submit again")
        _read_only(tmp)
        try:
            os.replace(tmp, final)
        except OSError:
            if not final.is_dir():  # someone else stored the same content first: keep theirs
                raise
    finally:
        if tmp.exists():
            make_removable(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
    return final


# --- formats ----------------------------------------------------------------------------------


def _guess(src: Path) -> str:
    if src.is_file():
        if src.suffix in MODEL_SUFFIXES:
            return MODEL_SUFFIXES[src.suffix]
        raise ChallengeError(
            f"{src.name}: a model file must be .ts/.pt (TorchScript) or .onnx; give --format"
        )
    if (src / "predict.py").is_file():
        return "python"
    if any(p.name.endswith((".nii", ".nii.gz")) for p in src.iterdir()):
        return "predictions"
    raise ChallengeError(
        f"{src} is neither a model file, a package with predict.py nor a folder of predictions"
    )


def _model(src: Path, fmt: str, spec: Spec) -> Candidate:
    from medai_lab.export.exporters import ExportError, find_sidecar, sidecar_path

    if not src.is_file():
        raise ChallengeError(f"a {fmt} submission is one model file; {src} is a folder")
    try:
        side = find_sidecar(src)
    except ExportError as exc:
        raise ChallengeError(str(exc)) from None
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChallengeError(f"{side.name} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise ChallengeError(f"{side.name} must hold a JSON object")
    missing = [k for k in _SIDECAR_KEYS if k not in meta]
    if missing:
        raise ChallengeError(f"{side.name} lacks {', '.join(missing)}: re-export the model")
    if meta.get("format") not in (None, fmt):
        raise ChallengeError(f"{side.name} describes a {meta['format']} model, not {fmt}")
    if meta.get("task") not in (None, spec.task):
        raise ChallengeError(
            f"the model was trained for {meta['task']}; this is a {spec.task} challenge"
        )
    _check_contract(meta, side.name, spec)
    if fmt == "torchscript" and not _zip_ok(src):
        raise ChallengeError(f"{src.name} is not a complete TorchScript archive (corrupted?)")
    if fmt == "onnx" and src.read_bytes()[:1] != b"\x08":
        raise ChallengeError(f"{src.name} does not look like an ONNX model (corrupted?)")
    suffix = ".ts" if fmt == "torchscript" else ".onnx"
    files = {f"model{suffix}": src, sidecar_path(f"model{suffix}").name: side}
    return Candidate(fmt, files, _size(files), f"model{suffix}")


def _check_contract(meta: dict, name: str, spec: Spec) -> None:
    """The sidecar must hold a valid model contract that predicts every label of the spec."""
    from medai_lab.contract import ModelContract
    from medai_lab.errors import MedaiError

    for key in ("patch_size", "spacing"):
        v = meta.get(key)
        if not isinstance(v, list) or len(v) != 3:
            raise ChallengeError(f"{name}: {key} must be three positive numbers")
    try:
        contract = ModelContract.from_dict(meta)
    except MedaiError as exc:
        raise ChallengeError(f"{name}: {exc}") from None
    have = contract.label_map()
    lacking = [str(v) for v in spec.labels if int(v) not in have]
    if lacking:
        raise ChallengeError(f"{name}: the model does not predict label(s) {', '.join(lacking)}")


def _zip_ok(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            return zf.testzip() is None and any(n.endswith("data.pkl") for n in names)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False


def _package(src: Path) -> Candidate:
    if not src.is_dir() or not (src / "predict.py").is_file():
        raise ChallengeError(f"a python submission is a folder with predict.py; {src} is not")
    files = _walk(src)
    try:
        tree = ast.parse((src / "predict.py").read_bytes(), filename="predict.py")
    except SyntaxError as exc:
        raise ChallengeError(f"predict.py has a syntax error at line {exc.lineno}") from None
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    if "predict" not in funcs:
        raise ChallengeError("predict.py must define predict(image, affine, context)")
    args = funcs["predict"].args
    if len(args.posonlyargs) + len(args.args) < 3 and args.vararg is None:
        raise ChallengeError("predict() must take three arguments: image, affine, context")
    return Candidate("python", files, _size(files), "package")


def _predictions(src: Path, phase: Phase) -> Candidate:
    from medai_lab.evaluation.report import case_name

    if not src.is_dir():
        raise ChallengeError(f"predictions are a folder of label maps; {src} is not a folder")
    files = _walk(src)
    cases = {case_name(p) for p in phase.images.iterdir() if not p.name.startswith(".")} - {None}
    got: dict[str, str] = {}
    for rel in files:
        name = case_name(rel)
        if "/" in rel or name is None:
            raise ChallengeError(f"predictions: unexpected file {rel} (only <case>.nii.gz)")
        got[name] = rel
    missing, extra = sorted(cases - set(got)), sorted(set(got) - cases)
    if missing:
        raise ChallengeError(f"predictions: {len(missing)} case(s) missing, e.g. {missing[:3]}")
    if extra:
        raise ChallengeError(f"predictions: {len(extra)} unknown case(s), e.g. {extra[:3]}")
    return Candidate("predictions", files, _size(files), "predictions")


def _walk(src: Path) -> dict[str, Path]:
    """Regular files under ``src`` by relative name; links and special files are refused."""
    files: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise ChallengeError(f"submission holds a symbolic link ({path.relative_to(src)})")
            if name in filenames and stat.S_ISREG(mode):
                files[path.relative_to(src).as_posix()] = path
            elif name in filenames:
                raise ChallengeError(f"submission holds a special file ({path.relative_to(src)})")
        if len(files) > MAX_FILES:
            raise ChallengeError(f"submission has more than {MAX_FILES} files")
    if not files:
        raise ChallengeError(f"submission folder {src} is empty")
    return files


def _size(files: dict[str, Path]) -> int:
    return sum(p.stat().st_size for p in files.values())


def _read_only(folder: Path) -> None:
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            os.chmod(Path(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)


def make_removable(folder: Path) -> None:
    """Undo the read-only modes of a stored copy, so it can be deleted."""
    for dirpath, _, _ in os.walk(folder):
        os.chmod(dirpath, 0o755)
