"""What one `fastfood export` is asked to do, checked before TensorFlow is imported.

One frozen value carries the request down (run, folder, format, the check's sample and
tolerances, precision), so the writers and the check do not re-declare a dozen keywords.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastfood.config import INFERENCE_PRECISIONS
from fastfood.errors import FastfoodError

FORMATS = ("savedmodel", "tflite", "onnx")
#: Precisions an export can be built in (`fastfood.export.network.serving_model`). float32
#: is the default: an exported file usually runs on another machine, and the TFLite and
#: ONNX runtimes take float32 models (their small form is the int8 TFLite file). A bf16 or
#: fp16 SavedModel is for TF Serving users, who pick a precision by model version;
#: 'auto' decides by THIS machine's hardware, as predict does.
PRECISIONS = INFERENCE_PRECISIONS
DEFAULT_PRECISION = "fp32"
DEFAULT_TOP_K = 5
#: Top-1 agreement with the run's own float32 forward pass an artifact must reach.
MIN_AGREEMENT = 0.995
#: The int8 TFLite model is allowed to differ more: quantizing activations to 8 bits moves
#: probabilities by a few percent, which flips near-ties.
MIN_AGREEMENT_INT8 = 0.95
#: Training images fed to the int8 converter to choose its activation ranges.
INT8_IMAGES = 100
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class ExportRequest:
    """One export: which run, where, in which format, and how it is checked.

    check_images: images of the val split run through the artifact (None: all of them; N:
    N evenly spaced, a stated sample). int8_images: training images the int8 TFLite model is
    calibrated on (0: no int8 model).
    """

    out: Path
    run_dir: Path | None = None
    format: str = FORMATS[0]
    top_k: int = DEFAULT_TOP_K
    force: bool = False
    data: Path | None = None
    check_images: int | None = None
    min_agreement: float = MIN_AGREEMENT
    min_agreement_int8: float = MIN_AGREEMENT_INT8
    int8_images: int = INT8_IMAGES
    batch_size: int = DEFAULT_BATCH_SIZE
    precision: str = DEFAULT_PRECISION

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise FastfoodError(f"--format {self.format}: must be one of {', '.join(FORMATS)}")
        if self.precision not in PRECISIONS:
            raise FastfoodError(f"--precision {self.precision}: must be one of "
                                f"{', '.join(PRECISIONS)}")
        if self.precision != "fp32" and self.format != "savedmodel":
            raise FastfoodError(f"--precision {self.precision} with --format {self.format}: "
                                "TFLite and ONNX files are written in float32 (the small "
                                "TFLite file is the int8 one); a bf16 or fp16 model is a "
                                "--format savedmodel export")
        if int(self.top_k) < 1:
            raise FastfoodError(f"--top-k must be >= 1, got {self.top_k}")
        if self.check_images is not None and int(self.check_images) < 1:
            raise FastfoodError(f"--check-images must be >= 1, got {self.check_images}")
        for flag, value in (("--min-agreement", self.min_agreement),
                            ("--min-agreement-int8", self.min_agreement_int8)):
            if not 0.0 <= float(value) <= 1.0:
                raise FastfoodError(f"{flag} is a fraction in [0, 1] (0.995 is 99.5%), "
                                    f"got {value:g}")
        if int(self.int8_images) < 0:
            raise FastfoodError(f"--int8-images must be >= 0, got {self.int8_images}")
        if int(self.batch_size) < 1:
            raise FastfoodError(f"--batch-size must be >= 1, got {self.batch_size}")
        object.__setattr__(self, "out", Path(self.out))
