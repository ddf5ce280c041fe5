"""`fastfood export --out DIR`: a SavedModel that takes encoded JPEG/PNG bytes.

The signature `serving_default(images: string [None])` returns `classes` (int32 [n, k]),
`names` (string [n, k]) and `probs` (float32 [n, k]); preprocessing is inside, so
`tf.saved_model.load(DIR)` is all a server needs (no fastfood).
"""

from __future__ import annotations

from pathlib import Path

import click

from fastfood.export import DEFAULT_TOP_K


@click.command()
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="Run to export (default: the newest under runs/).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for the SavedModel (new or empty).")
@click.option("--top-k", type=int, default=DEFAULT_TOP_K, show_default=True,
              help="Classes returned per image.")
@click.option("--force", is_flag=True, help="Write into a non-empty --out folder.")
def export(run_dir: Path | None, out: Path, top_k: int, force: bool) -> None:
    """Export a trained run as a SavedModel (image bytes in, top-k classes out)."""
    from fastfood.export import check_out, export_run
    from fastfood.predict import check_top_k
    from fastfood.inference.runs import resolve_run_dir

    check_top_k(top_k)
    check_out(out, force)  # fail fast, before TensorFlow is imported
    path = resolve_run_dir(run_dir)
    written = export_run(path, out, top_k=top_k, overwrite=force)
    click.echo(f"exported {path} to {written} (signature serving_default: "
               f"images [None] string -> classes, names, probs)")
