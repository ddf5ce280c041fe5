"""`fastfood train`'s options, made from the config's field metadata.

A field declared with `fastfood.config.setting(...)` carries its flag, help, choices and
default; this turns each into a click option, so adding a setting is one line in
config.py and `--help`, the defaults and the choices cannot drift from the config.
`build_config` turns the parsed options back into a RunConfig. `precision_option` is the one
--precision of the inference commands (predict, evaluate, serve).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import click

from fastfood.config import INFERENCE_PRECISIONS, SECTIONS, RunConfig

_TYPES = {"int": int, "float": float, "str": str}


def _fields() -> list[tuple[str, dataclasses.Field]]:
    defaults = RunConfig()
    return [(section, f) for section in SECTIONS
            for f in dataclasses.fields(getattr(defaults, section))
            if f.metadata.get("flag") != ""]


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _param_name(f: dataclasses.Field) -> str:
    return _flag(f).split("/")[0].lstrip("-").replace("-", "_")


#: click parameter name -> (config section, field name), for every flag of the config.
OPTIONS: dict[str, tuple[str, str]] = {_param_name(f): (s, f.name) for s, f in _fields()}


def _option(f: dataclasses.Field) -> Callable:
    meta, name = f.metadata, _param_name(f)
    base = str(f.type).split("|")[0].strip()
    kwargs: dict[str, Any] = {"help": meta.get("help") or None}
    if meta.get("switch"):  # --x/--no-x: None (not given) keeps the default
        return click.option(_flag(f), name, default=None, **kwargs)
    if base == "bool":
        return click.option(_flag(f), name, is_flag=True, default=f.default, **kwargs)
    kind = click.Choice(meta["choices"]) if meta.get("choices") else _TYPES[base]
    shown = f.default not in (None, "")
    return click.option(_flag(f), name, type=kind, default=f.default, show_default=shown,
                        **kwargs)


def config_options(command: Callable) -> Callable:
    """Decorate a click command with one option per config field that has a flag."""
    for _, f in reversed(_fields()):
        command = _option(f)(command)
    return command


def build_config(params: dict[str, Any], explicit: set[str], base: RunConfig | None = None
                 ) -> RunConfig:
    """The RunConfig: `base` (a resumed run's config) with the explicit flags over it, or the
    defaults with every flag over them. Values are checked as the config is made (a
    FastfoodError naming the flag)."""
    config = base or RunConfig()
    sections = {name: dataclasses.asdict(getattr(config, name)) for name in SECTIONS}
    meta = {(s, f.name): f.metadata for s, f in _fields()}
    for name, (section, field) in OPTIONS.items():
        if name not in params or (base is not None and name not in explicit):
            continue
        value = params[name]
        switch = meta[section, field].get("switch")
        if switch:
            if value is None:
                continue
            value = switch[0] if value else switch[1]
        sections[section][field] = value
    return RunConfig.from_dict(sections)


#: --precision of predict, evaluate and serve (fastfood.inference.precision).
precision_option = click.option(
    "--precision", type=click.Choice(INFERENCE_PRECISIONS), default=INFERENCE_PRECISIONS[0],
    show_default=True,
    help="What the model computes in: auto is bf16 on CPUs with AVX512-BF16/AMX and GPUs of "
         "compute capability >= 8.0, fp16 on 7.x, fp32 elsewhere and for a handful of images "
         "on a CPU; fp32 is the old behaviour. Softmax and top-k are float32 always.")
