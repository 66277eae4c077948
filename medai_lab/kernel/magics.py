"""The ``%medai`` line magic: ``gpu``, ``runs``, ``view``, ``phi``, ``doctor``."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class

from medai_lab.kernel import state

USAGE = """\
%medai gpu                       the GPU(s) this kernel may use, its CPU/memory share
%medai runs [EXPERIMENT] [-n N]  recent MLflow runs with metrics (default 20, all experiments)
%medai view PATH_OR_NAME         the viewer on a NIfTI file, DICOM folder or a variable
%medai phi on|off                show or mask identifying DICOM attributes (masked by default)
%medai doctor                    what this machine has for MedAI Lab, and the fixes"""
GB = 1024**3


def gpu_report(status: dict[str, Any] | None = None, pid: int | None = None) -> str:
    """What ``%medai gpu`` prints for an NVML ``status`` (default: queried now)."""
    from medai_lab.server.nvml import query, visible

    status = query() if status is None else status
    pid = os.getpid() if pid is None else pid
    # On the hub: why this server got no GPU, or the share of one it got (medai_lab.hub).
    hub_note = os.environ.get("MEDAI_GPU_MESSAGE", "").strip()
    share = os.environ.get("MEDAI_GPU_MEMORY_FRACTION", "").strip()
    if status["cpu_only"]:
        why = f" ({status['error']})" if status.get("error") else ""
        return hub_note or f"CPU only: no NVIDIA GPU on this machine{why}"
    gpus = visible(status)
    if not gpus:
        return hub_note or "CPU only: CUDA_VISIBLE_DEVICES hides every GPU from this kernel"
    lines = []
    for g in gpus:
        util = "?" if g["utilization"] is None else f"{g['utilization']}%"
        mine = sum(p["memory"] or 0 for p in g["processes"] if p["pid"] == pid)
        lines.append(
            f"GPU{g['index']} {g['name']}: {g['memory_used'] / GB:.1f}/{g['memory_total'] / GB:.1f}"
            f" GB used, {util} busy; this kernel uses {mine / GB:.1f} GB"
        )
    if share:
        lines.append(f"time-sliced share: PyTorch may use {float(share):.0%} of the GPU memory")
    return "\n".join([*lines, f"driver {status['driver']}"])


def recent_runs(experiment: str | None = None, n: int = 20, uri: str | None = None) -> Any:
    """Recent runs (newest first) as a DataFrame: run, experiment, status, start, metrics.

    Imports mlflow (seconds) and pandas; ``uri`` defaults to the kernels' tracking store.
    """
    import pandas as pd

    from medai_lab.errors import MedaiError
    from medai_lab.tracking.store import make_client

    client = make_client(uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    if experiment:
        ids = [i for i, name in experiments.items() if name == experiment]
        if not ids:
            known = ", ".join(sorted(experiments.values())) or "none"
            raise MedaiError(f"no experiment {experiment!r} (experiments: {known})")
    else:
        ids = list(experiments)
    runs = client.search_runs(ids, max_results=n, order_by=["attributes.start_time DESC"])
    records = []
    for r in runs:
        info = r.info
        start = pd.to_datetime(info.start_time, unit="ms") if info.start_time else None
        end = pd.to_datetime(info.end_time, unit="ms") if info.end_time else None
        records.append({
            "run": info.run_name, "run_id": info.run_id[:8],
            "experiment": experiments.get(info.experiment_id, info.experiment_id),
            "status": info.status, "start": start,
            "duration": (end - start).round("s") if start is not None and end is not None else None,
            **{k: v for k, v in sorted(r.data.metrics.items())},
        })  # fmt: skip
    return pd.DataFrame.from_records(records)


@magics_class
class MedaiMagics(Magics):
    """``%medai``: see :data:`USAGE`."""

    @line_magic
    def medai(self, line: str) -> Any:
        """MedAI Lab: ``%medai gpu | runs [EXPERIMENT] [-n N] | view PATH | phi | doctor``."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            print(f"%medai: {exc}\n{USAGE}")
            return None
        command, args = (words[0], words[1:]) if words else ("help", [])
        handler = getattr(self, f"_do_{command}", None)
        if handler is None:
            print(USAGE)
            return None
        from medai_lab.errors import MedaiError

        try:
            return handler(args)
        except MedaiError as exc:
            print(f"%medai {command}: {exc}")
            return None

    def _do_help(self, _args: list[str]) -> None:
        print(USAGE)

    def _do_gpu(self, _args: list[str]) -> None:
        from medai_lab.kernel.share import share_line

        print(gpu_report())
        print(share_line())  # the CPU/memory share next to the GPU

    def _do_runs(self, args: list[str]) -> Any:
        from medai_lab.errors import MedaiError

        n, names = 20, []
        it = iter(args)
        for word in it:
            if word in ("-n", "--max"):
                try:
                    n = int(next(it))
                except (StopIteration, ValueError):
                    raise MedaiError("-n needs a number") from None
            else:
                names.append(word)
        table = recent_runs(" ".join(names) or None, n)
        if table.empty:
            from medai_lab.tracking.store import default_tracking_uri

            print(f"no runs yet in {default_tracking_uri()}")
            return None
        return table

    def _do_view(self, args: list[str]) -> Any:
        from medai_lab.errors import MedaiError

        if len(args) != 1:
            raise MedaiError("usage: %medai view PATH_OR_NAME")
        target: Any = args[0]
        namespace = self.shell.user_ns if self.shell is not None else {}
        if target in namespace and not Path(target).exists():
            target = namespace[target]
        else:
            target = Path(target).expanduser()
        from medai_lab.widgets import view

        return view(target)

    def _do_phi(self, args: list[str]) -> None:
        if args not in (["on"], ["off"]):
            print(f"identifying DICOM attributes are {'shown' if state.SHOW_PHI else 'masked'}"
                  " (%medai phi on|off)")  # fmt: skip
            return
        state.SHOW_PHI = args == ["on"]
        print("identifying DICOM attributes " + ("shown" if state.SHOW_PHI else "masked"))

    def _do_doctor(self, _args: list[str]) -> None:
        from medai_lab.doctor import format_report, run_checks

        print(format_report(run_checks()))
