"""`fastfood pack`: write a dataset's splits as TFRecord shards that both loaders read.

The split flags are the config's own (`--val-fraction`, `--test-fraction`,
`--split-seed`, `--group-duplicates`, `--max-pixels`), made from its field metadata: the
split is fixed here, once, and `fastfood train --data SHARDS` trains on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from fastfood.data.shards import DEFAULT_SHARD_MB

_SPLIT_FLAGS = (("data", ("val_fraction", "test_fraction", "split_seed", "group_duplicates")),
                ("loader", ("max_pixels",)))


def _split_options(command: Callable) -> Callable:
    """The config's options for the split and the preflight, from its field metadata."""
    from fastfood.cli.options import _fields, _option

    for section, f in reversed(_fields()):
        if any(section == s and f.name in names for s, names in _SPLIT_FLAGS):
            command = _option(f)(command)
    return command


@click.command()
@click.option("--data", "data_root", required=True,
              help="Dataset folder (Food-101 layout or class folders), or food101.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for the shards; must not exist, or be empty.")
@click.option("--shard-mb", default=DEFAULT_SHARD_MB, show_default=True, type=float,
              help="Size at which a shard is closed and the next begun.")
@_split_options
def pack(data_root: str, out: Path, shard_mb: float, **params: Any) -> None:
    """Pack a dataset into TFRecord shards (with DALI's index files) for fast reading.

    Odd files are found once, here (the preflight and a full decode) and left out, named.
    Train with `fastfood train --data OUT`.
    """
    from fastfood import data
    from fastfood.config import DataConfig
    from fastfood.data.shards import check_out

    check_out(out, shard_mb)

    cfg = DataConfig(root=data_root, **{k: v for k, v in params.items() if k != "max_pixels"})
    spec = data.load_config(cfg)

    from fastfood.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from fastfood.loaders.pack import pack as write

    settings = {k: getattr(cfg, k) for k in ("val_fraction", "test_fraction", "split_seed",
                                             "group_duplicates")}
    manifest = write(spec, out, shard_mb=shard_mb, seed=cfg.split_seed,
                     max_pixels=params["max_pixels"], split_settings=settings,
                     say=lambda line: click.echo(f"fastfood: {line}", err=True))
    counts = ", ".join(f"{len(s['labels'])} {name}" for name, s in manifest["splits"].items())
    click.echo(f"fastfood: packed {counts} images of {len(manifest['classes'])} classes into "
               f"{out}; train with: fastfood train --data {out}", err=True)
    click.echo(str(out))
