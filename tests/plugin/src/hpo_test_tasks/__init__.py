"""Tasks for the service's own tests (installed by `make install`, never by users).

`odd-errors`: an MLP on digits whose `variant` 3 raises, in its second epoch, an
exception that Ray cannot hand back to the service (its class needs two arguments, so
it does not unpickle: `ray.exceptions.UnserializableException`, a Ray error nobody
maps). Users' code raises such exceptions all the time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from workers.tasks import TrainingTask

ODD_VARIANT = 3
_ODD_AFTER_BATCHES = 30  # digits at batch size 64: 17 training batches an epoch


class NeedsTwoArgs(Exception):
    """Pickles as NeedsTwoArgs(message) and so cannot be rebuilt: Ray gives up on it."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class _Odd(nn.Module):
    def __init__(self, inner: nn.Module, odd: bool):
        super().__init__()
        self.inner = inner
        self.odd = odd
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.odd and self.calls > _ODD_AFTER_BATCHES:
                raise NeedsTwoArgs("the data loader's shared memory went away", 7)
        return self.inner(x)


class OddErrors(TrainingTask):
    description = "Digits MLP; variant 3 raises an exception Ray cannot deserialize (tests)."
    task = "classification"
    hyperparameters = {"variant": 0}

    def build_model(
        self, sample_shape: tuple[int, ...], n_outputs: int, params: dict[str, Any]
    ) -> nn.Module:
        width = int(np.prod(sample_shape))
        inner = nn.Sequential(nn.Linear(width, 32), nn.ReLU(), nn.Linear(32, n_outputs))
        return _Odd(inner, odd=int(params["variant"]) == ODD_VARIANT)

    def load_data(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        digits = load_digits()
        return (digits.data / 16.0).astype(np.float32), digits.target
