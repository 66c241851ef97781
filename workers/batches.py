"""How an epoch's rows are cut into batches, and an epoch's loss from its batches' losses."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

EVAL_CHUNK_ROWS = 1024  # fewest rows per evaluation forward pass: few passes, small peaks
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def batch_rows(n: int, size: int | str) -> int:
    """Rows per training batch of `n` rows for the `batch_size` knob (a number or "full")."""
    return n if size == "full" else min(int(size), n)


def min_batch_rows(model: nn.Module) -> int:
    """Fewest rows a training batch of `model` may have (see `batch_bounds`)."""
    return 2 if any(isinstance(m, _BATCH_NORMS) for m in model.modules()) else 1


def batch_bounds(n: int, size: int, *, min_rows: int = 1) -> list[tuple[int, int]]:
    """(start, stop) of each batch of an epoch over `n` rows in batches of `size`.

    A last batch under `min_rows` rows joins the one before: batch norm cannot normalize
    a single row in training (torch raises), and 1,077 rows at batch size 4 leave one.
    Joining rather than dropping it keeps every row in every epoch (the epoch's work and
    its loss the same) and the data order the seed gives, so a trial stays deterministic;
    one batch of `size + 1` rows changes nothing else."""
    bounds = [(start, min(start + size, n)) for start in range(0, n, size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_rows:
        bounds.pop()
        bounds[-1] = (bounds[-1][0], n)
    return bounds


def mean_over_samples(batch_losses: list[torch.Tensor], bounds: list[tuple[int, int]]) -> float:
    """Sample-weighted mean of batch means."""
    total = sum(
        float(loss) * (stop - start)
        for loss, (start, stop) in zip(batch_losses, bounds, strict=True)
    )
    return total / bounds[-1][1]


def forward_in_chunks(
    forward: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor, chunk: int
) -> torch.Tensor:
    """`forward` over `rows` in chunks of `chunk` rows, the outputs joined in row order."""
    return torch.cat([forward(rows[start : start + chunk]) for start in range(0, len(rows), chunk)])
