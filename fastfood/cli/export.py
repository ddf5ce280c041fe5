"""`fastfood export --out DIR [--format savedmodel|tflite|onnx]`: a checked, calibrated model.

savedmodel (default): `serving_default(images: string [None])` returns `classes` (int32
[n, k]), `names` (string [n, k]) and `probs` (float32 [n, k]); preprocessing is inside, so
`tf.saved_model.load(DIR)` is all a server needs (no fastfood). tflite writes model.tflite
and model_int8.tflite, onnx model.onnx: uint8 pixels in, probabilities out, with the
preprocessing described in DIR/preprocessing.json. Every export is run on the val split
(or --check-images N of it) and compared with the run before it is kept; it fails (exit
2, nothing written) under --min-agreement. Prints a table of the check, or with --json
export_check.json's content alone on stdout.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from fastfood.cli.stdout import answers_only
from fastfood.export import (DEFAULT_TOP_K, FORMATS, INT8_IMAGES, MIN_AGREEMENT,
                             MIN_AGREEMENT_INT8)
from fastfood.export.request import DEFAULT_PRECISION, PRECISIONS


@click.command()
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="Run to export (default: the newest under runs/).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for the export (new or empty; with --force replaced once the new "
                   "one passed its check).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=FORMATS[0],
              show_default=True, help="savedmodel: bytes in; tflite (float + int8), onnx: "
                                      "pixels in (see preprocessing.json). tflite and onnx "
                                      "need pip install 'fastfood[export]'.")
@click.option("--top-k", type=int, default=DEFAULT_TOP_K, show_default=True,
              help="Classes the SavedModel's serving_default returns per image.")
@click.option("--force", is_flag=True, help="Replace a non-empty --out folder.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset root for the check images (default: the run's).")
@click.option("--check-images", type=int, default=None,
              help="Check on N val images, evenly spaced (default: the whole val split).")
@click.option("--min-agreement", type=float, default=MIN_AGREEMENT, show_default=True,
              help="Fail under this top-1 agreement with the run (a fraction: 0.995 = 99.5%).")
@click.option("--min-agreement-int8", type=float, default=MIN_AGREEMENT_INT8,
              show_default=True, help="The same for the int8 TFLite model.")
@click.option("--int8-images", type=int, default=INT8_IMAGES, show_default=True,
              help="Training images the int8 TFLite model is calibrated on (0: no int8).")
@click.option("--batch-size", type=int, default=32, show_default=True,
              help="Images per batch in the check (and its throughput figure).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=DEFAULT_PRECISION,
              show_default=True,
              help="What the exported model computes in. fp32 by default: the file usually "
                   "runs elsewhere, and TFLite/ONNX take float32. bf16 or fp16 (savedmodel "
                   "only) for TF Serving model versions; auto decides by this machine, as "
                   "predict does. Checked against the run's float32 answers either way.")
@click.option("--json", "as_json", is_flag=True, help="Print export_check.json's content.")
def export(run_dir: Path | None, out: Path, fmt: str, top_k: int, force: bool,
           data: Path | None, check_images: int | None, min_agreement: float,
           min_agreement_int8: float, int8_images: int, batch_size: int,
           precision: str, as_json: bool) -> None:
    """Export a trained run (SavedModel, TFLite or ONNX), checked against the run."""
    from fastfood.data import check_root
    from fastfood.export import ExportRequest, check_out, export_run
    from fastfood.export.extras import require
    from fastfood.inference.runs import resolve_run_dir

    request = ExportRequest(out=out, run_dir=run_dir, format=fmt, top_k=top_k, force=force,
                            data=data, check_images=check_images, min_agreement=min_agreement,
                            min_agreement_int8=min_agreement_int8, int8_images=int8_images,
                            batch_size=batch_size, precision=precision)
    check_out(out, force)  # fail fast, before TensorFlow is imported
    require(fmt)
    path = resolve_run_dir(run_dir)
    if data is not None:
        check_root(data)
    from fastfood.export.run import ExportCheckFailed

    with answers_only() as stdout:  # converters' chatter goes to stderr
        try:
            result = export_run(request)
        except ExportCheckFailed as failed:  # the figures first, then the one-line error
            click.echo(table(failed.result), err=True)
            raise
        if as_json:
            click.echo(json.dumps(result.to_json()), file=stdout)
            return
        click.echo(f"exported {path} as {fmt} ({result.precision}) to {out}; checked on "
                   f"{result.sample} "
                   f"({len(result.skipped)} skipped), batch {result.batch_size}:", file=stdout)
        click.echo(table(result), file=stdout)


def table(result) -> str:  # noqa: ANN001 - a fastfood.export.check.CheckResult
    """The check as aligned text: one row per artifact under the run's own row."""
    head = ("model", "top-1 agree", "max |dp|", "latency b1", "throughput", "needs")
    rows = [head]
    for t in [result.reference, *result.artifacts]:
        agree = f"{t.agreement:.2%}" if t is not result.reference else "-"
        if t.bytes_agreement is not None:
            agree += f" (bytes {t.bytes_agreement:.2%})"
        rows.append((
            t.name if not t.file or t.file == "." else f"{t.name} ({t.file})",
            agree,
            "-" if t is result.reference else f"{t.max_prob_diff:.2e}",
            "-" if math.isnan(t.latency_ms) else f"{t.latency_ms:.1f} ms",
            "-" if math.isnan(t.throughput) else f"{t.throughput:.0f} img/s",
            "-" if t is result.reference else f">= {t.min_agreement:.1%}",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
