"""Data of the studies: datasets named in a config, loaded through ``jnmf.data`` (or made
synthetic), preprocessed, validated before anything is computed.

A ``[... .data.<label>]`` table gives ``source`` (a ``jnmf.data`` name, or "synthetic"; the label
by default), preprocessing applied in this order, ``normalize`` ("max": V / max V; "mean":
V / mean V; "column-sum": every column sums to 1) then ``+ offset``, ``sparse = true`` to hand
V to the fits as a SciPy CSR matrix (jnmf then never forms a dense n×m array; needs offset 0
and a solver that takes sparse V, the others are skipped with their reason), and the loader's
keyword arguments.  The synthetic problem takes ``n``, ``m``, ``rank``, ``noise``, ``seed``:

    V = |W H + noise · mean(W H) · E|,  W ~ U(0.1, 1)^{n×r}, H ~ U(0.1, 1)^{r×m}, E ~ N(0, 1).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from experiments.study import StudyConfigError
from experiments.validate import check_value, choices, parse_table, unknown_key

SYNTHETIC = "synthetic"
NORMALIZATIONS = ("none", "max", "mean", "column-sum")


@dataclass(frozen=True)
class SyntheticSpec:
    """Options of the synthetic problem (see the module docstring)."""

    n: int = field(default=100, metadata={"min": 1})
    m: int = field(default=80, metadata={"min": 1})
    rank: int = field(default=5, metadata={"min": 1})
    noise: float = field(default=0.05, metadata={"min": 0.0})
    seed: int = field(default=0, metadata={"min": 0})


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its source, preprocessing, and loader keyword arguments."""

    source: str
    normalize: str = field(default="none", metadata=choices(*NORMALIZATIONS))
    offset: float = field(default=0.0, metadata={"min": 0.0})
    sparse: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Data:
    """A loaded, preprocessed dataset: V (n×m, one sample per column; a SciPy CSR matrix when
    its spec says ``sparse``) and its metadata."""

    V: Any
    meta: dict = field(default_factory=dict)


def dataset_names() -> tuple[str, ...]:
    """Accepted sources: ``jnmf.data.DATASETS`` and "synthetic"."""
    import jnmf

    return tuple(sorted(set(jnmf.data.DATASETS) | {SYNTHETIC}))


def parse_datasets(table: Mapping, labels: tuple[str, ...], path: str) -> dict[str, DatasetSpec]:
    """A ``DatasetSpec`` per label from the ``[<path>.<label>]`` tables (each optional)."""
    if not isinstance(table, Mapping):
        raise StudyConfigError(f"[{path}] must be a table of [{path}.<dataset>] tables")
    for label in table:
        if label not in labels:
            raise StudyConfigError(
                f"[{path}.{label}] names a dataset not in datasets ({', '.join(labels)}); "
                "add it there or remove the table"
            )
    known = dataset_names()
    own_keys = ("source", "normalize", "offset", "sparse")
    specs = {}
    for label in labels:
        entry = table.get(label, {})
        if not isinstance(entry, Mapping):
            raise StudyConfigError(f"[{path}.{label}] must be a table")
        own = {k: v for k, v in entry.items() if k in own_keys}
        options = {k: v for k, v in entry.items() if k not in own_keys}
        own.setdefault("source", label)
        where = f"{path}.{label}"
        spec = DatasetSpec(**parse_table(DatasetSpec, own, where, skip=("options",)))
        if spec.sparse and spec.offset > 0:
            raise StudyConfigError(
                f"{where}: sparse = true needs offset = 0 (an offset fills every zero entry)"
            )
        if spec.source not in known:
            raise StudyConfigError(
                f"{where}: source {spec.source!r} is not a known dataset; use one of: "
                f"{', '.join(known)} (or give [{where}] a source)"
            )
        if spec.source == SYNTHETIC:
            options = vars(SyntheticSpec(**parse_table(SyntheticSpec, options, where)))
        else:
            _check_loader_options(spec.source, options, where)
        specs[label] = DatasetSpec(
            spec.source, spec.normalize, spec.offset, spec.sparse, dict(options)
        )
    return specs


def _check_loader_options(source: str, options: Mapping, path: str) -> None:
    import jnmf

    params = inspect.signature(jnmf.data.LOADERS[source]).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = {n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    for key, value in options.items():
        if key not in accepted:
            raise unknown_key(key, path, accepted | {"source", "normalize", "offset", "sparse"})
        if isinstance(value, float):
            check_value(value, float, f"{path}.{key}")


def known_shape(spec: DatasetSpec) -> tuple[int, int] | None:
    """V's shape when known without loading (the synthetic problem), else None."""
    if spec.source == SYNTHETIC:
        return int(spec.options["n"]), int(spec.options["m"])
    return None


def synthetic(n: int, m: int, rank: int, noise: float, seed: int) -> Data:
    """The synthetic problem of the module docstring (seeded)."""
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.1, 1.0, (n, rank))
    H = rng.uniform(0.1, 1.0, (rank, m))
    WH = W @ H
    V = np.abs(WH + noise * WH.mean() * rng.standard_normal(WH.shape))
    return Data(V, {"true_rank": rank, "noise": noise, "seed": seed})


def load_dataset(label: str, spec: DatasetSpec, dtype=np.float32) -> Data:
    """Load ``spec.source``, preprocess, cast to ``dtype``; metadata kept if small."""
    if spec.source == SYNTHETIC:
        data = synthetic(**spec.options)
        V, meta = data.V, dict(data.meta)
    else:
        import jnmf

        ds = jnmf.data.load(spec.source, **spec.options)
        V, meta = np.asarray(ds.V, dtype=np.float64), dict(ds.meta or {})
    if spec.normalize == "max":
        V = V / V.max()
    elif spec.normalize == "mean":
        V = V / V.mean()
    elif spec.normalize == "column-sum":
        sums = V.sum(axis=0, keepdims=True)
        V = V / np.where(sums > 0, sums, 1.0)
    V = V + spec.offset
    meta = {k: v for k, v in meta.items() if _small(v)}
    meta.update(label=label, source=spec.source, normalize=spec.normalize, offset=spec.offset)
    V = np.ascontiguousarray(V, dtype=dtype)
    if spec.sparse:
        import scipy.sparse

        meta["density"] = float(np.count_nonzero(V) / V.size)
        return Data(scipy.sparse.csr_matrix(V), meta)
    return Data(V, meta)


def _small(v) -> bool:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return True
    if isinstance(v, (tuple, list)):
        return len(v) <= 64 and all(isinstance(x, (str, int, float, bool)) for x in v)
    return False
