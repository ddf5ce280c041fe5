"""`fastfood data food101`: download, check and unpack a public dataset.

Progress goes to stderr (a bar on a terminal, plain lines in a log); the one line that
says where the dataset is goes to stdout.
"""

from __future__ import annotations

from pathlib import Path

import click

from fastfood.data.food101_install import MD5, URL


@click.group("data")
def data() -> None:
    """Download datasets into the layouts `fastfood train --data` reads."""


@data.command("food101")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for the dataset. Default: fastfood's cache "
                   "(~/.cache/fastfood/food-101, or $FASTFOOD_CACHE/food-101), which "
                   "`--data food101` finds.")
@click.option("--url", default=URL, show_default=True, help="Where to download it from.")
@click.option("--md5", default=MD5, show_default=True,
              help="The archive's md5; a download with another is refused.")
def food101(out: Path | None, url: str, md5: str) -> None:
    """Download Food-101 (101 classes, 101,000 photos, about 5 GB) and unpack it.

    An interrupted download continues where it stopped when run again.
    """
    from fastfood.data.food101_install import ALIAS, default_dir, install
    from fastfood.data.progress import for_stream

    root, did = install(out, for_stream("food-101.tar.gz"), url=url, md5=md5)
    data_arg = ALIAS if root == default_dir().absolute() else str(root)
    if not did:
        click.echo(f"Food-101 is already in {root}; nothing to do")
        return
    click.echo(f"Food-101 is in {root}; train with: fastfood train --data {data_arg}")
