"""Classify image files with a trained run: top-k classes and probabilities per file.

    predictor = Predictor.load("runs/food101")
    for p in predictor.predict_files(["a.jpg", "photos/"], top_k=5):
        print(p.file, p.error or p.top_k[0].name)

The pixels the model sees are the eval loader's (`fastfood.inference.batches`: the loaders'
eval mode in batches, or `preprocess.eval_image` itself for a handful of files), so a file
gets the same answer here as in `fastfood evaluate` and from the exported SavedModel.
A file that cannot be read or decoded gets a `Prediction` with `error` set, in its place in
the input order; the others still get answers.

Probabilities are calibrated by the run's temperature when it has one (`fastfood.calibrate`).
With `min_confidence`, a file whose top probability is under it is answered "unknown":
`unknown: true` in its JSON (its top-k still listed, for who wants to look), and an
`unknown` line before the guesses in the text output.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastfood.phases import PhaseTimer
from fastfood.config import MAX_PIXELS
from fastfood.errors import FastfoodError
from fastfood.inference.batches import Batch, decode_batches
from fastfood.inference.forward import Forward, is_unknown, top_k
from fastfood.inference.precision import FP32, Precision

DEFAULT_TOP_K = 5
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class Guess:
    """One of a file's top-k: class index, class name (folder/id), display name, probability."""

    index: int
    cls: str
    name: str
    prob: float

    def to_json(self) -> dict[str, Any]:
        return {"class": self.cls, "name": self.name, "index": self.index, "prob": self.prob}


@dataclass(frozen=True)
class Prediction:
    """The answer for one file: its top-k guesses, or why it has none."""

    file: str
    top_k: tuple[Guess, ...] = field(default_factory=tuple)
    error: str | None = None
    unknown: bool | None = None  # None: no --min-confidence asked for

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"file": self.file, "error": self.error}
        out: dict[str, Any] = {"file": self.file, "top_k": [g.to_json() for g in self.top_k]}
        if self.unknown is not None:
            out["unknown"] = self.unknown
        return out


class Predictor:
    """A run's model with its class names, input size and precision, ready to classify files.

    `precision` records what the model computes in (`fastfood.inference.precision`; the
    softmax and top-k are float32 whatever it is)."""

    def __init__(
        self,
        model: Any,
        classes: Sequence[str],
        display_names: Sequence[str],
        image_size: int,
        run_dir: str | os.PathLike[str] = "",
        max_pixels: int = MAX_PIXELS,
        temperature: float = 1.0,
        exif: bool = False,
        precision: Precision = FP32,
        batch_norm_folded: bool = False,
    ) -> None:
        self.model = model
        self.precision = precision
        self.batch_norm_folded = bool(batch_norm_folded)
        self.max_pixels = int(max_pixels)  # the run's preflight pixel cap
        self.exif = bool(exif)  # the run's: JPEGs turned upright by their EXIF tag
        self.classes = tuple(classes)
        self.display_names = tuple(display_names) or self.classes
        self.image_size = int(image_size)
        self.run_dir = Path(run_dir)
        self.temperature = float(temperature)
        self.forward = Forward(model, self.image_size, self.temperature)

    @classmethod
    def load(
        cls,
        run_dir: str | os.PathLike[str] | None = None,
        model_path: str | os.PathLike[str] | None = None,
        timer: PhaseTimer | None = None,
        precision: str | Precision = "fp32",
        images: int | None = None,
    ) -> "Predictor":
        """Load a run: `run_dir`, the run of `model_path`, or the newest under runs/.

        `precision`: 'fp32' (the default here, so a script's numbers do not depend on the
        machine), 'auto' (what the commands use: decided for `images` images when known),
        'bf16' or 'fp16'. Batch norm is folded into the convolutions."""
        from fastfood.inference.runs import inference_model, resolve_run_dir

        path = resolve_run_dir(run_dir, model_path)
        loaded = inference_model(path, precision, model_path=model_path, timer=timer,
                                 images=images)
        info = loaded.info
        return cls(loaded.model, info.classes, info.display_names, info.image_size,
                   info.run_dir, max_pixels=info.config.loader.max_pixels,
                   temperature=info.temperature, precision=loaded.precision,
                   batch_norm_folded=loaded.folded, exif=info.exif)

    def precision_json(self) -> dict[str, Any]:
        """What --json outputs record about the precision."""
        from fastfood.inference.precision import record

        return record(self.precision, self.batch_norm_folded)

    def predict_files(
        self,
        files: Sequence[str],
        *,
        top_k: int = DEFAULT_TOP_K,
        batch_size: int = DEFAULT_BATCH_SIZE,
        loader: str = "auto",
        timer: PhaseTimer | None = None,
        min_confidence: float | None = None,
    ) -> Iterator[Prediction]:
        """One Prediction per file, in the order of `files`, as soon as each is known;
        with `min_confidence`, each says whether it is `unknown` (see the module doc)."""
        check_top_k(top_k)
        check_min_confidence(min_confidence)
        if batch_size < 1:
            raise FastfoodError(f"--batch-size must be >= 1, got {batch_size}")
        timer = timer or PhaseTimer(enabled=False)
        files = [str(f) for f in files]
        # Trace the model only when there will be more than one batch (see serve.forward).
        traced = len(files) > batch_size
        stream = decode_batches(files, image_size=self.image_size, batch_size=batch_size,
                                max_pixels=self.max_pixels, exif=self.exif,
                                kind=loader)
        ready: dict[int, Prediction] = {}
        next_out = 0
        for item in _timed(stream, timer, "decode"):
            if isinstance(item, Batch):
                with timer.phase("forward"):
                    probs = self.forward(item.images, traced=traced)
                unknown = (is_unknown(probs, min_confidence) if min_confidence is not None
                           else [None] * len(item.indices))
                for i, row, unsure in zip(item.indices, self._guesses(probs, top_k), unknown):
                    ready[i] = Prediction(files[i], row,
                                          unknown=None if unsure is None else bool(unsure))
            else:
                ready[item.index] = Prediction(files[item.index], error=item.reason)
            while next_out in ready:
                yield ready.pop(next_out)
                next_out += 1
        if next_out != len(files):  # cannot happen unless decode_batches breaks its promise
            missing = [files[i] for i in range(next_out, len(files)) if i not in ready]
            raise RuntimeError(f"no answer for {len(missing)} files, first {missing[:1]}")

    def _guesses(self, probs: Any, k: int) -> list[tuple[Guess, ...]]:
        indices, values = top_k(probs, k)
        return [
            tuple(Guess(int(c), self.classes[c], self.display_names[c], float(p))
                  for c, p in zip(row_i, row_p))
            for row_i, row_p in zip(indices, values)
        ]


def check_top_k(top_k: int) -> int:
    """--top-k must be at least 1 (more than the class count just means all classes)."""
    if int(top_k) < 1:
        raise FastfoodError(f"--top-k must be >= 1, got {top_k}")
    return int(top_k)


def check_min_confidence(value: float | None) -> float | None:
    """--min-confidence is a probability: 0 (answer everything) to 1."""
    if value is None:
        return None
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise FastfoodError(f"--min-confidence must be in [0, 1], got {value:g}")
    return value


def _timed(stream: Iterable[Any], timer: PhaseTimer, name: str) -> Iterator[Any]:
    """Yield from `stream`, adding the time spent waiting for each item to phase `name`."""
    it = iter(stream)
    while True:
        with timer.phase(name):
            try:
                item = next(it)
            except StopIteration:
                return
        yield item


def format_text(prediction: Prediction) -> str:
    """Human output: the file, then one `prob  name` line per guess (or the error)."""
    if prediction.error is not None:
        return f"{prediction.file}\n  error: {prediction.error}"
    lines = [prediction.file]
    if prediction.unknown:
        lines.append("  unknown  (no class reaches --min-confidence)")
    lines += [f"  {g.prob:7.2%}  {g.name}" for g in prediction.top_k]
    return "\n".join(lines)
