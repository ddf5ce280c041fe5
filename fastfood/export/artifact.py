"""What a format's writer hands the check: a file it wrote, loaded back from disk."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Artifact:
    """One written model file and how to run it.

    probs: uint8 pixels [n, S, S, 3] -> float32 probabilities [n, C], through the file as a
    user would load it (not the in-memory model it was made from). top1_of_bytes, when the
    format takes encoded images itself (the SavedModel), runs that path too: encoded bytes
    -> top-1 class [n].
    """

    name: str
    file: str
    min_agreement: float
    probs: Callable[[np.ndarray], np.ndarray]
    top1_of_bytes: Callable[[Sequence[bytes]], np.ndarray] | None = None
    about: dict[str, Any] = field(default_factory=dict)
