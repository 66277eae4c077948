"""What MedAI Lab shows while it works: progress bars that suit the place they are shown in,
and third-party chatter kept out of it.

A bar redraws one line with carriage returns: right in a terminal, and a widget in a Jupyter
kernel (``tqdm.auto``), but in a log file or CI output every redraw stays as text. So
:func:`progress_bar` draws only where it is seen as one line (:func:`interactive`); commands
print their outcome in plain lines anyway. ``MEDAI_PROGRESS=1`` / ``0`` forces bars on / off.

:func:`quiet_third_party` silences, narrowly and only while our own code runs, messages that
libraries repeat on every call although nothing is wrong: Lightning's advertising "Tip" lines,
MONAI's notice that NVIDIA's nvImageCodec GPU decoder is absent (it probes every image reader
it knows), and a torch deprecation triggered inside Lightning. In a notebook it also sends
Lightning's information lines (model summary, "GPU available") to stdout, so they do not
render as an alarming red stderr block. tqdm is imported only when a bar is made.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import IO, Any

__all__ = ["in_notebook", "interactive", "progress_bar", "quiet_third_party"]

# (logger name, start of the message) of log records to drop while our code runs
_LOG_NOISE = (
    ("pytorch_lightning.utilities.rank_zero", "💡 Tip:"),
    ("lightning.pytorch.utilities.rank_zero", "💡 Tip:"),
    ("lightning_fabric.utilities.rank_zero", "💡 Tip:"),
    ("monai.data.nvimgcodec_pydicom_plugin", "nvImageCodec is not available"),
)
# (message regex, category) of warnings to ignore while our code runs
_WARNING_NOISE = (
    (r"NvImgCodecPydicomReader: nvImageCodec decoder plugin did not register", UserWarning),
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
)
_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch")


def in_notebook() -> bool:
    """True inside a Jupyter (IPython) kernel, where tqdm.auto draws widgets."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    return bool(get and get() is not None and "IPKernelApp" in getattr(get(), "config", {}))


def interactive(stream: IO[str] | None = None) -> bool:
    """Whether a redrawn bar on ``stream`` (default stderr) is seen as one line."""
    forced = os.environ.get("MEDAI_PROGRESS", "").strip().lower()
    if forced in ("0", "1", "false", "true", "no", "yes", "off", "on"):
        return forced in ("1", "true", "yes", "on")
    if in_notebook():
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **kwargs: Any):
    """``tqdm.auto.tqdm(iterable, **kwargs)``, disabled unless ``enabled`` and :func:`interactive`.

    Bars carry counts and the ``desc`` given here, never file or patient names.
    """
    from tqdm.auto import tqdm

    show = enabled and interactive(kwargs.get("file"))
    return tqdm(iterable, disable=not show, **kwargs)


class _DropPrefix(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefix)


@contextlib.contextmanager
def quiet_third_party() -> Iterator[None]:
    """Drop the known repeated third-party notices (see the module docstring) inside the block."""
    filters = [(logging.getLogger(name), _DropPrefix(prefix)) for name, prefix in _LOG_NOISE]
    for logger, f in filters:
        logger.addFilter(f)
    moved: list[tuple[logging.StreamHandler, IO[str]]] = []
    if in_notebook():  # Lightning's own handler writes its information lines to stderr
        for name in _LIGHTNING_LOGGERS:
            for handler in logging.getLogger(name).handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
                    old = handler.setStream(sys.stdout)
                    if old is not None:
                        moved.append((handler, old))
    try:
        with warnings.catch_warnings():
            for message, category in _WARNING_NOISE:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        for logger, f in filters:
            logger.removeFilter(f)
        for handler, stream in moved:
            handler.setStream(stream)
