"""What a run gets right and wrong on a split: accuracy, which files, which classes.

    ev = evaluate("runs/food101", split="val")
    fastfood.report.outputs.write_outputs(ev, "runs/food101")
    # eval_val.json, predictions_val.csv, report_val.html, tb/eval_val, confusion_val.png

Images go through the same batched eval-view decoding as predict (`fastfood.inference.batches`,
the loaders' eval mode) and the same forward pass at the run's calibrated
temperature, so `predict` over the split's files at the same precision gives exactly the
top-1 answers and the probabilities counted here. At a precision other than fp32 the JSON's
`agreement` says how close that is to float32 (`fastfood.inference.agreement`); `seconds`
counts the evaluation alone, the agreement check has its own. Files that cannot be read or decoded are skipped and listed
(`skipped`); `n` counts the images actually evaluated.

Beyond top-1/top-5 and per-class accuracy it keeps every file's answer (`Records`), so it
can say which files are wrong (predictions CSV, top losses: the images with the lowest
probability on their true class), which classes are confused (the largest off-diagonal
cells), per-class precision and recall with their macro means, how well the confidence is
calibrated (ECE, before and after the temperature), and what a confidence threshold buys:
coverage and accuracy at --min-confidence, and the lowest threshold reaching
--target-accuracy.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastfood import scores
from fastfood.phases import PhaseTimer
from fastfood.config import MAX_PIXELS
from fastfood.errors import FastfoodError
from fastfood.inference.batches import Batch, decode_batches
from fastfood.inference.agreement import DEFAULT_SAMPLE
from fastfood.inference.forward import Forward, top_k
from fastfood.inference.precision import Precision

SPLITS = ("val", "test", "train")
TOP_K = 5
#: How many pairs and files the "most confused" and "top losses" lists hold.
TOP_LOSSES = 16
MOST_CONFUSED = 10
#: Default of --target-accuracy: the accuracy a threshold is searched for.
TARGET_ACCURACY = 0.95


@dataclass(frozen=True)
class Records:
    """Every evaluated file's answer, index-aligned: what the CSV and the lists are made of.

    `logits` are before the temperature (for the uncalibrated ECE); `probs` after it, as
    predict gives them; `predicted` is probs' top-1 (ties: lower class index, as predict).
    """

    files: tuple[str, ...]
    labels: np.ndarray  # int64 [n]
    logits: np.ndarray  # float32 [n, C]
    probs: np.ndarray  # float32 [n, C]
    predicted: np.ndarray  # int64 [n]
    temperature: float = 1.0

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels

    @property
    def confidence(self) -> np.ndarray:
        """Each file's top-1 probability."""
        return self.probs[np.arange(len(self.files)), self.predicted].astype(np.float64)

    @property
    def p_true(self) -> np.ndarray:
        return self.probs[np.arange(len(self.files)), self.labels].astype(np.float64)

    @property
    def loss(self) -> np.ndarray:
        """Cross-entropy of the true class, -log softmax(logits / T)[label], in float64 from
        the logits (no underflow for confidently wrong files)."""
        logp = scores.log_softmax(self.logits, self.temperature)
        return -logp[np.arange(len(self.files)), self.labels]

    def top_losses(self, k: int = TOP_LOSSES) -> list[int]:
        """Indices of the k largest losses, largest first (ties: input order)."""
        return list(np.argsort(-self.loss, kind="stable")[:k])


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation found. Accuracies are fractions of `n` (0 when n is 0)."""

    split: str
    classes: tuple[str, ...]
    display_names: tuple[str, ...]
    confusion: np.ndarray  # int64 [C, C]: rows true class, columns top-1 prediction
    top5_correct: int
    skipped: tuple[tuple[str, str], ...] = ()
    run_dir: str = ""
    data_root: str = ""
    checkpoint: str = ""
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    records: Records | None = None
    min_confidence: float | None = None
    target_accuracy: float = TARGET_ACCURACY
    step: int = 0  # the training step of the weights (summary.json), for TensorBoard

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def per_class_n(self) -> np.ndarray:
        return self.confusion.sum(axis=1)

    @property
    def per_class_correct(self) -> np.ndarray:
        return np.diag(self.confusion)

    @property
    def top1(self) -> float:
        return float(np.trace(self.confusion)) / self.n if self.n else 0.0

    @property
    def top5(self) -> float:
        return self.top5_correct / self.n if self.n else 0.0

    @property
    def class_scores(self) -> scores.ClassScores:
        return scores.class_scores(self.confusion)

    def most_confused(self, k: int = MOST_CONFUSED) -> list[dict[str, Any]]:
        """The class pairs the model mixes up most: true class, what it said, how often."""
        rows = self.per_class_n
        return [{"true": self.classes[t], "true_name": self.display_names[t],
                 "predicted": self.classes[p], "predicted_name": self.display_names[p],
                 "count": count, "share_of_true": count / int(rows[t])}
                for t, p, count in scores.most_confused(self.confusion, k)]

    def top_losses(self, k: int = TOP_LOSSES) -> list[dict[str, Any]]:
        """The k files with the highest loss (lowest probability on their true class)."""
        r = self.records
        if r is None:
            return []
        loss, conf, p_true = r.loss, r.confidence, r.p_true
        return [{"file": r.files[i], "true": self.classes[r.labels[i]],
                 "true_name": self.display_names[r.labels[i]],
                 "predicted": self.classes[r.predicted[i]],
                 "predicted_name": self.display_names[r.predicted[i]],
                 "p_true": float(p_true[i]), "p_predicted": float(conf[i]),
                 "loss": float(loss[i])} for i in r.top_losses(k)]

    def calibration(self) -> dict[str, Any] | None:
        """ECE and NLL at the run's temperature and without it (T = 1)."""
        r = self.records
        if r is None:
            return None
        raw = scores.softmax(r.logits)
        return {
            "temperature": r.temperature,
            "ece": scores.ece(r.confidence, r.correct),
            "ece_uncalibrated": scores.ece(raw.max(axis=1), raw.argmax(axis=1) == r.labels),
            "nll": scores.nll(r.logits, r.labels, r.temperature),
            "nll_uncalibrated": scores.nll(r.logits, r.labels),
            "bins": scores.ECE_BINS,
            "bin_rule": scores.BIN_RULE,
        }

    def at_min_confidence(self) -> scores.Selective | None:
        if self.records is None or self.min_confidence is None:
            return None
        return scores.selective(self.records.confidence, self.records.correct,
                                self.min_confidence)

    def for_target(self) -> scores.Selective | None:
        if self.records is None:
            return None
        return scores.threshold_for_accuracy(self.records.confidence, self.records.correct,
                                             self.target_accuracy)

    def to_json(self) -> dict[str, Any]:
        cs = self.class_scores
        per_class = []
        for i, (cls, name) in enumerate(zip(self.classes, self.display_names)):
            count = int(self.per_class_n[i])
            correct = int(self.per_class_correct[i])
            per_class.append({"class": cls, "name": name, "n": count, "correct": correct,
                              "top1": correct / count if count else None,
                              "precision": _defined(cs.precision[i]),
                              "recall": _defined(cs.recall[i]), "f1": _defined(cs.f1[i])})
        selective = self.at_min_confidence()
        target = self.for_target()
        return {
            "split": self.split, "n": self.n, "top1": self.top1, "top5": self.top5,
            "top5_k": min(TOP_K, len(self.classes)),
            "macro_precision": cs.macro_precision, "macro_recall": cs.macro_recall,
            "macro_f1": cs.macro_f1,
            "skipped": [{"file": f, "error": e} for f, e in self.skipped],
            "per_class": per_class, "most_confused": self.most_confused(),
            "top_losses": self.top_losses(), "calibration": self.calibration(),
            "min_confidence": selective.to_json() if selective else None,
            "target_accuracy": {"target": self.target_accuracy,
                                **(target.to_json() if target else {"threshold": None})},
            "run_dir": self.run_dir, "data": self.data_root,
            "checkpoint": self.checkpoint, "seconds": round(self.seconds, 3), **self.extra,
        }


def _defined(value: float) -> float | None:
    """JSON has no nan: an undefined score (a class never predicted) is null."""
    return None if np.isnan(value) else float(value)


def evaluate(
    run_dir: str | os.PathLike[str] | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    split: str = "val",
    loader: str = "auto",
    batch_size: int | None = None,
    timer: PhaseTimer | None = None,
    min_confidence: float | None = None,
    target_accuracy: float = TARGET_ACCURACY,
    precision: str | Precision = "fp32",
    agreement_sample: int = DEFAULT_SAMPLE,
    on_precision: Callable[[Precision], None] | None = None,
) -> Evaluation:
    """Evaluate a run (default: the newest under runs/) on `split` of its data (or `data`).

    `precision`: what the model computes in ('fp32' by default here, 'auto' as the command
    does, 'bf16', 'fp16'). When it is not fp32, `agreement_sample` of the evaluated images
    are run again at float32 and the JSON's `agreement` says how many answer the same top-1
    and the largest probability difference (0: not measured). `on_precision` is called with
    the choice as soon as it is made (the command prints it)."""
    from fastfood.inference.runs import inference_model, resolve_run_dir
    from fastfood.inference.precision import check as check_precision
    from fastfood.predict import check_min_confidence

    if split not in SPLITS:
        raise FastfoodError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    check_min_confidence(min_confidence)
    if not 0.0 < float(target_accuracy) <= 1.0:
        raise FastfoodError(f"--target-accuracy must be in (0, 1], got {target_accuracy:g}")
    if isinstance(precision, str):
        check_precision(precision)
    if int(agreement_sample) < 0:
        raise FastfoodError(f"--agreement-sample must be >= 0, got {agreement_sample}")
    path = resolve_run_dir(run_dir)
    from fastfood.rundir import read_info

    info = read_info(path)
    batch = int(batch_size) if batch_size is not None else \
        int(info.config.loader.batch_size or 64)
    if batch < 1:  # before the model is built: a bad flag costs no TensorFlow start
        raise FastfoodError(f"--batch-size must be >= 1, got {batch}")
    root, files, labels = split_files(info, data, split)
    loaded = inference_model(path, precision, timer=timer, images=len(files))
    model, info = loaded.model, loaded.info
    if on_precision is not None:
        on_precision(loaded.precision)
    start = time.perf_counter()
    records, skipped = collect(Forward(model, info.image_size, info.temperature), files, labels,
                               image_size=info.image_size, batch_size=batch, loader=loader,
                               max_pixels=info.config.loader.max_pixels, exif=info.exif)
    seconds = time.perf_counter() - start
    extra: dict[str, Any] = {"loader": loader, "batch_size": batch,
                             "precision": loaded.to_json(), "agreement": None}
    if loaded.precision.name != "fp32" and agreement_sample:
        from fastfood.inference.agreement import against_fp32

        del model, loaded  # the float32 copy is built next: one model in memory at a time
        extra["agreement"] = against_fp32(
            path, records.files, records.probs, sample=int(agreement_sample),
            batch_size=batch, loader=loader, max_pixels=info.config.loader.max_pixels)
    return Evaluation(
        split=split, classes=info.classes, display_names=info.display_names,
        confusion=confusion_of(records, info.num_classes), top5_correct=top5_hits(records),
        skipped=tuple(skipped), run_dir=str(path), data_root=str(root),
        checkpoint=info.checkpoint_path, seconds=seconds, extra=extra, records=records,
        min_confidence=min_confidence, target_accuracy=float(target_accuracy),
        step=_trained_steps(path),
    )


def _trained_steps(run_dir: Path) -> int:
    """The run's last step from summary.json (0 when it has none): TensorBoard's x axis."""
    import json

    from fastfood.rundir import SUMMARY

    try:
        return int(json.loads((Path(run_dir) / SUMMARY).read_text()).get("step", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def split_files(info: Any, data: str | os.PathLike[str] | None,
                split: str) -> tuple[Path, tuple[str, ...], tuple[int, ...]]:
    """(root, files, labels) of `split`, checked against the run's classes.

    `data` defaults to the run's config.json data root; an empty root there means the
    built-in sample, as in training. The split is drawn with the run's own settings
    (fraction, seed, duplicate grouping), so val is the val the run was validated on.
    """
    from fastfood import data as data_layer

    cfg = info.config.data
    root = data_layer.root_of(data if data is not None else cfg.root)
    spec = data_layer.load_config(cfg, root)
    if tuple(spec.classes) != tuple(info.classes):
        missing = [c for c in info.classes if c not in spec.classes][:3]
        extra = [c for c in spec.classes if c not in info.classes][:3]
        detail = "; ".join(([f"missing {missing}"] if missing else [])
                           + ([f"not in the run {extra}"] if extra else []))
        raise FastfoodError(
            f"--data {root}: its classes are not the run's ({len(spec.classes)} vs "
            f"{len(info.classes)} classes, {detail or 'same names in another order'})"
        )
    chosen = getattr(spec, split)
    if not chosen.files:
        hint = (" (class folders: train with --test-fraction, or add a test/ folder beside "
                "train/)" if split == "test" and spec.layout == "folders" else "")
        raise FastfoodError(f"--data {root}: the {split} split has no images{hint}")
    return Path(root), tuple(chosen.files), tuple(chosen.labels)


def collect(
    forward: Forward,
    files: Sequence[str],
    labels: Sequence[int],
    *,
    image_size: int,
    batch_size: int,
    loader: str = "auto",
    max_pixels: int = MAX_PIXELS,
    exif: bool = False,
) -> tuple[Records, list[tuple[str, str]]]:
    """(every readable file's answer, skipped (path, reason)), in input order; `exif`: the
    run's (`RunInfo.exif`)."""
    labels_arr = np.asarray(labels, dtype=np.int64)
    failures: list[tuple[int, str]] = []
    parts: list[tuple[tuple[int, ...], np.ndarray, np.ndarray]] = []
    traced = len(files) > batch_size
    for item in decode_batches(files, image_size=image_size, batch_size=batch_size, kind=loader,
                               max_pixels=max_pixels, exif=exif):
        if not isinstance(item, Batch):
            failures.append((item.index, item.reason))
            continue
        logits, probs = forward.outputs(item.images, traced=traced)
        parts.append((item.indices, logits, probs))
    parts.sort(key=lambda part: part[0][0])
    indices = [i for part in parts for i in part[0]]
    num_classes = parts[0][2].shape[1] if parts else 0
    logits = (np.concatenate([p[1] for p in parts]) if parts
              else np.zeros((0, num_classes), np.float32))
    probs = (np.concatenate([p[2] for p in parts]) if parts
             else np.zeros((0, num_classes), np.float32))
    best = top_k(probs, 1)[0][:, 0] if len(probs) else np.zeros(0, np.int64)
    records = Records(tuple(files[i] for i in indices), labels_arr[indices], logits, probs,
                      best.astype(np.int64), float(getattr(forward, "temperature", 1.0)))
    skipped = [(files[i], reason) for i, reason in sorted(failures)]
    return records, skipped


def confusion_of(records: Records, num_classes: int) -> np.ndarray:
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (records.labels, records.predicted), 1)
    return confusion


def top5_hits(records: Records) -> int:
    if not len(records.files):
        return 0
    best, _ = top_k(records.probs, TOP_K)
    return int((best == records.labels[:, None]).any(axis=1).sum())


def count(
    forward: Forward,
    files: Sequence[str],
    labels: Sequence[int],
    *,
    num_classes: int,
    image_size: int,
    batch_size: int,
    loader: str = "auto",
    max_pixels: int = MAX_PIXELS,
    exif: bool = False,
) -> tuple[np.ndarray, int, list[tuple[str, str]]]:
    """(confusion [C, C], top-5 hits, skipped (path, reason)) over `files`."""
    records, skipped = collect(forward, files, labels, image_size=image_size,
                               batch_size=batch_size, loader=loader, max_pixels=max_pixels,
                               exif=exif)
    return confusion_of(records, num_classes), top5_hits(records), skipped


def collect_logits(model: Any, image_size: int, files: Sequence[str], *, batch_size: int,
                   loader: str = "auto", exif: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """(logits [n, C] at T = 1, indices into `files` of those rows, skipped): for fitting a
    temperature (fastfood.calibrate) and the audit."""
    records, skipped = collect(Forward(model, image_size), files, [0] * len(files),
                               image_size=image_size, batch_size=batch_size, loader=loader,
                               exif=exif)
    where = {f: [] for f in files}
    for i, f in enumerate(files):
        where[f].append(i)
    # files may repeat: hand out their indices in order, as collect kept input order
    taken = {f: iter(ix) for f, ix in where.items()}
    return records.logits, np.asarray([next(taken[f]) for f in records.files], np.int64), skipped
