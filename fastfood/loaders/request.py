"""What a caller asks of a loader, declared once and checked once.

Every loader kind (``tfdata``, ``dali``, ``synthetic``) and the DALI pipeline take this one
frozen object instead of re-declaring a dozen keywords each, so a new option is added in
one place and a bad value is refused before any file is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from fastfood.errors import FastfoodError
from fastfood.config import AUGMENTS, CROPS, KINDS, MAX_PIXELS


@dataclass(frozen=True)
class LoaderRequest:
    """One input pipeline: which loader, which mode, which slice of which epochs.

    Training mode covers the epochs ``[epoch, epoch + epochs)`` in the order of
    ``order.epoch_order``, starting after ``skip_batches`` batches of the first one, and
    yields ``steps_per_epoch`` batches per epoch. Eval mode yields every file of the shard
    once. ``device``: where the batches should arrive ('' lets the loader choose: the GPU
    when TensorFlow sees one and the loader decodes there, else the host; 'cpu' forces
    the host; 'gpu:N' names a GPU). ``endless``: a consumer that counts its own steps
    (the training loop) takes DALI's dataset bare wherever it runs, so one iterator can
    serve every validation pass. ``skips``: where decode failures met while reading are
    recorded (a ``skips.SkipLog``). ``augment`` and ``random_erasing``: what training adds
    after the crop and flip (``spec.py``); ``exif``: turn JPEGs upright by their EXIF
    Orientation tag, in both modes.
    """

    kind: str = "auto"
    training: bool = True
    batch_size: int = 64
    image_size: int = 224
    seed: int = 0
    shard: tuple[int, int] = (0, 1)
    epoch: int = 0
    epochs: int = 1
    skip_batches: int = 0
    crop: str = "inception"
    num_threads: int = 0  # 0: let the loader choose from the cores and pipelines
    pipelines: int = 1  # pipelines this process runs side by side (one per local replica)
    device: str = ""
    endless: bool = False  # DALI: hand the dataset over bare on the host too (see dali.py)
    max_pixels: int = MAX_PIXELS  # the preflight's pixel cap (0: none)
    augment: str = "basic"
    random_erasing: float = 0.0
    exif: bool = False
    skips: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FastfoodError(f"--loader must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.crop not in CROPS:
            raise FastfoodError(f"--crop must be one of {', '.join(CROPS)}, got {self.crop!r}")
        if self.augment not in AUGMENTS:
            raise FastfoodError(f"--augment must be one of {', '.join(AUGMENTS)}, "
                                f"got {self.augment!r}")
        if not 0.0 <= self.random_erasing <= 1.0:
            raise FastfoodError(f"--random-erasing must be in [0, 1], got {self.random_erasing!r}")
        if self.batch_size < 1 or self.image_size < 1:
            raise FastfoodError(f"batch size and image size must be >= 1, got "
                                f"{self.batch_size} and {self.image_size}")
        if self.skip_batches < 0 or self.epoch < 0 or self.epochs < 1:
            raise ValueError(f"need epoch >= 0, epochs >= 1 and skip_batches >= 0, got "
                             f"{self.epoch}, {self.epochs}, {self.skip_batches}")
        if self.pipelines < 1:
            raise ValueError(f"pipelines must be >= 1, got {self.pipelines}")
        if self.num_threads < 0:
            raise FastfoodError(f"--num-threads must be 0 or more, got {self.num_threads}")
        index, count = int(self.shard[0]), int(self.shard[1])
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"shard must be (index, count) with 0 <= index < count, "
                             f"got {self.shard!r}")
        object.__setattr__(self, "shard", (index, count))
        if self.device and self.device != "cpu" and not self.device.startswith("gpu:"):
            raise ValueError(f"device must be '', 'cpu' or 'gpu:N', got {self.device!r}")

    def but(self, **changes: Any) -> "LoaderRequest":
        """A copy with some fields changed (and checked again)."""
        return replace(self, **changes)

    @property
    def gpu_index(self) -> int | None:
        """The GPU named by ``device``, or None."""
        return int(self.device.split(":", 1)[1]) if self.device.startswith("gpu:") else None
