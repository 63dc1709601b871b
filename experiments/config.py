"""Experiment configs: TOML files read with ``tomllib`` into frozen dataclasses, validated.

A config names a study, the settings of the run (platform, precision, output folder) and
either a grid (datasets × solvers × β × ranks × seeds, restarts batched with ``vmap``) or a
script (a module whose ``run(params) -> dict`` does the work)::

    name = "quickstart"
    study = "quickstart"

    [run]
    platform = "auto"          # cpu | gpu | tpu | auto
    precision = "float32"      # float32 | float64

    [grid]
    datasets = ["orl_faces"]
    solvers = ["mu", "hals"]
    betas = [2.0]
    ranks = [49]
    max_iter = 200

    [data.orl_faces]           # optional: preprocessing and loader keyword arguments
    normalize = "max"

    [solver_options.mu]        # optional: keyword arguments of the solver class
    eps = 1e-9

Validation happens before anything is computed.  Every problem (an unknown key, a wrong type,
a value outside its allowed set, an unknown solver, dataset or study) raises ``ConfigError``
whose message names the key path (``grid.solvers[1]``) and the allowed values.

``parse_run_settings`` reads only the ``[run]`` table, without importing JAX, so that the CLI
can choose the platform and precision before JAX starts computing.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.util
import inspect
import json
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLATFORMS = ("auto", "cpu", "gpu", "tpu")
PRECISIONS = ("float32", "float64")
NORMALIZATIONS = ("none", "max", "mean", "column-sum")
INITS = ("random", "nndsvd", "nndsvda", "nndsvdar")
BETA_NAMES = {"frobenius": 2.0, "kullback-leibler": 1.0, "itakura-saito": 0.0}
SYNTHETIC = "synthetic"
# Used only when ``jnmf.data`` does not list its datasets itself.
KNOWN_DATASETS = ("orl_faces", "digits", "reuters", "indian_pines", "all_aml", "audio")


class ConfigError(ValueError):
    """An invalid config: the message names the key path and what is allowed."""


def _choices(*values) -> dict:
    return {"choices": tuple(values)}


@dataclass(frozen=True)
class RunSettings:
    """Where and how the run computes; overridable on the command line."""

    platform: str = field(default="auto", metadata=_choices(*PLATFORMS))
    precision: str = field(default="float32", metadata=_choices(*PRECISIONS))
    out: str = "results"


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the grid: its source, preprocessing, and loader keyword arguments.

    ``source`` is a name known to ``jnmf.data.load`` or ``"synthetic"`` (defaults to the
    label used in ``grid.datasets``).  Preprocessing, in this order: ``normalize`` ("max":
    V / max V; "mean": V / mean V; "column-sum": each column sums to 1), then ``+ offset``.
    ``options`` go to the loader; for "synthetic" they are n, m, rank, noise, seed (see
    ``runner.synthetic``).
    """

    source: str
    normalize: str = field(default="none", metadata=_choices(*NORMALIZATIONS))
    offset: float = field(default=0.0, metadata={"min": 0.0})
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GridSpec:
    """The grid datasets × solvers × betas × ranks × seeds; each point is one task.

    A task runs ``restarts`` solves from keys split from its seed, vmapped into one compiled
    program, recording the history every ``every`` iterations.  ``tol`` and ``kkt_tol`` are
    ``solve``'s stopping rules (0 switches one off, so curves run the full ``max_iter``).
    ``save_factors`` stores W and H of the best restart (needed for basis-image figures).
    """

    datasets: tuple[str, ...]
    solvers: tuple[str, ...]
    ranks: tuple[int, ...]
    betas: tuple[float, ...] = (2.0,)
    seeds: tuple[int, ...] = (0,)
    restarts: int = field(default=1, metadata={"min": 1})
    init: str = field(default="random", metadata=_choices(*INITS))
    max_iter: int = field(default=200, metadata={"min": 1})
    every: int = field(default=1, metadata={"min": 1})
    tol: float = field(default=0.0, metadata={"min": 0.0})
    kkt_tol: float = field(default=0.0, metadata={"min": 0.0})
    l1_W: float = field(default=0.0, metadata={"min": 0.0})
    l1_H: float = field(default=0.0, metadata={"min": 0.0})
    l2_W: float = field(default=0.0, metadata={"min": 0.0})
    l2_H: float = field(default=0.0, metadata={"min": 0.0})
    save_factors: bool = False


@dataclass(frozen=True)
class ScriptSpec:
    """A study done by a function ``module.function(params) -> dict`` (one task)."""

    module: str
    function: str = "run"
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """A whole experiment config (see the module docstring for the TOML layout)."""

    name: str
    study: str
    description: str = ""
    run: RunSettings = field(default_factory=RunSettings)
    grid: GridSpec | None = None
    data: Mapping[str, DatasetSpec] = field(default_factory=dict)
    solver_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    script: ScriptSpec | None = None

    def to_dict(self) -> dict:
        """A JSON-able dict of every setting (defaults filled in)."""
        return _to_plain(self)

    def digest(self) -> str:
        """A short hash of everything that changes results (all but ``run.out``)."""
        plain = self.to_dict()
        plain["run"].pop("out", None)
        plain.pop("description", None)
        text = json.dumps(plain, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:8]


def _to_plain(obj):
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [_to_plain(v) for v in obj]
    return obj


# ---------------------------------------------------------------- generic typed parsing


def _type_name(tp) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if tp in names:
        return names[tp]
    origin = typing.get_origin(tp)
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0]).split(' ', 1)[1]}s"
    return getattr(tp, "__name__", str(tp))


def _unknown_key(key: str, path: str, allowed) -> ConfigError:
    where = f"{path}.{key}" if path else key
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"unknown key {where!r}{hint}; allowed keys{' in [' + path + ']' if path else ''}: "
        f"{', '.join(sorted(allowed))}"
    )


def _check_scalar(value, tp, path: str):
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
        raise ConfigError(f"{path} must be {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value


def _check_value(value, tp, path: str, meta: Mapping):
    origin = typing.get_origin(tp)
    if origin is tuple:
        (item_tp, _) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(
                f"{path} must be {_type_name(tp)}, got {type(value).__name__} {value!r}"
            )
        if not value:
            raise ConfigError(f"{path} must not be empty")
        return tuple(_check_value(v, item_tp, f"{path}[{i}]", meta) for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _check_value(value, inner, path, meta)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"[{path}] must be a table, got {type(value).__name__}")
        return _parse_dataclass(tp, value, path)
    if tp is Mapping[str, Any] or origin is Mapping:
        if not isinstance(value, dict):
            raise ConfigError(f"[{path}] must be a table, got {type(value).__name__}")
        return dict(value)
    value = _check_scalar(value, tp, path)
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(
            f"{path} = {value!r} is not allowed; use one of: "
            + ", ".join(repr(c) for c in meta["choices"])
        )
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"{path} must be ≥ {meta['min']}, got {value!r}")
    return value


def _parse_dataclass(cls, table: Mapping, path: str, skip: tuple[str, ...] = ()):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    for key in table:
        if key not in fields and key not in skip:
            raise _unknown_key(key, path, set(fields) | set(skip))
    kwargs = {}
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name not in table:
            no_default = (
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise ConfigError(f"missing required key {sub!r} ({_type_name(hints[name])})")
            continue
        kwargs[name] = _check_value(table[name], hints[name], sub, f.metadata)
    return kwargs


# ---------------------------------------------------------------- registries


def solver_registry() -> dict:
    """``jnmf.solvers.SOLVERS`` at the time of the call (solvers join by registering)."""
    from jnmf.solvers import SOLVERS

    return dict(SOLVERS)


def dataset_names() -> tuple[str, ...]:
    """Dataset sources accepted in configs: ``jnmf.data``'s names and "synthetic"."""
    names: tuple[str, ...] = KNOWN_DATASETS
    try:
        import jnmf.data as data
    except ImportError:
        data = None
    for attr in ("DATASETS", "LOADERS", "NAMES"):
        listed = getattr(data, attr, None)
        if listed:
            names = tuple(listed)
            break
    return tuple(sorted(set(names) | {SYNTHETIC}))


def study_names() -> tuple[str, ...]:
    from experiments.studies import STUDIES

    return tuple(sorted(STUDIES))


# ---------------------------------------------------------------- reading


def parse_run_settings(raw: Mapping, overrides: Mapping[str, Any] | None = None) -> RunSettings:
    """The ``[run]`` table with command-line ``overrides`` applied; imports nothing heavy."""
    table = dict(raw.get("run", {}))
    if not isinstance(raw.get("run", {}), dict):
        raise ConfigError("[run] must be a table")
    table.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return RunSettings(**_parse_dataclass(RunSettings, table, "run"))


def read_toml(path: str | Path) -> dict:
    """The TOML file as a dict; a syntax error becomes ``ConfigError`` naming the file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read and validate the config at ``path`` (``overrides`` replace keys of ``[run]``)."""
    return parse_config(read_toml(path), overrides)


def parse_config(raw: Mapping, overrides: Mapping[str, Any] | None = None) -> Config:
    """Validate a config given as a dict (a parsed TOML document)."""
    sections = ("run", "grid", "data", "solver_options", "script")
    for key in sections:
        if key in raw and not isinstance(raw[key], dict):
            raise ConfigError(f"[{key}] must be a table, got {type(raw[key]).__name__}")
    kwargs = _parse_dataclass(Config, raw, "", skip=sections)
    run = parse_run_settings(raw, overrides)
    if "/" in kwargs["name"] or not kwargs["name"].strip():
        raise ConfigError(f"name must be a non-empty string without '/', got {kwargs['name']!r}")
    study = kwargs["study"]
    studies = study_names()
    if study not in studies:
        raise ConfigError(f"study = {study!r} is unknown; use one of: {', '.join(studies)}")
    if study == "script":
        return _parse_script_config(raw, kwargs, run)
    if "script" in raw:
        raise ConfigError("[script] is only allowed with study = 'script'")
    if "grid" not in raw:
        raise ConfigError(f"study {study!r} needs a [grid] table")
    grid_kwargs = _parse_dataclass(GridSpec, raw["grid"], "grid", skip=("betas",))
    grid = GridSpec(**grid_kwargs, betas=_check_betas(raw["grid"].get("betas", [2.0])))
    data = _parse_data(raw.get("data", {}), grid)
    solver_options = _parse_solvers(raw.get("solver_options", {}), grid)
    for key in ("datasets", "solvers", "ranks", "betas", "seeds"):
        values = getattr(grid, key)
        if len(set(values)) != len(values):
            raise ConfigError(f"grid.{key} has duplicates: {list(values)}")
    if any(r < 1 for r in grid.ranks):
        raise ConfigError(f"grid.ranks must be integers ≥ 1, got {list(grid.ranks)}")
    if any(s < 0 for s in grid.seeds):
        raise ConfigError(f"grid.seeds must be integers ≥ 0, got {list(grid.seeds)}")
    return Config(
        name=kwargs["name"],
        study=study,
        description=kwargs.get("description", ""),
        run=run,
        grid=grid,
        data=data,
        solver_options=solver_options,
    )


def _check_betas(values) -> tuple[float, ...]:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"grid.betas must be a non-empty list of numbers, got {values!r}")
    out = []
    for i, b in enumerate(values):
        if isinstance(b, str) and b in BETA_NAMES:
            out.append(BETA_NAMES[b])
        elif isinstance(b, (int, float)) and not isinstance(b, bool):
            out.append(float(b))
        else:
            raise ConfigError(
                f"grid.betas[{i}] = {b!r}: use a number or one of {', '.join(BETA_NAMES)}"
            )
    return tuple(out)


def _parse_data(table, grid: GridSpec) -> dict[str, DatasetSpec]:
    if not isinstance(table, dict):
        raise ConfigError("[data] must be a table of [data.<dataset>] tables")
    for label in table:
        if label not in grid.datasets:
            raise ConfigError(
                f"[data.{label}] names a dataset not in grid.datasets "
                f"({', '.join(grid.datasets)}); add it there or remove the table"
            )
    known = dataset_names()
    spec_fields = {f.name for f in dataclasses.fields(DatasetSpec)} - {"options"}
    out = {}
    for i, label in enumerate(grid.datasets):
        entry = table.get(label, {})
        if not isinstance(entry, dict):
            raise ConfigError(f"[data.{label}] must be a table, got {type(entry).__name__}")
        own = {k: v for k, v in entry.items() if k in spec_fields}
        options = {k: v for k, v in entry.items() if k not in spec_fields}
        own.setdefault("source", label)
        spec = DatasetSpec(**_parse_dataclass(DatasetSpec, own, f"data.{label}"), options=options)
        if spec.source not in known:
            where = f"data.{label}.source" if "source" in entry else f"grid.datasets[{i}]"
            raise ConfigError(
                f"{where} = {spec.source!r} is not a known dataset; use one of: "
                f"{', '.join(known)} (or give [data.{label}] a source)"
            )
        if spec.source == SYNTHETIC:
            _check_synthetic_options(options, f"data.{label}")
        else:
            _check_loader_options(spec.source, options, f"data.{label}")
        out[label] = spec
    return out


SYNTHETIC_OPTIONS = {"n": int, "m": int, "rank": int, "noise": float, "seed": int}


def _check_synthetic_options(options: Mapping, path: str) -> None:
    for key, value in options.items():
        if key not in SYNTHETIC_OPTIONS:
            allowed = set(SYNTHETIC_OPTIONS) | {"source", "normalize", "offset"}
            raise _unknown_key(key, path, allowed)
        _check_scalar(value, SYNTHETIC_OPTIONS[key], f"{path}.{key}")


def _check_loader_options(source: str, options: Mapping, path: str) -> None:
    """Check option names against the loader's signature when ``jnmf.data`` exposes it."""
    try:
        from jnmf.data import LOADERS
    except ImportError:
        return
    loader = LOADERS.get(source)
    if loader is None:
        return
    params = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = {
        n
        for n, p in params.items()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }
    for key in options:
        if key not in accepted:
            raise _unknown_key(key, path, accepted | {"source", "normalize", "offset"})


def _parse_solvers(table, grid: GridSpec) -> dict[str, dict]:
    registry = solver_registry()
    for i, name in enumerate(grid.solvers):
        if name not in registry:
            raise ConfigError(
                f"grid.solvers[{i}] = {name!r} is not a registered solver; available: "
                f"{', '.join(sorted(registry))}"
            )
    if not isinstance(table, dict):
        raise ConfigError("[solver_options] must be a table of [solver_options.<solver>] tables")
    out = {}
    for name, opts in table.items():
        if name not in grid.solvers:
            raise ConfigError(
                f"[solver_options.{name}] names a solver not in grid.solvers "
                f"({', '.join(grid.solvers)})"
            )
        if not isinstance(opts, dict):
            raise ConfigError(f"[solver_options.{name}] must be a table")
        try:
            registry[name](**opts)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"[solver_options.{name}] is invalid for {name!r}: {err}") from None
        out[name] = dict(opts)
    return out


def _parse_script_config(raw: Mapping, kwargs: dict, run: RunSettings) -> Config:
    for key in ("grid", "data", "solver_options"):
        if key in raw:
            raise ConfigError(f"[{key}] is not used by study = 'script'; remove it")
    if "script" not in raw:
        raise ConfigError("study = 'script' needs a [script] table with module = '...'")
    script = ScriptSpec(**_parse_dataclass(ScriptSpec, raw["script"], "script"))
    try:
        found = importlib.util.find_spec(script.module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ConfigError(f"script.module = {script.module!r} cannot be imported")
    return Config(
        name=kwargs["name"],
        study="script",
        description=kwargs.get("description", ""),
        run=run,
        script=script,
    )
