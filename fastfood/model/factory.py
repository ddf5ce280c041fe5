"""`build(cfg)`: the one place a ModelConfig becomes a model.

The trainer, a resumed run, evaluate/predict/export and the benchmarks all build the
network from the same config through here, so they cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from fastfood.config import ModelConfig, is_random_init, resolve_norm


def build(cfg: ModelConfig, *, load_weights: bool = True, num_classes: int = 0) -> Any:
    """The model `cfg` describes.

    `load_weights=False` builds the same network with random variables, for a caller that
    restores a checkpoint over them (a resumed run, a trained run being loaded); the
    preprocessing convention then comes from `cfg.convention`.
    `num_classes` overrides `cfg.num_classes` (0: use the config's).
    The layout (batch norm or not) follows `cfg.norm` and the run's weights setting,
    whether or not the weights are loaded now, so a trained run is rebuilt as it trained.
    """
    from fastfood.model.vgg import vgg19

    weights = cfg.weights if load_weights and not is_random_init(cfg.weights) else None
    return vgg19(
        num_classes or cfg.num_classes, image_size=cfg.image_size, width=cfg.width,
        dropout=cfg.dropout, weights=weights,
        convention=None if weights else (cfg.convention or None),
        norm=resolve_norm(cfg.norm, cfg.weights),
    )
