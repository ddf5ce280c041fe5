"""The training recipe a run gets: the defaults that depend on the weights and the batch.

Two recipes, chosen by `--weights` (BENCHMARKS.md, "Learning", has the side-by-side runs;
the values are declared in fastfood.config):

- Fine-tuning pretrained weights: the plain VGG19, SGD lr 1e-3 at batch 64 with momentum
  0.9, no warm-up, linear decay to lr * 1e-4, Inception-style random-resized crops (the
  standard ImageNet augmentation VGG fine-tuning assumes).
- From scratch (`--weights none`): VGG19 with batch norm, lr 0.01 at batch 64 after a
  2-epoch linear warm-up, and a mild crop (a random square, almost the whole image), since
  random-resized crops down to 8 % of the image hide most of what a small random network
  has to learn from in a short run.

Checkpoints (`--save-every`, in steps): every 500 steps on CPUs; on GPUs none by step count,
only the timed ones (TrainConfig.save_every_s, 300 s) and those at epoch ends and on a
stop, since a GPU runs 500 steps in about a minute and a full VGG19 checkpoint with its
momentum is 1.15 GB (BENCHMARKS.md, "Checkpoints").

Any setting given explicitly (not None / 'auto') wins. The learning rates scale linearly
with the global batch (Goyal et al., 2017). A run's config is resolved once, before anything
else reads it, and config.json keeps the resolved values: the run dir tells what was used.
"""

from __future__ import annotations

import dataclasses

from fastfood.config import (
    CPU_SAVE_EVERY,
    FINETUNE_CROP,
    FINETUNE_LR,
    REFERENCE_BATCH,
    SCRATCH_CROP,
    SCRATCH_LR,
    SCRATCH_PLAIN_LR,
    SCRATCH_WARMUP_EPOCHS,
    RunConfig,
    is_random_init,
    resolve_norm,
)


def default_lr(weights: str | None, norm: str, batch_size: int) -> float:
    """The learning rate without --lr, for the resolved `norm`, scaled by batch / 64."""
    if not is_random_init(weights):
        base = FINETUNE_LR
    else:
        base = SCRATCH_LR if norm == "batch" else SCRATCH_PLAIN_LR
    return base * batch_size / REFERENCE_BATCH


def default_save_every(gpus: bool) -> int:
    """Steps between checkpoints without --save-every: none by count on GPUs."""
    return 0 if gpus else CPU_SAVE_EVERY


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def resolve(config: RunConfig, gpus: bool | None = None) -> RunConfig:
    """`config` with every 'auto' and None of the recipe replaced by its value.

    Idempotent. The resolved config is what the run trains with and what config.json keeps.
    `gpus`: whether this machine trains on GPUs (default: whether TensorFlow lists one).
    """
    m, t, lo = config.model, config.train, config.loader
    random_init = is_random_init(m.weights)
    norm = resolve_norm(m.norm, m.weights)
    lr = t.lr if t.lr is not None else default_lr(m.weights, norm, lo.batch_size)
    warmup = t.warmup_epochs if t.warmup_epochs is not None \
        else (SCRATCH_WARMUP_EPOCHS if random_init else 0.0)
    crop = lo.train_crop
    if crop == "auto":
        crop = SCRATCH_CROP if random_init else FINETUNE_CROP
    save_every = t.save_every
    if save_every is None:
        save_every = default_save_every(_has_gpu() if gpus is None else gpus)
    return dataclasses.replace(
        config,
        model=dataclasses.replace(m, norm=norm),
        train=dataclasses.replace(t, lr=lr, warmup_epochs=warmup, save_every=save_every),
        loader=dataclasses.replace(lo, train_crop=crop),
    )


def describe(config: RunConfig) -> str:
    """One line for the run's log: the recipe a resolved config trains with."""
    t = config.train
    return (f"recipe: norm {config.model.norm}, lr {t.lr:g} ({t.schedule} decay), warm-up "
            f"{t.warmup_epochs:g} epochs, crop {config.loader.train_crop}"
            + (f", label smoothing {t.label_smoothing:g}" if t.label_smoothing else "")
            + (f", fc8 lr x{t.head_lr_mult:g}" if t.head_lr_mult != 1 else "")
            + (f", class weights {t.class_weight}" if t.class_weight != "none" else "")
            + (f", EMA of the weights (decay {t.ema:g})" if t.ema else "")
            + (f", augment {config.loader.augment}" if config.loader.augment != "basic" else "")
            + (f", random erasing {config.loader.random_erasing:g}"
               if config.loader.random_erasing else "")
            + f", EXIF orientation {config.loader.exif}")
