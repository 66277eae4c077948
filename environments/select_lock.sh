#!/usr/bin/env bash
# Which lock and which torch build `make install` syncs: prints the arguments for `uv pip`.
#
#   environments/select_lock.sh [--torch auto|cpu|cuda] [--find-links DIR] [--venv DIR]
#
# auto (the default) picks, in this order:
#   macOS                   the CPU lock through `uv pip install` (resolves the few macOS-only
#                           dependencies such as appnope), torch overridden to the plain PyPI
#                           build of the same version (CPU + MPS; macOS wheels carry no +cpu tag)
#   `nvidia-smi -L` lists a GPU   the CUDA lock: torch and its nvidia-* wheels from PyPI
#   otherwise               the CPU lock; torch==X+cpu from the wheel folder when it holds that
#                           wheel, else from the PyTorch CPU index via uv's --torch-backend cpu,
#                           which sends only PyTorch's own packages (torch, torchvision, triton,
#                           ...) there: everything else still comes from PyPI or your mirror
# --torch cpu / --torch cuda force a choice (e.g. a CPU-only venv on a GPU machine).
# One line on stderr says what was chosen and why; nothing is downloaded here.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rel="${here#"$PWD"/}" # print paths relative to the repository when run from it
cpu_lock="$rel/requirements-cpu.lock"
cuda_lock="$rel/requirements-cuda.lock"
torch="${TORCH:-auto}"
find_links=""
venv=".venv"
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) torch="${2:-}"; shift 2 ;;
    --find-links) find_links="${2:-}"; shift 2 ;;
    --venv) venv="${2:-}"; shift 2 ;;
    *) echo "select_lock.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$torch" in
  auto | cpu | cuda) ;;
  *) echo "select_lock.sh: TORCH must be auto, cpu or cuda, got '$torch'" >&2; exit 2 ;;
esac

# The CPU lock's torch pin, e.g. 2.13.0+cpu (the lead owns the pin; we only read it).
cpu_pin="$(sed -n 's/^torch==\([^ ;]*\).*/\1/p' "$here/requirements-cpu.lock" | head -n 1)"
if [ -z "$cpu_pin" ]; then
  echo "select_lock.sh: no torch== pin in $cpu_lock" >&2
  exit 2
fi

gpu_names() {
  # `nvidia-smi -L` fails (non-zero) where the tool exists but no driver answers (containers).
  command -v nvidia-smi > /dev/null 2>&1 || return 1
  nvidia-smi -L 2> /dev/null | grep -E '^GPU [0-9]+' || return 1
}

say() { echo "make install: $*" >&2; }

# Byte-compile at install (in parallel): otherwise the first `import torch` / Lightning of a
# fresh venv compiles thousands of modules on one core (a minute on 2 cores).
compile="--compile-bytecode"

os="$(uname -s)"
if [ "$torch" = auto ]; then
  if [ "$os" = Darwin ]; then
    torch=macos
  elif gpus="$(gpu_names)"; then
    say "$(printf '%s\n' "$gpus" | wc -l | tr -d ' ') NVIDIA GPU(s) found by nvidia-smi:" \
      "CUDA lock (TORCH=cpu for a CPU-only venv)"
    torch=cuda
  else
    torch=cpu
  fi
elif [ "$torch" = cpu ] && [ "$os" = Darwin ]; then
  torch=macos
fi

case "$torch" in
  cuda)
    [ "$os" = Darwin ] && { echo "select_lock.sh: there is no CUDA torch for macOS" >&2; exit 2; }
    echo "sync --python $venv/bin/python $compile $cuda_lock"
    ;;
  macos)
    # Same version as the CPU lock without the local tag; written beside the venv, not the repo.
    mkdir -p "$venv"
    echo "torch==${cpu_pin%%+*}" > "$venv/torch-macos.txt"
    say "macOS: CPU lock with torch==${cpu_pin%%+*} from PyPI (CPU and MPS)"
    echo "install --python $venv/bin/python $compile -r $cpu_lock --overrides $venv/torch-macos.txt"
    ;;
  cpu)
    wheel=""
    if [ -n "$find_links" ]; then
      wheel="$(find "$find_links" -maxdepth 1 -name "torch-${cpu_pin}-*.whl" 2> /dev/null | head -n 1)"
    fi
    if [ -n "$wheel" ]; then
      say "CPU lock, torch==$cpu_pin from the wheel folder $find_links"
      echo "sync --python $venv/bin/python $compile --find-links $find_links $cpu_lock"
    else
      say "CPU lock, torch==$cpu_pin from the PyTorch CPU index (download.pytorch.org/whl/cpu)"
      echo "sync --python $venv/bin/python $compile${find_links:+ --find-links $find_links}" \
        "--torch-backend cpu $cpu_lock"
    fi
    ;;
esac
