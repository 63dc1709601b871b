"""Typed checks of TOML tables into frozen dataclasses: clear messages naming the key path.

A leaf (imports nothing from ``experiments`` but the ``StudyConfigError`` of the study
interface).  ``parse_table(cls, table, path)`` checks every key of ``table`` against the
fields of dataclass ``cls``: unknown keys (with a did-you-mean hint), missing required keys,
wrong types, and the field's metadata: ``choices``, ``min`` (inclusive), ``positive`` (> 0).
Numbers must be finite (NaN and ±inf are refused), lists non-empty.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from experiments.study import StudyConfigError


def choices(*values) -> dict:
    """Field metadata: the value must be one of ``values``."""
    return {"choices": tuple(values)}


def type_name(tp) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if tp in names:
        return names[tp]
    if typing.get_origin(tp) is tuple:
        return f"a list of {type_name(typing.get_args(tp)[0]).split(' ', 1)[1]}s"
    return getattr(tp, "__name__", str(tp))


def unknown_key(key: str, path: str, allowed) -> StudyConfigError:
    where = f"{path}.{key}" if path else key
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    inside = f" in [{path}]" if path else ""
    return StudyConfigError(
        f"unknown key {where!r}{hint}; allowed keys{inside}: {', '.join(sorted(allowed))}"
    )


def check_scalar(value, tp, path: str):
    """``value`` as type ``tp`` (int accepted for float); numbers must be finite."""
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    else:
        raise TypeError(tp)
    if not ok:
        raise StudyConfigError(
            f"{path} must be {type_name(tp)}, got {type(value).__name__} {value!r}"
        )
    if tp is float and not math.isfinite(value):
        raise StudyConfigError(f"{path} must be a finite number, got {value!r}")
    return value


def check_value(value, tp, path: str, meta: Mapping | None = None):
    """``value`` checked against the annotation ``tp`` and the field metadata ``meta``."""
    meta = meta or {}
    origin = typing.get_origin(tp)
    if origin is tuple:
        item_tp = typing.get_args(tp)[0]
        if not isinstance(value, list):
            raise StudyConfigError(
                f"{path} must be {type_name(tp)}, got {type(value).__name__} {value!r}"
            )
        if not value:
            raise StudyConfigError(f"{path} must not be empty")
        items = tuple(check_value(v, item_tp, f"{path}[{i}]", meta) for i, v in enumerate(value))
        if meta.get("unique", True) and len(set(items)) != len(items):
            raise StudyConfigError(f"{path} has duplicates: {list(items)}")
        return items
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else check_value(value, inner, path, meta)
    if tp is Any:
        return value
    if tp is Mapping[str, Any] or origin is Mapping or tp is dict:
        if not isinstance(value, dict):
            raise StudyConfigError(f"[{path}] must be a table, got {type(value).__name__}")
        return dict(value)
    value = check_scalar(value, tp, path)
    if "choices" in meta and value not in meta["choices"]:
        allowed = ", ".join(repr(c) for c in meta["choices"])
        raise StudyConfigError(f"{path} = {value!r} is not allowed; use one of: {allowed}")
    if "min" in meta and value < meta["min"]:
        raise StudyConfigError(f"{path} must be ≥ {meta['min']}, got {value!r}")
    if "max" in meta and value > meta["max"]:
        raise StudyConfigError(f"{path} must be ≤ {meta['max']}, got {value!r}")
    if meta.get("positive") and not value > 0:
        raise StudyConfigError(f"{path} must be > 0, got {value!r}")
    return value


def parse_table(cls, table: Mapping, path: str, skip: tuple[str, ...] = ()) -> dict:
    """Keyword arguments of dataclass ``cls`` from ``table`` (keys in ``skip`` are left out)."""
    if not isinstance(table, Mapping):
        raise StudyConfigError(f"[{path}] must be a table, got {type(table).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    for key in table:
        if key not in fields and key not in skip:
            raise unknown_key(key, path, set(fields) | set(skip))
    kwargs = {}
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise StudyConfigError(f"missing required key {sub!r} ({type_name(hints[name])})")
            continue
        kwargs[name] = check_value(table[name], hints[name], sub, f.metadata)
    return kwargs


def parse_dataclass(cls, table: Mapping, path: str):
    """An instance of dataclass ``cls`` from ``table`` (see ``parse_table``)."""
    return cls(**parse_table(cls, table, path))


def to_plain(obj):
    """Dataclasses, mappings and tuples as JSON-able dicts and lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [to_plain(v) for v in obj]
    return obj
