"""MedAI Lab: a JupyterLab distribution for medical-imaging AI.

Importing this package stays light: heavy libraries (torch, monai, mlflow, itk) are imported
lazily inside the functions that need them, so kernels and the CLI start fast.
"""

__version__ = "0.1.0"


def load_ipython_extension(ip: object) -> None:
    """``%load_ext medai_lab``: the ``%medai`` magics and display formatters."""
    from medai_lab.kernel import load_ipython_extension as load

    load(ip)


def unload_ipython_extension(ip: object) -> None:
    from medai_lab.kernel import unload_ipython_extension as unload

    unload(ip)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "medai_lab.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "medai-lab"}]
