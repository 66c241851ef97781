"""The device a slot trains on, and the two ways a device ends a trial.

A slot that Ray gave GPUs trains on CUDA or not at all: a trial that asked for a
GPU and quietly trained on the CPU would misstate both its speed and its cost.
Running out of device memory is the trial's fault (its batch size, its width), so
the slot frees what the trial held and takes the next one.

The exception classes import no torch, so the service can name them.
"""

from __future__ import annotations

import gc
import sys
from typing import Any


class DeviceUnavailable(RuntimeError):
    """The slot holds GPUs that CUDA cannot use; every trial on it would fail the same way."""


class OutOfMemory(RuntimeError):
    """A trial ran out of device memory; the slot has freed what it held."""


def slot_device(gpu_ids: list[str], *, node: str, allow_cpu: bool = False) -> Any:
    """CUDA when Ray assigned GPUs, else the CPU.

    Raises DeviceUnavailable when GPUs were assigned but CUDA is not available, unless
    `allow_cpu` (test clusters that declare GPUs they do not have)."""
    import torch

    if not gpu_ids:
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if available:
        # Ray sets CUDA_VISIBLE_DEVICES to the assigned GPUs: the first is cuda:0 here.
        return torch.device("cuda", 0)
    if allow_cpu:
        return torch.device("cpu")
    raise DeviceUnavailable(
        f"node {node} assigned GPU ids {gpu_ids} to this slot, but "
        f"torch.cuda.is_available() is {available} (torch {torch.__version__}, CUDA build "
        f"{torch.version.cuda}): the trial does not train on the CPU instead; run CUDA torch "
        "on that node (the worker image's GPU target) or ask for gpus_per_trial: 0"
    )


def device_name(device: Any) -> str:
    """What a trial's record says it trained on: the GPU's model name, or `cpu`."""
    import torch

    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return str(device.type)


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is torch's out-of-memory error (without importing torch: an error of
    torch's was raised, or unpickled, only where torch is imported already)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(error, torch.OutOfMemoryError)


def free_memory(device: Any) -> None:
    """Return what a dropped trial held: collect its tensors, and on CUDA hand the cached
    blocks back so that the next trial (or a packed neighbour) can use them."""
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def reset_peak_memory(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: Any) -> float | None:
    """The most memory this process's tensors held on `device` since the last reset (CUDA
    only; None elsewhere)."""
    import torch

    if device.type != "cuda":
        return None
    return float(torch.cuda.max_memory_allocated(device)) / 2**20
