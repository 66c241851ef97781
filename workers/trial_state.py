"""What a trial keeps, saves and restores: its best epoch's weights, the file that
resumes it exactly (`state_file`), the file of its best weights (`weights_file`), and
the process-wide random generators it draws from.
"""

from __future__ import annotations

import copy
import io
import math
import random
from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from workers.direction import improves

STATE_FORMAT = 1
FoldWeights = dict[str, torch.Tensor]


class BestEpoch:
    """The best finite value so far in `direction`, its epoch, and every fold's weights then."""

    def __init__(self, direction: str) -> None:
        self.direction = direction
        self.value: float | None = None
        self.epoch: int | None = None
        self.weights: list[FoldWeights] | None = None

    def offer(self, value: float, epoch: int, weights: Callable[[], list[FoldWeights]]) -> None:
        """Keep `epoch` (and copy its weights) if `value` is finite and beats the best."""
        if math.isfinite(value) and improves(value, self.value, self.direction):
            self.value, self.epoch, self.weights = value, epoch, weights()

    def clear(self) -> None:
        self.value, self.epoch, self.weights = None, None, None

    def saved(self) -> dict[str, Any]:
        """The fields of a state file that `load` reads back."""
        return {"best_value": self.value, "best_epoch": self.epoch, "best_states": self.weights}

    def load(self, state: Mapping[str, Any]) -> None:
        self.value, self.epoch = state["best_value"], state["best_epoch"]
        self.weights = state["best_states"]


def copy_weights(model: nn.Module) -> FoldWeights:
    """A copy of `model`'s state dict that later training steps leave as it is."""
    return {
        k: v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
        for k, v in model.state_dict().items()
    }


def weights_file(weights: FoldWeights, model_info: Mapping[str, Any]) -> bytes:
    """`weights` with what rebuilds the model (`model_info`: model, sample_shape,
    n_outputs, task, params), for `torch.load(..., weights_only=True)`."""
    buffer = io.BytesIO()
    torch.save({"format": 1, "state_dict": weights, **model_info}, buffer)
    return buffer.getvalue()


def state_file(fields: Mapping[str, Any]) -> bytes:
    """A trial's `fields` with the format and the process-wide generators, serialized."""
    buffer = io.BytesIO()
    torch.save({"format": STATE_FORMAT, **fields, "rng": rng_state()}, buffer)
    return buffer.getvalue()


def read_state_file(data: bytes, *, device: torch.device, n_folds: int) -> dict[str, Any]:
    """The fields of `state_file`'s bytes, tensors on `device`.

    Raises ValueError for a file of another format or fold count."""
    state: dict[str, Any] = torch.load(io.BytesIO(data), weights_only=True, map_location=device)
    if state.get("format") != STATE_FORMAT or len(state["folds"]) != n_folds:
        raise ValueError("the checkpoint was written for another trial layout")
    return state


def rng_state() -> dict[str, Any]:
    """The process-wide generators (dropout draws from torch's), as plain tensors and lists
    so that `torch.load(weights_only=True)` reads them back."""
    kind, keys, pos, has_gauss, gauss = cast(tuple[Any, ...], np.random.get_state())
    state: dict[str, Any] = {
        "torch": torch.random.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": _plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.random.set_rng_state(state["torch"].cpu())
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, tuple) else value
