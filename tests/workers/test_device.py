"""Which device a slot trains on, and what it says when it cannot use the GPUs it holds."""

from __future__ import annotations

import pytest
import torch

from workers.device import (
    DeviceUnavailable,
    device_name,
    free_memory,
    is_out_of_memory,
    peak_memory_mb,
    slot_device,
)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_a_slot_without_gpus_trains_on_the_cpu() -> None:
    device = slot_device([], node="n1")
    assert device == torch.device("cpu") and device_name(device) == "cpu"
    assert peak_memory_mb(device) is None
    free_memory(device)  # nothing to hand back, and no error


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_a_slot_given_gpus_without_cuda_refuses_naming_node_ids_and_cuda() -> None:
    with pytest.raises(DeviceUnavailable) as raised:
        slot_device(["0", "3"], node="a1b2c3d4")
    message = str(raised.value)
    assert "node a1b2c3d4" in message and "GPU ids ['0', '3']" in message
    assert (
        "torch.cuda.is_available() is False" in message and "does not train on the CPU" in message
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_a_test_cluster_may_let_declared_gpus_train_on_the_cpu() -> None:
    assert slot_device(["0"], node="n1", allow_cpu=True) == torch.device("cpu")


def test_torch_out_of_memory_is_recognized_and_other_errors_are_not() -> None:
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory."))
    assert not is_out_of_memory(RuntimeError("CUDA out of memory."))


@pytest.mark.gpu
@needs_cuda
def test_a_slot_given_a_gpu_trains_on_cuda_and_names_it() -> None:
    device = slot_device(["0"], node="n1")
    assert device.type == "cuda" and device_name(device) == torch.cuda.get_device_name(0)
    reserved = torch.cuda.memory_reserved(device)
    torch.cuda.reset_peak_memory_stats(device)
    block = torch.empty(64 * 2**20, dtype=torch.uint8, device=device)
    peak = peak_memory_mb(device)
    assert peak is not None and peak >= 64
    del block
    free_memory(device)
    assert torch.cuda.memory_reserved(device) <= reserved  # the cached block went back
