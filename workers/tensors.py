"""A study's data on a slot's device, put there once per study and shared by its trials.

Every fold indexes one copy of the features (see `workers.data.Fold`); an epoch on a
GPU copies nothing from the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
import torch
from torch import nn

from workers.data import Fold, PreparedData


class FoldTensors:
    """One fold on a device: row indices into the study's one copy of the data there, with
    the fold's standardization applied to the rows read (see `workers.data.Fold`)."""

    def __init__(self, fold: Fold, put: Callable[[np.ndarray], torch.Tensor]):
        self.x, self.y = put(fold.x), put(fold.y)
        self.rows_train, self.rows_val = put(fold.train), put(fold.val)
        self.rows_test = put(fold.test)
        self.shift, self.scale = put(fold.shift), put(fold.scale)
        self.y_shift, self.y_scale = fold.y_shift, fold.y_scale
        self.device = self.x.device

    def rows(self, split: str) -> torch.Tensor:
        return cast(torch.Tensor, getattr(self, f"rows_{split}"))

    def features(self, rows: torch.Tensor) -> torch.Tensor:
        return (self.x[rows] - self.shift) / self.scale

    def targets(self, rows: torch.Tensor) -> torch.Tensor:
        y = self.y[rows]
        return (y - self.y_shift) / self.y_scale if y.is_floating_point() else y

    # Materialized splits, for readers outside the training loop.
    @property
    def x_train(self) -> torch.Tensor:
        return self.features(self.rows_train)

    @property
    def y_train(self) -> torch.Tensor:
        return self.targets(self.rows_train)

    @property
    def x_val(self) -> torch.Tensor:
        return self.features(self.rows_val)

    @property
    def y_val(self) -> torch.Tensor:
        return self.targets(self.rows_val)

    @property
    def x_test(self) -> torch.Tensor:
        return self.features(self.rows_test)

    @property
    def y_test(self) -> torch.Tensor:
        return self.targets(self.rows_test)


class TensorData:
    """A study's prepared data on one device: each array once, however many folds index it."""

    def __init__(self, data: PreparedData, device: torch.device):
        self.task = data.task
        self.n_outputs = data.n_outputs
        self.sample_shape = data.sample_shape
        on_device: dict[int, torch.Tensor] = {}

        def put(array: np.ndarray) -> torch.Tensor:
            if id(array) not in on_device:
                on_device[id(array)] = _to_device(array, device)
            return on_device[id(array)]

        self.folds = [FoldTensors(fold, put) for fold in data.folds]
        if device.type == "cuda":
            torch.cuda.current_stream(device).synchronize()  # the pinned buffers may go now

    @classmethod
    def on_cpu(cls, data: PreparedData) -> TensorData:
        return cls(data, torch.device("cpu"))


def model_on_device(model: nn.Module, device: torch.device, *, channels_last: bool) -> nn.Module:
    """`model` on `device`, its weights channels-last there if `channels_last` and CUDA."""
    model = model.to(device)
    if channels_last and device.type == "cuda":
        # cuDNN's convolutions run faster on NHWC; the flat inputs become NCHW inside the
        # model, and a convolution with channels-last weights takes them channels-last.
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    # A copy: arrays from Ray's object store are read-only and shared.
    tensor = torch.tensor(array)
    if device.type != "cuda":
        return tensor
    # From pinned memory the copies are DMAs that run while the next one is set up.
    return tensor.pin_memory().to(device, non_blocking=True)
