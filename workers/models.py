"""Model builders keyed by the spec's `model.kind`, with activations and inits by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


def _init_xavier(weight: Any, activation: str) -> None:
    nn.init.xavier_uniform_(weight, gain=nn.init.calculate_gain(_gain_name(activation)))


def _init_kaiming(weight: Any, activation: str) -> None:
    nn.init.kaiming_uniform_(
        weight, nonlinearity="leaky_relu" if activation == "leaky_relu" else "relu"
    )


def _init_orthogonal(weight: Any, activation: str) -> None:
    nn.init.orthogonal_(weight, gain=nn.init.calculate_gain(_gain_name(activation)))


def _gain_name(activation: str) -> Any:
    return activation if activation in ("relu", "tanh", "sigmoid", "leaky_relu") else "linear"


INITS: dict[str, Callable[[Any, str], None] | None] = {
    "default": None,
    "xavier": _init_xavier,
    "kaiming": _init_kaiming,
    "orthogonal": _init_orthogonal,
}


def _block(width_in: int, width_out: int, params: dict[str, Any]) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(width_in, width_out)]
    if params["batch_norm"]:
        layers.append(nn.BatchNorm1d(width_out))
    layers.append(ACTIVATIONS[params["activation"]]())
    if params["dropout"] > 0:
        layers.append(nn.Dropout(float(params["dropout"])))
    return layers


def build_mlp(sample_shape: tuple[int, ...], n_outputs: int, params: dict[str, Any]) -> nn.Module:
    """`hidden_layers` blocks of Linear, optional BatchNorm, activation and Dropout."""
    width = 1
    for dim in sample_shape:
        width *= dim
    layers: list[nn.Module] = []
    for _ in range(int(params["hidden_layers"])):
        layers += _block(width, int(params["hidden_units"]), params)
        width = int(params["hidden_units"])
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


def build_cnn(sample_shape: tuple[int, ...], n_outputs: int, params: dict[str, Any]) -> nn.Module:
    """Two conv blocks (`conv_channels`, then twice as many) and an MLP head, for (C,H,W) data."""
    if len(sample_shape) != 3:
        raise ValueError(f"cnn needs image samples shaped (C, H, W), got shape {sample_shape}")
    channels, height, width = sample_shape
    c = int(params["conv_channels"])

    def conv(c_in: int, c_out: int) -> list[nn.Module]:
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)]
        if params["batch_norm"]:
            layers.append(nn.BatchNorm2d(c_out))
        return [*layers, ACTIVATIONS[params["activation"]]()]

    pool = [nn.MaxPool2d(2)] if min(height, width) >= 4 else []
    return nn.Sequential(
        nn.Unflatten(1, sample_shape),
        *conv(channels, c),
        *pool,
        *conv(c, 2 * c),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        *_block(8 * c, int(params["hidden_units"]), params),
        nn.Linear(int(params["hidden_units"]), n_outputs),
    )


MODELS: dict[str, Callable[[tuple[int, ...], int, dict[str, Any]], nn.Module]] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
}


def build_model(
    kind: str, sample_shape: tuple[int, ...], n_outputs: int, params: dict[str, Any]
) -> nn.Module:
    """The model for a trial (`mlp`, `cnn` or `plugin:<task>`), its weights initialized as
    `params['init']` says."""
    if kind.startswith("plugin:"):
        from workers.tasks import load_task

        model = load_task(kind.removeprefix("plugin:")).build_model(sample_shape, n_outputs, params)
        if not isinstance(model, nn.Module):
            raise TypeError(f"{kind} built a {type(model).__name__}, not a torch.nn.Module")
    else:
        model = MODELS[kind](sample_shape, n_outputs, params)
    initialize = INITS[params["init"]]
    if initialize is not None:
        for module in model.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                initialize(module.weight, params["activation"])
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    return model


def plugin_defaults(kind: str) -> dict[str, Any]:
    """The extra knobs a plug-in task declares, with their defaults (none for a built-in)."""
    if not kind.startswith("plugin:"):
        return {}
    from workers.tasks import load_task

    return dict(load_task(kind.removeprefix("plugin:")).hyperparameters)


def plugin_loss(kind: str) -> Any:
    """A plug-in task's own loss, if it has one (None for a built-in model)."""
    if not kind.startswith("plugin:"):
        return None
    from workers.tasks import load_task

    return load_task(kind.removeprefix("plugin:")).loss_function()
