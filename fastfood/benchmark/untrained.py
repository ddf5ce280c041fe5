"""A run directory with random weights, for benchmarks and tests that need no training.

It is laid out exactly as the trainer leaves a run (config.json, classes.json and the
model-only checkpoint in best/, via `fastfood.rundir` and `checkpoints`), so predict,
evaluate and export read it through their normal path: a full-width VGG19 here measures
the real cold start (550 MB of weights) without hours of training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastfood.config import DataConfig, ModelConfig, RunConfig, TrainConfig


def write_untrained_run(
    run_dir: str | Path,
    classes: Sequence[str],
    *,
    image_size: int = 224,
    width: float = 1.0,
    display_names: Sequence[str] | None = None,
    data_root: str = "",
    seed: int = 0,
) -> Path:
    """Build VGG19 (float32, random init from `seed`) and save it as a finished run."""
    import keras
    import tensorflow as tf

    from fastfood.model import vgg19
    from fastfood.inference.runs import float32_policy
    from fastfood.rundir import BEST_DIR
    from fastfood.rundir import write_start

    run_dir = Path(run_dir)
    classes = tuple(classes)
    keras.utils.set_random_seed(seed)
    with float32_policy():
        model = vgg19(len(classes), image_size=image_size, width=width, weights=None)
    config = RunConfig(
        data=DataConfig(root=data_root),
        model=ModelConfig(num_classes=len(classes), image_size=image_size, width=width,
                          weights="none", convention="slim"),
        train=TrainConfig(precision="fp32", seed=seed, run_dir=str(run_dir)),
    )
    write_start(run_dir, config, classes, tuple(display_names or classes))
    # best/, as Checkpoints.save_best writes it (a CheckpointManager save). Not final/: a
    # model-only Checkpoint.write() there lacks `save_counter`, which restore_weights'
    # assert_existing_objects_matched() then reports as unmatched.
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model), str(run_dir / BEST_DIR), max_to_keep=1,
        checkpoint_name="best",
    )
    manager.save(checkpoint_number=0)
    return run_dir
