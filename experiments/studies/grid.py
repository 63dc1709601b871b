"""Grid studies: datasets × solvers × betas × ranks × seeds, each point one ``jnmf.nmf`` call.

A task fits ``restarts`` starts from keys split from its seed (``jnmf.nmf(…, n_restarts,
key=seed)``, batched in one compiled program) and keeps the best restart's history, recorded
every ``every`` iterations, and every restart's final objective (``restart_objectives``,
from ``jnmf.nmf(..., return_restarts=True)``).
Compilation is measured by JAX's own compile events (tracing, lowering, backend compile)
and subtracted from the call's wall time; the time axis of a task is
``t_k = iteration_k · run_s / (n_iter · restarts)`` (the run's wall time spread evenly over
the iterations of its restarts, diagnostics included).

A combination the solver cannot handle (its ``check`` raises ``ValueError``, e.g. β ≤ 0 on data
with zeros) raises ``SkipTask`` with the reason.  Only jnmf's public API is used.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from experiments.data import Data, DatasetSpec, known_shape, load_dataset, parse_datasets
from experiments.progress import compile_timer
from experiments.study import SkipTask, Study, StudyConfigError, Task
from experiments.validate import check_value, choices, parse_table

BETA_NAMES = {"frobenius": 2.0, "kullback-leibler": 1.0, "itakura-saito": 0.0}
INITS = ("random", "nndsvd", "nndsvda", "nndsvdar")
SUMMARY_FIELDS = ("best_objective", "final_kkt", "n_iter", "compile_s", "run_s", "s_per_iter")


@dataclass(frozen=True)
class GridConfig:
    """The ``[study]`` table of a grid study (``data``/``solver_options``: sub-tables)."""

    datasets: tuple[str, ...]
    solvers: tuple[str, ...]
    ranks: tuple[int, ...] = field(metadata={"min": 1})
    betas: tuple[float, ...] = (2.0,)
    seeds: tuple[int, ...] = field(default=(0,), metadata={"min": 0})
    restarts: int = field(default=1, metadata={"min": 1})
    init: str = field(default="random", metadata=choices(*INITS))
    max_iter: int = field(default=200, metadata={"min": 1})
    every: int = field(default=1, metadata={"min": 1})
    tol: float = field(default=0.0, metadata={"min": 0.0})
    kkt_tol: float = field(default=0.0, metadata={"min": 0.0})
    l1_W: float = field(default=0.0, metadata={"min": 0.0})
    l1_H: float = field(default=0.0, metadata={"min": 0.0})
    l2_W: float = field(default=0.0, metadata={"min": 0.0})
    l2_H: float = field(default=0.0, metadata={"min": 0.0})
    save_factors: bool = False
    data: Mapping[str, DatasetSpec] = field(default_factory=dict)
    solver_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def parse_grid(section: Mapping) -> GridConfig:
    """Validate a grid ``[study]`` table (every key, solver, dataset and number)."""
    import jnmf

    kwargs = parse_table(GridConfig, section, "study", skip=("betas", "data", "solver_options"))
    betas = section.get("betas", [2.0])
    if isinstance(betas, list):
        betas = [BETA_NAMES.get(b, b) if isinstance(b, str) else b for b in betas]
    kwargs["betas"] = check_value(betas, tuple[float, ...], "study.betas")
    for i, name in enumerate(kwargs["solvers"]):
        if name not in jnmf.SOLVERS:
            raise StudyConfigError(
                f"study.solvers[{i}] = {name!r} is not a registered solver; available: "
                f"{', '.join(sorted(jnmf.SOLVERS))}"
            )
    kwargs["data"] = parse_datasets(section.get("data", {}), kwargs["datasets"], "study.data")
    kwargs["solver_options"] = _parse_solver_options(
        section.get("solver_options", {}), kwargs["solvers"]
    )
    config = GridConfig(**kwargs)
    for label, spec in config.data.items():
        shape = known_shape(spec)
        if shape is not None:
            check_ranks(config.ranks, shape, label)
    return config


def _parse_solver_options(table, solvers) -> dict:
    import jnmf

    if not isinstance(table, Mapping):
        raise StudyConfigError("[study.solver_options] must be a table of per-solver tables")
    out = {}
    for name, opts in table.items():
        if name not in solvers:
            raise StudyConfigError(
                f"[study.solver_options.{name}] names a solver not in solvers "
                f"({', '.join(solvers)})"
            )
        if not isinstance(opts, Mapping):
            raise StudyConfigError(f"[study.solver_options.{name}] must be a table")
        for key, value in opts.items():
            if isinstance(value, float):
                check_value(value, float, f"study.solver_options.{name}.{key}")
        try:
            jnmf.SOLVERS[name](**opts)
        except (TypeError, ValueError) as err:
            raise StudyConfigError(f"[study.solver_options.{name}] is invalid: {err}") from None
        out[name] = dict(opts)
    return out


def check_ranks(ranks, shape: tuple[int, int], label: str) -> None:
    """Refuse a rank above min(n, m): W H would have more columns than V has rows or columns."""
    n, m = shape
    too_big = [r for r in ranks if r > min(n, m)]
    if too_big:
        raise StudyConfigError(
            f"study.ranks {too_big} exceed min(n, m) = {min(n, m)} of dataset {label!r} "
            f"({n}×{m}); use ranks ≤ {min(n, m)}"
        )


def grid_tasks(config: GridConfig) -> list[Task]:
    """Tasks in the order datasets × solvers × betas × ranks × seeds."""
    return [
        Task(
            f"{d}__{s}__beta{b:g}__r{r}__s{seed}",
            {"dataset": d, "solver": s, "beta": b, "rank": r, "seed": seed},
        )
        for d in config.datasets
        for s in config.solvers
        for b in config.betas
        for r in config.ranks
        for seed in config.seeds
    ]


@dataclass(frozen=True)
class GridData:
    """What every task of a grid run shares: the config and the loaded datasets."""

    config: GridConfig
    datasets: Mapping[str, Data]


def load_grid_data(config: GridConfig) -> GridData:
    """Every dataset, in JAX's working precision; ranks checked against the real shapes."""
    import jax

    dtype = np.float64 if jax.config.jax_enable_x64 else np.float32
    datasets = {}
    for label in config.datasets:
        datasets[label] = load_dataset(label, config.data[label], dtype)
        check_ranks(config.ranks, datasets[label].V.shape, label)
    return GridData(config, datasets)


def fit(config: GridConfig, task: Task, data: Data) -> dict[str, Any]:
    """One grid task through ``jnmf.nmf``; see the module docstring."""
    import jax

    import jnmf

    p = task.params
    penalties = dict(l1_W=config.l1_W, l1_H=config.l1_H, l2_W=config.l2_W, l2_H=config.l2_H)
    options = dict(config.solver_options.get(p["solver"], {}))
    solver = jnmf.SOLVERS[p["solver"]](**options)
    try:
        solver.check(jnmf.make_problem(data.V, p["beta"], **penalties))
    except ValueError as err:
        raise SkipTask(str(err)) from None
    t0 = time.perf_counter()
    with compile_timer() as compile_s:
        restarts = jnmf.nmf(
            data.V,
            p["rank"],
            beta=p["beta"],
            solver=solver,
            init=config.init,
            n_restarts=config.restarts,
            max_iter=config.max_iter,
            tol=config.tol,
            kkt_tol=config.kkt_tol,
            key=p["seed"],
            every=config.every,
            return_restarts=True,
            **penalties,
        )
        restarts = jax.block_until_ready(restarts)
    sol = jnmf.best_of(restarts)
    wall = time.perf_counter() - t0
    run_s = max(wall - compile_s[0], 0.0)
    n_iter = int(sol.n_iter)
    hist = sol.history
    kkt = np.asarray(hist.kkt, dtype=np.float64)
    finite_kkt = kkt[np.isfinite(kkt)]
    result = {
        **p,
        "iterations": hist.iterations(),
        "objective": np.asarray(hist.objective, dtype=np.float64),
        "kkt": kkt,
        "objective0": float(hist.objective0),
        "restart_objectives": np.asarray(restarts.objective, dtype=np.float64),
        "best_objective": float(sol.objective),
        "final_kkt": float(finite_kkt[-1]) if finite_kkt.size else float("nan"),
        "n_iter": n_iter,
        "status": str(sol.message),
        "restarts": config.restarts,
        "compile_s": compile_s[0],
        "run_s": run_s,
        "s_per_iter": run_s / max(n_iter * config.restarts, 1),
        "shape": list(data.V.shape),
        "dtype": str(data.V.dtype),
        "image_shape": data.meta.get("image_shape"),
        "solver_options": options,
        "backend": jax.default_backend(),
    }
    if config.save_factors:
        result["W"] = np.asarray(sol.W)
        result["H"] = np.asarray(sol.H)
    return result


class GridStudy(Study):
    """Base of the grid studies: parse, tasks, load and compute; subclasses draw."""

    def parse(self, section: Mapping[str, Any]) -> GridConfig:
        return parse_grid(section)

    def tasks(self, config: GridConfig) -> list[Task]:
        return grid_tasks(config)

    def load(self, config: GridConfig) -> GridData:
        return load_grid_data(config)

    def compute(self, task: Task, data: GridData) -> dict[str, Any]:
        return fit(data.config, task, data.datasets[task.params["dataset"]])

    def tables(self, results, config: GridConfig) -> dict[str, list[dict]]:
        """``summary``: one row per task (skipped ones with their reason)."""
        rows = []
        for task in grid_tasks(config):
            result = results.get(task.key)
            if result is None:
                continue
            row = {"task": task.key, **task.params}
            if "skipped" in result:
                row.update(status="skipped", reason=result["skipped"])
            else:
                row["status"] = "done"
                for name in SUMMARY_FIELDS:
                    row[name] = result[name]
                row["median_restart_objective"] = float(np.median(result["restart_objectives"]))
            rows.append(row)
        return {"summary": rows}
