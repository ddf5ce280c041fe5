"""Export a run as a SavedModel that takes encoded image bytes and returns its top-k classes.

    export_run("runs/food101", "exported/")
    # anywhere, without fastfood installed:
    m = tf.saved_model.load("exported/")
    out = m.signatures["serving_default"](images=tf.constant([jpeg_bytes]))
    out["classes"], out["names"], out["probs"]    # [n, k] int32, string, float32

The serving function is `preprocess.eval_image` mapped over the batch (`tf.map_fn`: images
of any size and either format, decoded one by one into the eval view), then the model, then
softmax and top-k: the same pixels and the same float32 forward pass as `fastfood predict`,
so both give the same top class with probabilities equal to rounding. The class names are a
constant in the graph. Built with `tf.Module` + `tf.function(input_signature=...)` +
`tf.saved_model.save`: the module tracks the Keras model (and so its variables); nothing of
fastfood is needed to load it.

Precision: float32, as predict (the run's mixed-precision policy only mattered for training
speed; the weights are float32 either way).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastfood.phases import PhaseTimer
from fastfood.errors import FastfoodError
from fastfood.predict import DEFAULT_TOP_K, check_top_k

SIGNATURE = "serving_default"


def serving_module(model: Any, display_names: Sequence[str], image_size: int, k: int) -> Any:
    """A tf.Module whose `serve(images)` maps encoded JPEG/PNG bytes [None] to top-k."""
    import tensorflow as tf

    from fastfood.loaders.preprocess import eval_image

    size = int(image_size)
    k = max(1, min(int(k), len(display_names)))

    class Serving(tf.Module):
        """Bytes in, classes out; see the module docstring of fastfood.export."""

        def __init__(self) -> None:
            super().__init__(name="fastfood_serving")
            self.model = model  # tracked: its variables are saved with the module
            self.names = tf.constant(list(display_names), dtype=tf.string)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
        def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
            def classify() -> tuple[tf.Tensor, tf.Tensor]:
                pixels = tf.map_fn(
                    lambda contents: eval_image(contents, size), images,
                    fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
                )
                probs = tf.nn.softmax(tf.cast(self.model(pixels, training=False), tf.float32))
                top = tf.math.top_k(probs, k=k)
                return top.indices, top.values

            def nothing() -> tuple[tf.Tensor, tf.Tensor]:
                return tf.zeros([0, k], tf.int32), tf.zeros([0, k], tf.float32)

            # An empty request never reaches the model: TensorFlow's CPU convolution gives an
            # empty batch the input's channel count, which the next layer then refuses.
            classes, probs = tf.cond(tf.size(images) > 0, classify, nothing)
            return {
                "classes": classes,
                "names": tf.gather(self.names, classes),
                "probs": probs,
            }

    return Serving()


def export_run(
    run_dir: str | os.PathLike[str] | None,
    out: str | os.PathLike[str],
    *,
    top_k: int = DEFAULT_TOP_K,
    overwrite: bool = False,
    timer: PhaseTimer | None = None,
) -> Path:
    """Write the SavedModel of a run (default: the newest under runs/) to `out`."""
    from fastfood.inference.runs import load_run, resolve_run_dir

    check_top_k(top_k)
    out = Path(out)
    check_out(out, overwrite)
    path = resolve_run_dir(run_dir)
    model, info = load_run(path, None, timer)
    import tensorflow as tf

    module = serving_module(model, info.display_names, info.image_size, top_k)
    tf.saved_model.save(module, str(out), signatures={SIGNATURE: module.serve})
    return out


def check_out(out: Path, overwrite: bool) -> None:
    """--out must be a new or empty folder (or --force): an export never mixes two models."""
    if out.exists() and not out.is_dir():
        raise FastfoodError(f"--out {out}: exists and is not a folder")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise FastfoodError(f"--out {out}: cannot create it, {parent} is a file")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FastfoodError(f"--out {out}: folder is not empty (use --force to write over it)")
