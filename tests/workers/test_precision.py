"""Mixed precision, torch.compile and the GPU path of the trainer: bf16 and fp16 train on the
CPU too; the CUDA-only parts (channels-last, peak memory) run where a GPU is."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch

from tests.workers.test_trainer import prepared
from workers.data import PreparedData
from workers.tensors import TensorData
from workers.trial_trainer import TrialTrainer

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def digits_data() -> PreparedData:
    return prepared()


@pytest.fixture(scope="module")
def digits(digits_data: PreparedData) -> TensorData:
    return TensorData(digits_data, CPU)


def forward_dtypes(trainer: TrialTrainer) -> list[torch.dtype]:
    """The dtype of the first layer's output in each training forward pass from now on."""
    seen: list[torch.dtype] = []
    first = next(m for m in trainer.folds[0].model.modules() if isinstance(m, torch.nn.Linear))
    first.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    return seen


def learn(data: TensorData, n_epochs: int, **params: Any) -> tuple[TrialTrainer, list[Any]]:
    trainer = TrialTrainer(
        data, {"hidden_units": 64, "lr": 0.01, "batch_size": 32, **params}, max_epochs=n_epochs
    )
    dtypes = forward_dtypes(trainer)
    curve = [trainer.train_epoch() for _ in range(n_epochs)]
    return trainer, [curve, dtypes]


@pytest.mark.parametrize(
    ("precision", "dtype"),
    [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)],
)
def test_each_precision_runs_its_forward_passes_in_its_dtype_and_learns_digits(
    digits: TensorData, precision: str, dtype: torch.dtype
) -> None:
    trainer, (curve, dtypes) = learn(digits, 5, precision=precision)
    assert set(dtypes) == {dtype}
    assert max(m["val_accuracy"] for m in curve) >= 0.9
    assert all(isinstance(m["val_loss"], float) for m in curve)
    assert trainer.folds[0].precision.scaler.is_enabled() == (precision == "fp16")
    assert "peak_gpu_memory_mb" not in curve[0]  # a CUDA-only metric


def test_bf16_reaches_the_accuracy_of_fp32_on_digits(digits: TensorData) -> None:
    best = {
        p: max(m["val_accuracy"] for m in learn(digits, 6, precision=p)[1][0])
        for p in ("fp32", "bf16")
    }
    assert abs(best["bf16"] - best["fp32"]) <= 0.03, best


def test_an_fp16_trial_resumes_with_its_loss_scale(digits: TensorData) -> None:
    params = {"hidden_units": 32, "precision": "fp16", "grad_clip": 1.0}
    first = TrialTrainer(digits, params, seed=3, max_epochs=4)
    for _ in range(2):
        first.train_epoch()
    scale = first.folds[0].precision.scaler.get_scale()
    resumed = TrialTrainer(digits, params, seed=3, max_epochs=4)
    resumed.load_state(first.state())
    assert resumed.folds[0].precision.scaler.get_scale() == scale
    assert resumed.train_epoch()["val_accuracy"] == first.train_epoch()["val_accuracy"]


def test_an_unknown_precision_is_refused_by_name() -> None:
    from workers.hyperparameters import check_value

    assert check_value("precision", "bf16") is None
    assert check_value("precision", "int8") == (
        "precision must be one of ['fp32', 'bf16', 'fp16'], got 'int8'"
    )
    assert check_value("compile", "yes") == "compile must be one of [True, False], got 'yes'"


def _inductor_compiles() -> str | None:
    """Why torch.compile cannot build CPU kernels here, or None when it can."""
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(4))
    except Exception as exc:  # noqa: BLE001 - any failure means: cannot compile here
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, on compiling
def test_a_compiled_trial_trains_and_keeps_its_state_dict_keys(digits: TensorData) -> None:
    reason = _inductor_compiles()
    if reason is not None:
        pytest.skip(f"torch.compile cannot compile here: {reason}")
    params = {"hidden_units": 16, "batch_size": "full", "lr": 0.05, "compile": True}
    trainer = TrialTrainer(digits, params, max_epochs=2)
    model = trainer.folds[0].model
    metrics = trainer.train_epoch()
    assert model._compiled_call_impl is not None  # nn.Module.compile took
    assert metrics["val_accuracy"] > 0.1
    eager = TrialTrainer(digits, {**params, "compile": False}, max_epochs=2)
    assert list(model.state_dict()) == list(eager.folds[0].model.state_dict())
    checkpoint = trainer.checkpoint()
    assert checkpoint is not None
    assert set(torch.load(io.BytesIO(checkpoint), weights_only=True)["state_dict"]) == set(
        model.state_dict()
    )


# -- on a GPU ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_cuda(digits_data: PreparedData) -> TensorData:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    return TensorData(digits_data, torch.device("cuda"))


@pytest.mark.gpu
@needs_cuda
def test_a_cuda_trial_keeps_its_data_on_the_gpu_and_reports_peak_memory(
    digits_cuda: TensorData,
) -> None:
    assert all(t.is_cuda for t in vars(digits_cuda.folds[0]).values() if torch.is_tensor(t))
    trainer, (curve, _) = learn(digits_cuda, 4)
    assert max(m["val_accuracy"] for m in curve) >= 0.9
    assert all(m["peak_gpu_memory_mb"] > 0 for m in curve)
    assert next(trainer.folds[0].model.parameters()).is_cuda


@pytest.mark.gpu
@needs_cuda
def test_bf16_on_the_gpu_learns_digits_as_well_as_fp32(digits_cuda: TensorData) -> None:
    best = {
        p: max(m["val_accuracy"] for m in learn(digits_cuda, 6, precision=p)[1][0])
        for p in ("fp32", "bf16")
    }
    assert abs(best["bf16"] - best["fp32"]) <= 0.03, best


@pytest.mark.gpu
@needs_cuda
def test_the_cnn_on_cuda_runs_channels_last(digits_cuda: TensorData) -> None:
    assert digits_cuda.sample_shape == (1, 8, 8)
    trainer = TrialTrainer(digits_cuda, {"conv_channels": 8, "hidden_units": 32}, model="cnn")
    conv = next(m for m in trainer.folds[0].model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert trainer.train_epoch()["val_accuracy"] > 0.1
