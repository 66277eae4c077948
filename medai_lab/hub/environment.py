"""The environment a user server (and every kernel it starts) gets from its allocation."""

from __future__ import annotations

from medai_lab.hub.allocator import Allocation

#: Read by :func:`medai_lab.hub.memory.apply_memory_cap` in kernels and training processes.
ENV_FRACTION = "MEDAI_GPU_MEMORY_FRACTION"
ENV_PROFILE = "MEDAI_GPU_PROFILE"
ENV_DEVICES = "MEDAI_GPU_DEVICES"
ENV_MESSAGE = "MEDAI_GPU_MESSAGE"

#: Every variable :func:`gpu_env` may set (a server's old values are dropped before a spawn).
ALL_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "PYTORCH_CUDA_ALLOC_CONF",
    "XLA_PYTHON_CLIENT_MEM_FRACTION",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    ENV_FRACTION,
    ENV_PROFILE,
    ENV_DEVICES,
    ENV_MESSAGE,
)


def gpu_env(allocation: Allocation) -> dict[str, str]:
    """Environment variables for a server holding ``allocation``.

    * GPU profile: ``CUDA_VISIBLE_DEVICES`` and ``NVIDIA_VISIBLE_DEVICES`` list the held
      indexes or UUIDs (``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so indexes match ``nvidia-smi``).
      Time-sliced shares add ``MEDAI_GPU_MEMORY_FRACTION`` (PyTorch, applied by the kernel
      hook), ``XLA_PYTHON_CLIENT_MEM_FRACTION`` (JAX) and allocator settings that keep
      fragmentation low under a cap.
    * CPU profile: no device is visible (``CUDA_VISIBLE_DEVICES=-1``); ``MEDAI_GPU_MESSAGE``
      says why.

    Returns
    -------
    dict
        Variable -> value; ``MEDAI_GPU_PROFILE`` is always ``gpu`` or ``cpu``.
    """
    env = {ENV_PROFILE: allocation.profile, ENV_DEVICES: ",".join(d.id for d in allocation.devices)}
    if not allocation.devices:
        env.update(
            {"CUDA_VISIBLE_DEVICES": "-1", "NVIDIA_VISIBLE_DEVICES": "void", ENV_FRACTION: "0"}
        )
        if allocation.message:
            env[ENV_MESSAGE] = allocation.message
        return env
    visible = ",".join(d.visible for d in allocation.devices)
    env.update(
        {
            "CUDA_VISIBLE_DEVICES": visible,
            "NVIDIA_VISIBLE_DEVICES": visible,
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        }
    )
    fractions = [d.memory_fraction for d in allocation.devices if d.memory_fraction]
    if fractions:
        frac = f"{min(fractions):.4g}"
        env.update(
            {
                ENV_FRACTION: frac,
                "XLA_PYTHON_CLIENT_MEM_FRACTION": frac,
                "TF_FORCE_GPU_ALLOW_GROWTH": "true",
                "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
            }
        )
    return env
