"""The sandbox process: ``python -I -m medai_lab.challenge.worker CONFIG.json CONTROL_FD``.

It confines itself (:func:`medai_lab.challenge.jail.confine`), loads the submission, then
answers the parent's requests: one case index per line on stdin; for each it reads
``in/<index>.nii.gz``, writes ``out/<index>.nii.gz`` and reports on the control pipe:

``note <token>``, ``ready``, ``done <index>``, ``fail <index> <category>`` (index -1: loading).

Only these fixed words travel back; exceptions are reduced to a category here, and the parent
trusts none of it (submitted code runs in this process and could write anything to the pipe).
stdout and stderr are /dev/null.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

CATEGORIES = (
    "timeout",
    "oom",
    "invalid_output",
    "output_too_large",
    "crash",
    "network",
    "forbidden",
    "not_run",
)
_OOM_TEXT = re.compile(r"can't allocate memory|not enough memory|bad_alloc|out of memory", re.I)
_NET_ERRNOS = {errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTUNREACH, errno.ECONNREFUSED,
               errno.EADDRNOTAVAIL}  # fmt: skip


class InvalidOutput(Exception):
    """The submission returned something that is not a label map for the image."""


def classify(exc: BaseException) -> str:
    """Failure category of an exception (no message text leaves the sandbox)."""
    if isinstance(exc, MemoryError) or _OOM_TEXT.search(str(exc)[:500]):
        return "oom"
    if isinstance(exc, InvalidOutput):
        return "invalid_output"
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return "output_too_large"
    if isinstance(exc, socket.gaierror | ConnectionError) or (
        isinstance(exc, OSError) and exc.errno in _NET_ERRNOS
    ):
        return "network"
    if isinstance(exc, PermissionError):
        return "forbidden"
    return "crash"


class Control:
    """Line messages to the parent on an inherited pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, *words: object) -> None:
        os.write(self.fd, (" ".join(str(w) for w in words) + "\n").encode("ascii"))


def load_model(cfg: dict[str, Any]) -> Any:
    """A callable ``(in_path, out_path) -> None`` for the submission in ``cfg``."""
    sub = Path(cfg["workdir"]) / "sub"
    if cfg["format"] == "python":
        return _package_runner(sub / "package", cfg)
    from medai_lab.inference import Predictor
    from medai_lab.io import save_nifti

    device = "cuda" if cfg.get("gpu") else "cpu"
    predictor = Predictor.load(sub / cfg["entry"], device=device)
    # import what the first case needs now, so that it does not count against its time
    import monai.data
    import monai.inferers
    import monai.transforms  # noqa: F401

    import medai_lab.datasets.transforms  # noqa: F401

    def run(src: Path, dst: Path) -> None:
        save_nifti(predictor.predict(src), dst)  # exactly what predict_folder does

    return run


def _package_runner(package: Path, cfg: dict[str, Any]) -> Any:
    import nibabel as nib
    import numpy as np

    from medai_lab.io import Volume, save_nifti

    sys.path.insert(0, str(package))
    spec = importlib.util.spec_from_file_location("predict", package / "predict.py")
    if spec is None or spec.loader is None:
        raise ImportError("predict.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["predict"] = module
    spec.loader.exec_module(module)
    context = module.setup(package) if callable(getattr(module, "setup", None)) else package
    max_label = int(cfg.get("max_label", 255))

    def run(src: Path, dst: Path) -> None:
        img = nib.load(str(src))
        image = np.asarray(img.get_fdata(dtype=np.float32))
        out = module.predict(image, np.array(img.affine), context)
        labels = _check_labels(out, image.shape, max_label)
        save_nifti(Volume(labels, np.array(img.affine), {"kind": "labels"}), dst)

    return run


def _check_labels(out: Any, shape: tuple[int, ...], max_label: int) -> Any:
    import numpy as np

    if not isinstance(out, np.ndarray) or out.shape != shape:
        raise InvalidOutput
    if out.dtype.kind not in "biuf":
        raise InvalidOutput
    if out.dtype.kind == "f" and not np.all(np.isfinite(out) & (out == np.round(out))):
        raise InvalidOutput
    if out.size and (out.min() < 0 or out.max() > max_label):
        raise InvalidOutput
    return out.astype(np.uint8)


def serve(cfg: dict[str, Any], ctl: Control) -> int:
    """Load the model, then run the cases the parent asks for until stdin closes."""
    work = Path(cfg["workdir"])
    try:
        run = load_model(cfg)
    except BaseException as exc:
        ctl.send("fail", -1, classify(exc))
        return 3
    ctl.send("ready")
    names = cfg["inputs"]
    for line in sys.stdin:
        try:
            index = int(line.strip())
            src, dst = work / "in" / names[index], work / "out" / f"{index:04d}.nii.gz"
        except (ValueError, IndexError):
            return 4
        try:
            run(src, dst)
        except BaseException as exc:
            ctl.send("fail", index, classify(exc))
            continue
        ctl.send("done", index)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cfg = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    ctl = Control(int(args[1]))
    from medai_lab.challenge.jail import confine

    try:
        notes = confine(cfg)
    except BaseException:
        ctl.send("note", "confine=failed")
        ctl.send("fail", -1, "crash")
        return 5
    for note in notes:
        ctl.send("note", note)
    if cfg.get("gpu_memory_fraction"):
        # one home for the cap (the hub's kernels use it too); applied when torch loads
        from medai_lab.hub.memory import install

        install({"MEDAI_GPU_MEMORY_FRACTION": str(cfg["gpu_memory_fraction"])})
        ctl.send("note", "gpu_memory=capped")
    os.chdir(Path(cfg["workdir"]) / "tmp")
    return serve(cfg, ctl)


if __name__ == "__main__":
    sys.exit(main())
