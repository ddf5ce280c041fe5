"""The SavedModel: encoded image bytes in, the run's top-k classes out, no fastfood needed.

    m = tf.saved_model.load("exported/")
    out = m.signatures["serving_default"](images=tf.constant([jpeg_bytes]))
    out["classes"], out["names"], out["probs"]    # [n, k] int32, string, float32
    m.signatures["pixels"](pixels=uint8 [n, S, S, 3])["probs"]    # [n, C], preprocessed
    m.signatures["metadata"]()    # precision, temperature, image_size

`serving_default` maps `preprocess.eval_image` over the batch (`tf.map_fn`: images of any
size and either format, decoded one by one into the eval view), then the calibrated model
(`network.calibrated`: softmax(logits / T)), then top-k: the same pixels and the same
float32 numbers as `fastfood predict`. The class names are a constant in the graph. Built
with `tf.Module` + `tf.function(input_signature=...)` + `tf.saved_model.save` (TensorFlow's
own exporter): the module tracks the Keras model and so its variables.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from fastfood.export.artifact import Artifact
from fastfood.export.network import INPUT_NAME, OUTPUT_NAME
from fastfood.export.request import ExportRequest
from fastfood.rundir import RunInfo

SIGNATURE = "serving_default"
PIXELS_SIGNATURE = "pixels"
METADATA_SIGNATURE = "metadata"


def serving_module(served: Any, display_names: Sequence[str], image_size: int, k: int,
                   metadata: dict[str, Any] | None = None, exif: bool = False) -> Any:
    """A tf.Module: `serve(images)` bytes [None] -> top-k, `pixels(pixels)` -> probs,
    `metadata()` -> the constants of `metadata` (str, int or float values). `exif`: the
    run's orientation setting, so the bytes signature decodes as predict does."""
    import tensorflow as tf

    from fastfood.loaders.preprocess import eval_image

    size = int(image_size)
    k = max(1, min(int(k), len(display_names)))
    facts = dict(metadata or {})

    class Serving(tf.Module):
        """Bytes in, classes out; see the module docstring of fastfood.export.savedmodel."""

        def __init__(self) -> None:
            super().__init__(name="fastfood_serving")
            self.model = served  # tracked: its variables are saved with the module
            self.names = tf.constant(list(display_names), dtype=tf.string)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
        def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
            def classify() -> tuple[tf.Tensor, tf.Tensor]:
                pixels = tf.map_fn(
                    lambda contents: eval_image(contents, size, exif), images,
                    fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
                )
                top = tf.math.top_k(self.model(pixels, training=False), k=k)
                return top.indices, top.values

            def nothing() -> tuple[tf.Tensor, tf.Tensor]:
                return tf.zeros([0, k], tf.int32), tf.zeros([0, k], tf.float32)

            # An empty request never reaches the model: TensorFlow's CPU convolution gives an
            # empty batch the input's channel count, which the next layer then refuses.
            classes, probs = tf.cond(tf.size(images) > 0, classify, nothing)
            return {"classes": classes, "names": tf.gather(self.names, classes), "probs": probs}

        @tf.function(input_signature=[
            tf.TensorSpec([None, size, size, 3], tf.uint8, name=INPUT_NAME)])
        def pixels(self, pixels: tf.Tensor) -> dict[str, tf.Tensor]:
            return {OUTPUT_NAME: self.model(pixels, training=False)}

        @tf.function(input_signature=[])
        def metadata(self) -> dict[str, tf.Tensor]:
            return {key: tf.constant(value) for key, value in facts.items()}

    return Serving()


def write(served: Any, info: RunInfo, folder: Path, request: ExportRequest,
          metadata: dict[str, Any]) -> list[Artifact]:
    """Save the SavedModel into `folder` itself; return it loaded back from there."""
    import tensorflow as tf

    module = serving_module(served, info.display_names, info.image_size, request.top_k,
                            metadata, exif=info.exif)
    tf.saved_model.save(module, str(folder), signatures={
        SIGNATURE: module.serve, PIXELS_SIGNATURE: module.pixels,
        METADATA_SIGNATURE: module.metadata})
    return [load(folder, request.min_agreement)]


def load(folder: Path, min_agreement: float) -> Artifact:
    """The SavedModel at `folder` as the check runs it (both signatures)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))  # the closures keep it (and its variables)

    def probs(pixels: np.ndarray) -> np.ndarray:
        out = loaded.signatures[PIXELS_SIGNATURE](pixels=tf.constant(pixels))
        return out[OUTPUT_NAME].numpy()

    def top1_of_bytes(contents: Sequence[bytes]) -> np.ndarray:
        out = loaded.signatures[SIGNATURE](images=tf.constant(list(contents)))
        return out["classes"].numpy()[:, 0]

    return Artifact("savedmodel", ".", min_agreement, probs, top1_of_bytes,
                    {"signatures": [SIGNATURE, PIXELS_SIGNATURE, METADATA_SIGNATURE]})
