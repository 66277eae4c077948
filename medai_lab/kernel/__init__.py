"""IPython extension: ``%medai`` magics and display formatters for DICOM datasets and volumes.

``%load_ext medai_lab`` (or ``medai_lab.kernel``); kernels of an installed distribution load it
by themselves (``etc/ipython/ipython_kernel_config.json``: ``IPKernelApp.extra_extensions``).

* ``%medai gpu``: the GPU(s) this kernel may use, memory and load; "CPU only" without one.
* ``%medai runs [EXPERIMENT] [-n N]``: recent MLflow runs with their metrics (a DataFrame).
* ``%medai view PATH_OR_NAME``: the viewer on a NIfTI file, DICOM folder or a variable.
* ``%medai phi on|off``: show identifying DICOM attributes (masked by default).

A pydicom ``Dataset`` displays as a compact header table with identifying attributes (those the
PS3.15 Basic Profile does not keep, and private ones) masked; a ``Volume`` as three planes.
Loading imports nothing heavy: formatters are registered by type name, so pydicom, NumPy,
Pillow and mlflow load only when an object is shown or a magic runs.
"""

from __future__ import annotations

from typing import Any

_TYPES = (
    ("text/html", "pydicom.dataset", "Dataset", "dataset_html"),
    ("text/plain", "pydicom.dataset", "Dataset", "dataset_pretty"),
    ("image/png", "medai_lab.io.volume", "Volume", "volume_png"),
)


def _formatter(name: str) -> Any:
    def call(*args: Any) -> Any:
        from medai_lab.kernel import formatters

        return getattr(formatters, name)(*args)

    call.__name__ = name
    return call


def load_ipython_extension(ip: Any) -> None:
    """Register the ``%medai`` magic and the display formatters on shell ``ip``."""
    from medai_lab import cpushare
    from medai_lab.hub.memory import install as cap_gpu_memory
    from medai_lab.kernel.magics import MedaiMagics
    from medai_lab.kernel.share import oom_notice

    cap_gpu_memory()  # a time-sliced GPU share on the hub: cap PyTorch once CUDA starts
    cpushare.apply_thread_limits()  # torch/BLAS threads at this server's CPU share
    notice = oom_notice()
    if notice:
        print(f"medai-lab: {notice}")
    ip.register_magics(MedaiMagics)
    for mime, module, name, func in _TYPES:
        ip.display_formatter.formatters[mime].for_type_by_name(module, name, _formatter(func))


def unload_ipython_extension(ip: Any) -> None:
    """Remove the formatters (the magic stays until the shell ends, as IPython does)."""
    for mime, module, name, _func in _TYPES:
        formatter = ip.display_formatter.formatters[mime]
        formatter.deferred_printers.pop((module, name), None)
        for typ in list(formatter.type_printers):
            if (typ.__module__, typ.__name__) == (module, name):
                formatter.type_printers.pop(typ)


def show_phi(on: bool = True) -> None:
    """Show (``True``) or mask (``False``, the default) identifying DICOM attributes."""
    from medai_lab.kernel import state

    state.SHOW_PHI = bool(on)
