"""Export a run as a SavedModel, TFLite (float and int8) or ONNX, checked before it is kept.

    from fastfood.export import ExportRequest, export_run
    result = export_run(ExportRequest(out=Path("exported"), run_dir=Path("runs/food101"),
                                      format="onnx"))
    result.passed, [a.agreement for a in result.artifacts]

Every format is written from one calibrated model (`network`: the run's float32 network,
then softmax at its fitted temperature, as predict answers), by TensorFlow's or Keras' own
exporter, into a staging folder. The val split (or a stated sample) is then run through
the files just written and through the run itself on the same pixels: top-1 agreement,
the largest probability difference, latency and throughput (`check`). Under the tolerance
the export fails and nothing is left; otherwise the folder is renamed into place with
preprocessing.json (input size, crop, normalization, temperature, precision) and
export_check.json beside the model.

This module imports no TensorFlow: the CLI reads its defaults before checking flags.
"""

from typing import TYPE_CHECKING

from fastfood.export.request import (DEFAULT_TOP_K, FORMATS, INT8_IMAGES, MIN_AGREEMENT,
                                     MIN_AGREEMENT_INT8, ExportRequest)
from fastfood.export.savedmodel import SIGNATURE
from fastfood.export.staging import check_out

__all__ = ["DEFAULT_TOP_K", "FORMATS", "INT8_IMAGES", "MIN_AGREEMENT", "MIN_AGREEMENT_INT8",
           "ExportRequest", "SIGNATURE", "check_out", "export_run"]


if TYPE_CHECKING:
    from fastfood.export.check import CheckResult
    from fastfood.phases import PhaseTimer


def export_run(request: ExportRequest, timer: "PhaseTimer | None" = None) -> "CheckResult":
    """`fastfood.export.run.export_run`, imported when called (it pulls in numpy and the
    writers; this package's import stays light for the CLI)."""
    from fastfood.export.run import export_run as run

    return run(request, timer)
