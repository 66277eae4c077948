"""What a user sees while MedAI Lab works: bars only where they redraw in place, no repeated
third-party notices, nothing harmless rendered as a notebook's red stderr block."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

EXE = Path(sys.executable).with_name("medai-lab")
# Lightning's advertising, MONAI's absent-GPU-decoder notice, a torch deprecation in Lightning
NOISE = ("Tip:", "nvImageCodec", "LeafSpec")


def _run(cmd: list[str], **kwargs: object) -> tuple[int, str, str]:
    """Exit status, stdout and stderr as written: carriage returns kept (no text mode)."""
    proc = subprocess.run(cmd, capture_output=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MEDAI_PROGRESS"}
    return {**env, "MEDAI_MLFLOW_DIR": str(tmp_path / "mlflow"), "HOME": str(tmp_path)}


def test_bars_redraw_in_a_terminal_and_stay_out_of_logs(tmp_path: Path) -> None:
    cmd = [str(EXE), "phantom", "", "--task", "lung", "--cases", "2"]
    code, out, err = _run([*cmd[:2], str(tmp_path / "a"), *cmd[3:]], env=_env(tmp_path))
    assert code == 0 and "wrote 2 lung phantom case(s)" in out
    assert "\r" not in out + err  # a log gets lines, not redraws
    leader, follower = pty.openpty()  # a terminal on stderr, where tqdm draws
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    try:
        proc = subprocess.Popen(
            [*cmd[:2], str(tmp_path / "b"), *cmd[3:]], stdout=subprocess.DEVNULL,
            stderr=follower, env=_env(tmp_path),
        )  # fmt: skip
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=300) == 0
    finally:
        os.close(leader)
    assert b"\r" in seen and b"lung phantoms" in seen and b"2/2" in seen


def test_training_in_a_log_prints_epoch_lines_without_noise(tmp_path: Path) -> None:
    """``medai-lab train lung --preset smoke > log``: what the issue saw, as a user runs it."""
    cmd = [str(EXE), "train", "lung", "--preset", "smoke"]
    code, out, err = _run(cmd, cwd=tmp_path, env=_env(tmp_path))
    assert code == 0, err[-2000:]
    assert "\r" not in out + err
    assert [n for n in NOISE if n in out + err] == []
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"]
    assert "val/dice_mean" in epochs[-1] and "lung: mean Dice" in out


def test_training_in_a_notebook_writes_no_stderr_block(tmp_path: Path) -> None:
    """Lightning's information lines go to stdout in a kernel; its bar is a widget."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    code = (
        "from medai_lab.tasks.runner import train\n"
        "result = train('lung', 'smoke', overrides=['trainer.max_epochs=1'], out_dir='runs')\n"
        "print('dice', round(result.metrics['dice_mean'], 3))"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(tmp_path)}}
    )
    old = dict(os.environ)
    os.environ.update(_env(tmp_path))
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    outputs = nb.cells[0].outputs
    streams = {name: "".join(o.text for o in outputs if o.get("name") == name)
               for name in ("stdout", "stderr")}  # fmt: skip
    assert "dice" in streams["stdout"] and "GPU available" in streams["stdout"]
    assert "GPU available" not in streams["stderr"]
    assert [n for n in NOISE if n in streams["stdout"] + streams["stderr"]] == []
