"""Mixed precision for one trial: the autocast dtype and, for fp16, a gradient scaler.

`bf16` keeps fp32's exponent range, so it trains without scaling; `fp16` does not,
so small gradients would flush to zero without `torch.amp.GradScaler`. `fp32` adds
nothing to the loop (no autocast context, a disabled scaler is a pass-through).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


class Precision:
    """How a trial's forward passes run and its losses are scaled, on `device`.

    Raises ValueError for bf16 on a GPU without bfloat16 support."""

    def __init__(self, name: str, device: torch.device):
        dtype = PRECISIONS[name]
        if dtype is torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(
                f"precision bf16 needs a GPU with bfloat16 support, got "
                f"{torch.cuda.get_device_name(device)}: use fp16 or fp32"
            )
        self.name = name
        self.autocast: Callable[[], contextlib.AbstractContextManager[Any]] = (
            contextlib.nullcontext
            if dtype is None
            else lambda: torch.autocast(device_type=device.type, dtype=dtype)
        )
        self.scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)

    def backward_and_step(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        *,
        clip: float | None,
        model: torch.nn.Module,
    ) -> None:
        """Backward, optional clipping of the true (unscaled) gradient norm, and a step that
        the scaler skips when fp16 gradients overflowed."""
        self.scaler.scale(loss).backward()
        if clip:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        self.scaler.step(optimizer)
        self.scaler.update()
