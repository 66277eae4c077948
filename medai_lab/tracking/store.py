"""Where runs go: tracking-URI resolution, the embedded SQLite store, experiments, the UI command.

Nothing here imports mlflow at module level; functions that need a client take one or import it
lazily.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from mlflow import MlflowClient

ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_MEDAI_DIR = "MEDAI_MLFLOW_DIR"
DB_NAME = "mlflow.db"
ARTIFACTS_NAME = "artifacts"


def default_tracking_dir() -> Path:
    """Folder of the embedded store: ``$MEDAI_MLFLOW_DIR`` or ``~/.medai-lab/mlflow`` (created).

    Returns
    -------
    Path
        Absolute folder holding ``mlflow.db`` and ``artifacts/``.
    """
    raw = os.environ.get(ENV_MEDAI_DIR) or "~/.medai-lab/mlflow"
    folder = Path(raw).expanduser().resolve()
    (folder / ARTIFACTS_NAME).mkdir(parents=True, exist_ok=True)
    return folder


def default_tracking_uri() -> str:
    """The tracking URI to use when none is given.

    Returns
    -------
    str
        ``$MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<dir>/mlflow.db`` in
        :func:`default_tracking_dir` (artifacts go to ``<dir>/artifacts``).
    """
    env = os.environ.get(ENV_TRACKING_URI, "").strip()
    if env:
        return env
    return f"sqlite:///{(default_tracking_dir() / DB_NAME).as_posix()}"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri`` when given, else :func:`default_tracking_uri`."""
    return uri.strip() if uri and uri.strip() else default_tracking_uri()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (absolute), or None for other stores.

    ``sqlite:///rel.db`` is relative to the working directory, ``sqlite:////abs.db`` absolute;
    in-memory databases return None.
    """
    if not uri.startswith("sqlite://"):
        return None
    rest = uri[len("sqlite://") :].split("?", 1)[0]
    if not rest.startswith("/") or rest in ("/", "/:memory:"):
        return None
    return Path(unquote(rest[1:])).expanduser().resolve()


def artifact_root_for(uri: str) -> str | None:
    """Artifact root for experiments created in a local SQLite store, as a ``file://`` URI.

    The artifacts live next to the database in ``<db folder>/artifacts``, so a store is one
    self-contained folder (and not ``./mlruns`` of whatever the working directory was).
    Returns None for server or remote stores, which choose their own artifact location.
    """
    db = sqlite_path(uri)
    if db is None:
        return None
    return (db.parent / ARTIFACTS_NAME).as_uri()


def ui_command(uri: str | None = None, host: str = "127.0.0.1", port: int = 5000) -> str:
    """The one shell command that opens the MLflow UI on a store.

    Parameters
    ----------
    uri
        Tracking URI; default :func:`default_tracking_uri`.
    host, port
        Where the UI listens (local only by default).

    Returns
    -------
    str
        ``mlflow ui --backend-store-uri ... [--default-artifact-root ...] --host ... --port ...``,
        or, for an ``http(s)`` tracking server (which already serves the UI), a command that
        opens it in a browser.
    """
    uri = resolve_tracking_uri(uri)
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        return f"python -m webbrowser {shlex.quote(uri)}"
    parts = ["mlflow", "ui", "--backend-store-uri", uri]
    root = artifact_root_for(uri)
    if root is not None:
        parts += ["--default-artifact-root", root]
    parts += ["--host", host, "--port", str(port)]
    return " ".join(shlex.quote(p) for p in parts)


def make_client(uri: str | None = None) -> MlflowClient:
    """An ``MlflowClient`` on the resolved tracking URI (imports mlflow).

    A local SQLite store that does not exist yet is created with its artifact root next to
    the database, so even MLflow's built-in ``Default`` experiment does not point at
    ``./mlruns`` of the current directory.
    """
    from mlflow import MlflowClient

    resolved = resolve_tracking_uri(uri)
    _init_sqlite_store(resolved)
    return MlflowClient(tracking_uri=resolved, registry_uri=resolved)


def _init_sqlite_store(uri: str) -> None:
    db = sqlite_path(uri)
    if db is None or db.exists():
        return
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db.parent.mkdir(parents=True, exist_ok=True)
    store = SqlAlchemyStore(uri, artifact_root_for(uri))
    store.engine.dispose()


def get_or_create_experiment(client: MlflowClient, name: str, uri: str | None = None) -> str:
    """Id of experiment ``name``; created if missing (restored if deleted).

    In a local SQLite store a new experiment gets ``artifact_location`` = the store's
    ``artifacts/`` folder (see :func:`artifact_root_for`).
    """
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    root = artifact_root_for(uri or client.tracking_uri)
    location = f"{root}/{_safe_folder(name)}" if root else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Another process created it between our lookup and create.
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _safe_folder(name: str) -> str:
    """A folder name for an experiment: readable, no path separators, URI-safe."""
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return keep[:100] or "experiment"
