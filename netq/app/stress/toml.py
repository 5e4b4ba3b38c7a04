"""A RunConfig as an experiment file (the reproducer a failed run writes)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

from netq.machine.config import RunConfig


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"no TOML for {v!r}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise ValueError(f"no TOML for {v!r}")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _toml_fields(obj: Any, skip: tuple[str, ...] = (), always: tuple[str, ...] = ()) -> list[str]:
    lines = []
    for f in dataclasses.fields(obj):
        if f.name in skip:
            continue
        v = getattr(obj, f.name)
        if v is None or (v == _default(f) and f.name not in always):
            continue
        lines.append(f"{f.name} = {_toml_value(v)}")
    return lines


def to_toml(cfg: RunConfig, comments: Sequence[str] = ()) -> str:
    """``cfg`` as an experiment file (``python -m netq.run --config``);
    ``netq.machine.config.from_dict(tomllib.loads(text))`` gives ``cfg`` back."""
    out = [f"# {c}" if c else "#" for line in comments for c in line.splitlines() or [""]]
    out += _toml_fields(cfg, skip=("devices", "traffic", "costs", "events"))
    if any(vars(cfg.costs).values()):
        out += ["", "[costs]"] + _toml_fields(cfg.costs)
    for section in ("devices", "traffic", "events"):
        for item in getattr(cfg, section):
            out += ["", f"[[{section}]]"] + _toml_fields(item, always=("name", "device", "action"))
    return "\n".join(out) + "\n"
