"""`compile: true`: the trial's model compiled with `torch.compile`, in place.

`nn.Module.compile` keeps the module (and its state_dict keys) as they are, so
snapshots, checkpoints and best weights work unchanged. TorchDynamo caches compiled
graphs per code object, process-wide, and recompiles when a guard fails; every
`nn.Sequential` shares one code object, so a slot that trains many architectures
would reach the recompile limit and fall back to eager without saying so. The cache
is therefore reset whenever a slot's compiled architecture changes: consecutive
trials of the same architecture reuse the compiled graphs, others compile afresh.
"""

from __future__ import annotations

import torch
from torch import nn

_last_architecture: list[str] = []  # per process, as TorchDynamo's own cache is


def compile_model(model: nn.Module) -> None:
    """Compile `model` in place for its next forward passes."""
    architecture = repr(model)
    if _last_architecture != [architecture]:
        torch._dynamo.reset()
        _last_architecture[:] = [architecture]
    model.compile()
