"""The run's model as the server uses it: bytes to eval-view pixels, batches to top-k.

Decoding is `preprocess.eval_image` (predict's, evaluate's and the export's), traced once for
a scalar string so each upload costs one graph call; the forward pass is predict's
`Forward` (the model at the chosen precision, float32 softmax at the run's calibrated
temperature, one trace for any batch size). Both are safe to call from several
threads: the server decodes on a small pool while one forward pass runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fastfood.inference.precision import FP32, Precision, record
from fastfood.predict import Guess
from fastfood.server.uploads import UploadError, check_bytes
from fastfood.rundir import RunInfo


class ServedModel:
    """A loaded run: `decode(bytes)` -> uint8 [S, S, 3], `probs(batch)` -> [n, classes]."""

    def __init__(self, model: Any, info: RunInfo, precision: Precision = FP32,
                 batch_norm_folded: bool = False) -> None:
        import tensorflow as tf

        from fastfood.loaders.preprocess import eval_image
        from fastfood.inference.forward import Forward

        self.info = info
        self.precision = precision
        self.batch_norm_folded = bool(batch_norm_folded)
        self.classes = tuple(info.classes)
        self.display_names = tuple(info.display_names) or self.classes
        self.image_size = int(info.image_size)
        self.forward = Forward(model, self.image_size, info.temperature)
        size, exif = self.image_size, info.exif
        self._decode = tf.function(lambda contents: eval_image(contents, size, exif),
                                   input_signature=[tf.TensorSpec([], tf.string)])
        self._tf = tf

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str] | None = None,
             model_path: str | os.PathLike[str] | None = None,
             precision: str | Precision = "fp32") -> "ServedModel":
        """Load a run as predict does (best/ else final/ else newest ckpt/, batch norm
        folded) at `precision` ('fp32' here by default; the command passes 'auto', which
        decides for batches since a server sees many images)."""
        from fastfood.inference.runs import inference_model, resolve_run_dir

        loaded = inference_model(resolve_run_dir(run_dir, model_path), precision,
                                 model_path=model_path)
        return cls(loaded.model, loaded.info, loaded.precision, loaded.folded)

    def decode(self, data: bytes, max_pixels: int) -> np.ndarray:
        """The eval view of one upload, or UploadError naming what is wrong with it."""
        check_bytes(data, max_pixels)
        try:
            return self._decode(self._tf.constant(data)).numpy()
        except (self._tf.errors.OpError, ValueError) as err:
            from fastfood.errors import one_line as _one_line

            raise UploadError(_one_line(err)) from None

    def probs(self, images: np.ndarray) -> np.ndarray:
        """float32 probabilities [n, num_classes] for uint8 images [n, S, S, 3]."""
        return self.forward(images, traced=True)

    def warm_up(self, max_batch: int) -> None:
        """Trace decode and forward now (batch 1 and max_batch), not on the first request."""
        tf = self._tf
        tiny = tf.io.encode_jpeg(tf.zeros([8, 8, 3], tf.uint8)).numpy()
        image = self.decode(tiny, max_pixels=64)
        for n in sorted({1, max_batch}):
            self.probs(np.repeat(image[None], n, axis=0))

    def top_k(self, probs: np.ndarray, k: int) -> list[list[Guess]]:
        """The k most likely classes of each row, most likely first."""
        from fastfood.inference.forward import top_k

        indices, values = top_k(np.atleast_2d(probs), k)
        return [[Guess(int(c), self.classes[c], self.display_names[c], float(p))
                 for c, p in zip(row_i, row_p)] for row_i, row_p in zip(indices, values)]

    def describe(self) -> dict[str, Any]:
        """GET /v1/model: what a client needs to know to use and cite this model."""
        cfg = self.info.config.model
        return {
            "name": "fastfood",
            "classes": list(self.classes),
            "display_names": list(self.display_names),
            "num_classes": len(self.classes),
            "image_size": self.image_size,
            "input": "JPEG or PNG bytes; centre square, antialiased bilinear resize",
            "weights_convention": self.info.convention,
            "temperature": self.info.temperature,
            "precision": record(self.precision, self.batch_norm_folded),
            "run": {
                "run_dir": str(Path(self.info.run_dir).resolve()),
                "checkpoint": self.info.checkpoint,
                "checkpoint_path": self.info.checkpoint_path,
                "width": cfg.width,
                "weights": cfg.weights,
            },
        }
