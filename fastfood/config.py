"""Frozen configuration, one dataclass per concern, and every choice list of the product.

Built once by the CLI, passed explicitly, and written to the run directory as JSON so a
run can be resumed, evaluated and exported with exactly the settings it was trained with.

Each field is declared once, with `setting(...)`: its default, and in its metadata the flag
that sets it, the help text, its choices or its rule. `fastfood train`'s options are made
from that metadata (`fastfood.cli.options`), and `__post_init__` checks every field against
its rule when a config is made, so a flag, a resumed run's config.json and a library caller
meet the same rules and an error names the flag. Consumers trust a config they are given.

No TensorFlow here (and no import from the packages above this one).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastfood.errors import FastfoodError

# ---- the choices ---------------------------------------------------------------------------

#: Loaders that read image files (predict and evaluate take these); synthetic makes one
#: random batch up, to measure compute alone. auto: dali when its TF plugin imports.
FILE_KINDS = ("auto", "dali", "tfdata")
KINDS = (*FILE_KINDS, "synthetic")
#: Training crops: random-resized (inception) or a random square 10 px in from the shorter
#: side (square); auto picks by the recipe.
CROPS = ("inception", "square")
#: Training augmentation after the crop and flip: none more (basic), RandAugment (2 ops at
#: magnitude 9 of 31) or TrivialAugment-wide (1 op, random magnitude); see loaders/spec.py.
AUGMENTS = ("basic", "randaugment", "trivial")
#: Whether the EXIF Orientation tag turns JPEGs upright, in training and at inference.
EXIF_MODES = ("on", "off")
#: Numeric precision: mixed is the fast half type of the hardware (fp16 or bf16).
PRECISIONS = ("auto", "fp32", "mixed", "fp16", "bf16")
#: What predict, evaluate and serve compute in (fastfood.inference.precision): auto is the
#: fastest type this hardware computes natively, fp32 the old behaviour.
INFERENCE_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
XLA_MODES = ("auto", "on", "off")
#: Batch norm after each convolution: auto = batch from scratch, none with pretrained weights.
NORMS = ("auto", "batch", "none")
#: The decay of the learning rate after the warm-up.
SCHEDULES = ("linear", "cosine")
#: Loss weights per class: none, or balanced (n / (k * n_c) from the training split).
CLASS_WEIGHTS = ("none", "balanced")

#: Where Food-101's validation split comes from: carved out of meta/train.txt, or
#: meta/test.txt itself (runs saved before the test split existed).
VAL_FROM = ("train", "test")

#: Pillow's Image.MAX_IMAGE_PIXELS (1 GiB / 4 bytes per pixel / 3), its decompression-bomb
#: limit: an image declaring more pixels is refused before it is decoded.
MAX_PIXELS = 89_478_485

# ---- the recipe's defaults (fastfood.train.recipe applies them) ----------------------------

#: The batch the default rates are given for; other batches scale them linearly
#: (Goyal et al., 2017).
REFERENCE_BATCH = 64
#: Fine-tuning pretrained VGG19: SGD lr 1e-3 at batch 64, the rate VGG fine-tuning recipes
#: use (a fresh fc8 on a pretrained body diverges at ten times that).
FINETUNE_LR = 1e-3
#: From scratch with batch norm: 0.01 at batch 64 (0.02 did as well on the digits, worse
#: on the built-in sample; BENCHMARKS.md, "Learning").
SCRATCH_LR = 0.01
#: From scratch without batch norm (the plain net is less stable).
SCRATCH_PLAIN_LR = 0.006
SCRATCH_WARMUP_EPOCHS = 2.0
FINETUNE_CROP = "inception"
#: Random-resized crops down to 8 % of the image hide most of what a small random network
#: has to learn from in a short run, so from scratch takes almost the whole image.
SCRATCH_CROP = "square"
#: --save-every without a value, on CPUs; on GPUs it is 0 (only the timed saves).
CPU_SAVE_EVERY = 500


_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as 2h, 30m, 90s, 1h30m or 45 (seconds); '' is 0 (no
    limit). ValueError for anything else."""
    import re

    text = str(text).strip().lower()
    if not text:
        return 0.0
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", text)
    if not parts or re.sub(r"\s+", "", "".join(n + u for n, u in parts)) != \
            re.sub(r"\s+", "", text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _is_duration(text: Any) -> bool:
    try:
        return isinstance(text, str) and parse_duration(text) >= 0
    except ValueError:
        return False


def is_random_init(weights: str | None) -> bool:
    """Whether `--weights` means random initialisation (none, or nothing given)."""
    return weights is None or str(weights).strip().lower() in ("", "none")


def resolve_norm(norm: str, weights: str | None) -> str:
    """'batch' or 'none': what norm='auto' means for these weights (batch norm from
    scratch; none with pretrained weights, which have no batch norm)."""
    if norm != "auto":
        return norm
    return "batch" if is_random_init(weights) else "none"


# ---- declaring and checking a field ----------------------------------------------------------

Rule = tuple[Callable[[Any], bool], str]  # (ok(value), "what it must be")


def setting(default: Any, help: str = "", *, flag: str | None = None,
            choices: tuple[str, ...] = (), rule: Rule | tuple[Rule, ...] | None = None,
            switch: tuple[str, str] | None = None) -> Any:
    """A config field. `flag`: the CLI option ('' for none; None derives --field-name);
    `choices` or `rule`: checked when the config is made; `switch`: the values an on/off
    flag (`--x/--no-x`) stands for, the default meaning neither."""
    return field(default=default, metadata={"flag": flag, "help": help, "choices": choices,
                                            "rule": rule, "switch": switch})


def whole(low: int, *, optional: bool = False) -> tuple[Rule, Rule]:
    """A whole number (checked first, so 8.0 is refused as such), then >= low; `optional`
    lets None through (a default chosen later)."""
    return ((lambda v: (optional and v is None)
             or (isinstance(v, numbers.Integral) and not isinstance(v, bool)), "a whole number"),
            ((lambda v: (optional and v is None) or v >= low), f">= {low}"))


def between(low: float, high: float, *, high_open: bool = True, low_open: bool = False,
            what: str = "in") -> Rule:
    def ok(v: Any) -> bool:
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    return ok, (f"{what} {'(' if low_open else '['}{low:g}, {high:g}"
                f"{')' if high_open else ']'}")


def above(low: float, *, optional: bool = False) -> Rule:
    return (lambda v: (optional and v is None) or v > low), f"> {low:g}"


def at_least(low: float, *, optional: bool = False) -> Rule:
    return (lambda v: (optional and v is None) or v >= low), f">= {low:g}"


def flag_of(section: str, f: dataclasses.Field) -> str:
    """The name an error uses for a field: its flag, or section.field when it has none."""
    flag = f.metadata.get("flag")
    if flag is None:
        return "--" + f.name.replace("_", "-")
    return flag.split("/")[0] or f"{section}.{f.name}"


class _Checked:
    """Checks every field against its metadata when the dataclass is made."""

    SECTION = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value, name = getattr(self, f.name), flag_of(self.SECTION, f)
            choices, rule = f.metadata.get("choices"), f.metadata.get("rule")
            if choices and value not in choices:
                raise FastfoodError(
                    f"{name} must be one of {', '.join(choices)}, got {value!r}")
            rules = () if rule is None else (rule,) if callable(rule[0]) else rule
            for ok, text in rules:
                try:
                    good = bool(ok(value)) and not (isinstance(value, float) and math.isnan(value))
                except TypeError:
                    good = False
                if not good:
                    raise FastfoodError(f"{name} must be {text}, got {value!r}")


# ---- the sections --------------------------------------------------------------------------

@dataclass(frozen=True)
class DataConfig(_Checked):
    """Which dataset and which split of it.

    `val_from` says where Food-101's val split comes from: 'train' (val_fraction of each
    class of meta/train.txt, the default) or 'test' (meta/test.txt itself). It has no flag:
    it exists so the config.json of a run saved before the test split, which has no such
    key, reads back as 'test' (RunConfig.from_dict) and resuming or evaluating that run on
    'val' uses the images it was validated on.
    """

    SECTION = "data"
    root: str = setting("", "Dataset folder (Food-101 layout or class folders), or food101 for "
                        "the one `fastfood data food101` downloaded. Default: the built-in "
                        "sample.", flag="--data")
    val_fraction: float = setting(0.1, "The share of each class held out for validation: of "
                                  "Food-101's meta/train.txt, and of class folders without "
                                  "val/.", rule=between(0, 1, what="a number in"))
    test_fraction: float = setting(0.0, "Class folders without train/: the share of each class "
                                   "held out for `fastfood evaluate --split test` (Food-101 "
                                   "has meta/test.txt).",
                                   rule=between(0, 1, what="a number in"))
    split_seed: int = setting(0, "Seed of those held-out splits.", rule=whole(0))
    val_from: str = setting("train", flag="", choices=VAL_FROM)
    group_duplicates: bool = setting(
        True, "Class folders without train/ and val/: keep duplicate images (the same bytes, "
        "or a perceptual hash within 6 of 64 bits) on one side of the held-out splits, so "
        "none leaks from train into val or test.",
        flag="--group-duplicates/--no-group-duplicates")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.val_fraction + self.test_fraction >= 1.0:
            raise FastfoodError(f"--val-fraction plus --test-fraction must be below 1, got "
                                f"{self.val_fraction:g} + {self.test_fraction:g}")


@dataclass(frozen=True)
class LoaderConfig(_Checked):
    """How images get from files to batches. Values are 0-255 RGB whatever the kind; the
    output size is the model's input size, ModelConfig.image_size."""

    SECTION = "loader"
    kind: str = setting("auto", "Input pipeline.", flag="--loader", choices=KINDS)
    batch_size: int = setting(64, "Global batch, split over the replicas.", rule=whole(1))
    train_crop: str = setting(
        "auto", "Training crop: random-resized (inception), or a random square 10 px in from "
        "the shorter side (square); auto: inception fine-tuning, square from scratch.",
        flag="--crop", choices=("auto", *CROPS))
    num_threads: int = setting(0, "0: the cores split between this process's pipelines.",
                               flag="", rule=whole(0))
    max_pixels: int = setting(MAX_PIXELS, "Skip images that declare more pixels than this "
                              "(read from the header; 0: no cap).", rule=whole(0))
    augment: str = setting("basic", "Training augmentation after the crop and flip: none "
                           "more (basic), RandAugment or TrivialAugment-wide; the same ops "
                           "on DALI and tf.data.", choices=AUGMENTS)
    random_erasing: float = setting(0.0, "Probability of erasing one random rectangle of "
                                    "each training image (0: off).",
                                    rule=between(0, 1, high_open=False, what="a number in"))
    exif: str = setting("on", "Turn JPEGs upright by their EXIF Orientation tag (phone "
                        "photos), in training, evaluate, predict, serve and export alike.",
                        choices=EXIF_MODES)


@dataclass(frozen=True)
class ModelConfig(_Checked):
    """What network, at what width, from which weights."""

    SECTION = "model"
    num_classes: int = setting(0, "0: from the dataset.", flag="", rule=whole(0))
    image_size: int = setting(224, rule=whole(32))
    width: float = setting(1.0, "Channel multiplier (random init only; 0.125 for quick runs).",
                           rule=between(0, 4, low_open=True, high_open=False))
    dropout: float = setting(0.5, "Dropout rate before fc7 and fc8.", rule=between(0, 1))
    weights: str = setting("imagenet", "imagenet, none (random init), or a TF-slim checkpoint "
                           "prefix / Keras .h5.",
                           rule=(lambda v: isinstance(v, str) and bool(v),
                                 "imagenet, none or a path"))
    convention: str = setting("", "slim | keras: filled in from the weights when the model "
                              "is built.", flag="")
    norm: str = setting("auto", "Batch norm after each convolution (vgg19_bn): auto = batch "
                        "with --weights none, none with pretrained weights.", choices=NORMS)


@dataclass(frozen=True)
class TrainConfig(_Checked):
    """The optimisation and the bookkeeping around it."""

    SECTION = "train"
    epochs: int = setting(20, rule=whole(1))
    lr: float | None = setting(
        None, f"Peak learning rate. Default: {FINETUNE_LR:g} fine-tuning, {SCRATCH_LR:g} from "
        f"scratch ({SCRATCH_PLAIN_LR:g} with --norm none), each at batch {REFERENCE_BATCH} and "
        "scaled linearly with --batch-size.", rule=above(0, optional=True))
    end_lr_factor: float = setting(
        1e-4, "The rate decays to lr times this by the end of the run: low enough that the "
        "last epochs settle the weights.", flag="", rule=between(0, 1, high_open=False))
    warmup_epochs: float | None = setting(
        None, f"Linear warm-up to --lr over this many epochs. Default: 0 fine-tuning, "
        f"{SCRATCH_WARMUP_EPOCHS:g} from scratch.", rule=at_least(0, optional=True))
    schedule: str = setting("linear", "Decay after the warm-up.", choices=SCHEDULES)
    label_smoothing: float = setting(0.0, "Share of the target spread evenly over all "
                                     "classes.", rule=between(0, 1))
    class_weight: str = setting(
        "none", "Weight each example's loss by its class: balanced = n / (k * n_c) from the "
        "training split's counts (every class weighs the same in an epoch; for imbalanced "
        "folders).", choices=CLASS_WEIGHTS)
    head_lr_mult: float = setting(1.0, "fc8 learns at lr times this (e.g. 10 for a fresh head "
                                  "on pretrained weights).", rule=above(0))
    momentum: float = setting(0.9, rule=between(0, 1))
    weight_decay: float = setting(5e-4, rule=at_least(0))
    freeze_epochs: int = setting(0, "Train only fc8 for this many epochs, then end to end.",
                                 rule=whole(0))
    precision: str = setting("auto", "auto: bf16 on GPUs of compute capability >= 8.0, fp16 "
                             "with loss scaling on 7.x, bf16 on bf16 CPUs, else fp32.",
                             choices=PRECISIONS)
    xla: str = setting("auto", "XLA compilation [default: on for GPUs].", flag="--xla/--no-xla",
                       choices=XLA_MODES, switch=("on", "off"))
    val_every: int = setting(0, "Validate every N steps too (always at epoch ends).",
                             rule=whole(0))
    save_every: int | None = setting(
        None, "Checkpoint every N steps [default: 500 on CPUs, none by count on GPUs, where "
        "a save costs a visible share of an epoch] (also on a timer, at epoch ends and on "
        "Ctrl-C).", rule=whole(0, optional=True))
    save_every_s: float = setting(300.0, "And at least this often in wall-clock seconds.",
                                  flag="", rule=at_least(0))
    keep_checkpoints: int = setting(3, flag="", rule=whole(1))
    max_steps: int = setting(0, "Stop after N steps (0: epochs x steps per epoch).",
                             rule=whole(0))
    ema: float = setting(
        0.0, "Keep an exponential moving average of the weights with this decay (e.g. "
        "0.999; 0: off): validation, best/, final/ and so predict, evaluate and export use "
        "the averaged weights.", rule=between(0, 1))
    patience: int = setting(
        0, "Stop when val top-1 has not improved for N validations in a row (0: never); best/ "
        "keeps the best weights, which predict, evaluate and export use.", rule=whole(0))
    time_limit: str = setting(
        "", "Train for at most this long in all (2h, 30m, 90s, 1h30m; a resumed run counts "
        "the time before): after a few steps the LR schedule is fitted to the time left, and "
        "the run ends with a validation and a clean save.",
        rule=(_is_duration, "a duration like 2h, 30m or 90s"))
    strict: bool = setting(False, "Stop (with a checkpoint) on the first image that fails to "
                           "decode, instead of naming it and going on.")
    seed: int = setting(0, rule=whole(0))
    run_dir: str = setting("", "Where the run goes. Default: runs/<timestamp>.")


SECTIONS = ("data", "loader", "model", "train")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run was started with."""

    data: DataConfig = field(default_factory=DataConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def but(self, section: str, **changes: Any) -> "RunConfig":
        """A copy with some fields of one section changed (and checked again)."""
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **changes)})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """The inverse of to_dict. Also reads the config.json of older runs: before the
        loader's output size became the model's image_size alone (loader.image_size), before
        batch norm existed (no "norm": they are the plain net), before the pixel cap was a
        setting (no "max_pixels": the same default), when the square crop was called
        "seed", before the test split (no "val_from": they validated on Food-101's
        test.txt and trained on all of train.txt), and before the split kept duplicates
        together (no "group_duplicates": they split by file name alone, so False keeps their
        train/val split as it was), and before augmentation and EXIF settings (no "augment",
        "random_erasing", "exif": they trained with the crop and flip alone and read JPEGs
        as stored)."""
        loader = {k: v for k, v in d.get("loader", {}).items() if k != "image_size"}
        if loader.get("train_crop") == "seed":
            loader["train_crop"] = "square"
        if "loader" in d:
            loader.setdefault("augment", "basic")
            loader.setdefault("random_erasing", 0.0)
            loader.setdefault("exif", "off")
        model = dict(d.get("model", {}))
        model.setdefault("norm", "none" if "model" in d else ModelConfig.norm)
        data = dict(d.get("data", {}))
        data.setdefault("val_from", "test" if "data" in d else DataConfig.val_from)
        data.setdefault("group_duplicates",
                        False if "data" in d else DataConfig.group_duplicates)
        return cls(
            data=DataConfig(**data),
            loader=LoaderConfig(**loader),
            model=ModelConfig(**model),
            train=TrainConfig(**d.get("train", {})),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))
