"""`fastfood sample-data DIR`: write the built-in synthetic sample (Food-101 layout)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("sample-data")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option("--force", is_flag=True, help="Write the sample over a non-empty folder.")
def sample_data(directory: Path, seed: int, force: bool) -> None:
    """Write the built-in learnable sample dataset (8 classes) into DIRECTORY.

    Train with it: fastfood train --data DIRECTORY
    """
    from fastfood.data.sample import sample_info, write_sample

    existing = sample_info(directory)
    if existing is not None and existing.get("seed") == seed and not force:
        click.echo(f"{directory} already holds the sample (seed {seed}); nothing to do")
        return
    path = write_sample(directory, seed=seed, force=force)
    info = sample_info(path) or {}
    click.echo(
        f"wrote the sample to {path}: {info.get('classes')} classes, "
        f"{info.get('train')} train + {info.get('test')} test images (seed {seed})"
    )
