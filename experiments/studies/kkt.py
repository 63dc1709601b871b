"""Study ``kkt``: the KKT residual against iterations and seconds, and exact zeros, per solver.

For the Frobenius objective f(W, H) = ½‖V − WH‖²_F the first-order conditions are
X ≥ 0, ∇_X f ≥ 0, X ⊙ ∇_X f = 0 (X = W, H), which hold exactly when min(X, ∇_X f) = 0.  We
record, after every iteration k of each solver (``jnmf.solve``'s history, ``every=1``),

    kkt_k = ‖min(W_k, ∇_W f)‖_F² + ‖min(H_k, ∇_H f)‖_F²  (square-rooted, ÷ its value at k = 0)

and the objective; at the end, the number of exact zeros of W and H, and of tiny positive
entries 0 < X ≤ 10⁻⁶ max X (headed for 0 without reaching it).  The
claims under test: multiplicative updates (MU) decay slowly next to HALS, accelerated HALS,
ANLS (block principal pivoting), projected gradient and Nesterov (NeNMF), and MU cannot
set an entry to exactly 0 (an entry at 0 stays at 0, "zero-locking", so with a positive start
no entry ever reaches the boundary), while the other solvers land on it; an entry with
X > 0 and ∇_X f > 0 adds X² to the residual until it is exactly 0.

How seconds are measured: recording the residual costs about one iteration, so the clock
runs on a second program, the same ``jnmf.solve`` from the same start evaluating only at the
end (``every = max_iter``).  It is called once to compile, then twice timed
(``jax.block_until_ready``); the faster call gives the mean step cost c, in wall-clock and in
this process's CPU seconds (``time.process_time``, all threads), and iteration k is drawn at
k·c.  So compilation and the residual evaluations are excluded, and a solver whose early
iterations cost more (ANLS, projected gradient and NeNMF run adaptive inner loops) is drawn
with its mean cost.  On a shared, loaded machine wall time is inflated by other processes;
CPU time is the steadier measure.

Data (Frobenius): ``faces``, the 400 ORL faces with pixels ÷ 255, averaged over
``faces_downsample``² blocks; ``reuters``, the Reuters word counts (4258 words × 395
documents, ``jnmf.data``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jnmf
from experiments.studies._faces import Section, block_mean, new_figure
from experiments.study import Study, StudyConfigError, Task

DATASETS = ("faces", "reuters")
SOLVERS = ("mu", "hals", "accelerated-hals", "anls-bpp", "projected-gradient", "nesterov")


@dataclass(frozen=True)
class KKTConfig:
    datasets: tuple[str, ...] = DATASETS
    solvers: tuple[str, ...] = SOLVERS
    rank: int = 20
    max_iter: int = 100
    n_seeds: int = 1
    faces_downsample: int = 2


def load_dataset(name: str, faces_downsample: int) -> np.ndarray:
    """V (n×m ≥ 0) of ``name`` in JAX's default float dtype (module docstring)."""
    dtype = jax.dtypes.canonicalize_dtype(np.float64)
    if name == "faces":
        data = jnmf.data.load("orl_faces")
        V, _ = block_mean(data.V / 255.0, tuple(data.meta["image_shape"]), faces_downsample)
    elif name == "reuters":
        V = jnmf.data.load("reuters").V
    else:
        raise ValueError(f"unknown dataset {name!r}; use one of {DATASETS}")
    return np.asarray(V, dtype)


@functools.cache
def _programs(solver_name: str, rank: int, max_iter: int):
    """Jit-compiled programs for ``solver_name``, reused across tasks of the same shapes:
    ``traced`` (a solve recording every iteration, and the final zero counts) and ``timed``
    (the same solve evaluating only at the end)."""
    solver = jnmf.SOLVERS[solver_name]()

    def start(problem, key):
        return jnmf.initialize(key, problem, rank, "random")

    def traced(V, key):
        problem = jnmf.make_problem(V, 2.0)  # built inside: β stays a Python number
        solution = jnmf.solve(
            problem, solver, start(problem, key), max_iter=max_iter, tol=0.0, every=1
        )
        W, H = solution.W, solution.H
        tiny = jnp.sum((W > 0) & (W <= 1e-6 * W.max())) + jnp.sum((H > 0) & (H <= 1e-6 * H.max()))
        history = solution.history
        objective = jnp.concatenate([history.objective0[None], history.objective])
        return history.kkt, objective, jnp.sum(W == 0), jnp.sum(H == 0), tiny

    def timed(V, key):
        problem = jnmf.make_problem(V, 2.0)
        budget = {"max_iter": max_iter, "tol": 0.0, "every": max_iter}
        return jnmf.solve(problem, solver, start(problem, key), **budget).objective

    return solver, jax.jit(traced), jax.jit(timed)


def trace_solver(V: np.ndarray, solver_name: str, rank: int, max_iter: int, seed: int) -> dict:
    """Relative KKT residual and objective after every iteration, seconds per iteration,
    and the exact zeros of the final factors (module docstring)."""
    problem = jnmf.make_problem(V, 2.0)
    solver, traced, timed = _programs(solver_name, rank, max_iter)
    solver.check(problem)
    key = jax.random.PRNGKey(seed)
    V = jnp.asarray(V)
    kkt, objective, zeros_W, zeros_H, tiny = jax.block_until_ready(traced(V, key))
    tick = time.perf_counter()
    jax.block_until_ready(timed(V, key))  # compiles (or reuses) the timed program
    first_call = time.perf_counter() - tick
    wall, cpu = [], []
    for _ in range(2):
        tick, cpu_tick = time.perf_counter(), time.process_time()
        jax.block_until_ready(timed(V, key))
        wall.append(time.perf_counter() - tick)
        cpu.append(time.process_time() - cpu_tick)
    step, cpu_step = min(wall) / max_iter, min(cpu) / max_iter
    iterations = np.arange(max_iter + 1)
    n, m = V.shape
    return {
        "kkt": np.concatenate([[1.0], np.asarray(kkt)]),
        "objective": np.asarray(objective),
        "seconds": iterations * step,
        "cpu_seconds": iterations * cpu_step,
        "zeros_W": int(zeros_W),
        "zeros_H": int(zeros_H),
        "tiny": int(tiny),
        "entries": (n + m) * rank,
        "compile_seconds": first_call - min(wall),
        "finite": bool(np.isfinite(objective).all()),
    }


class KKTStudy(Study):
    """KKT residual vs iteration and seconds, and exact zeros, for six Frobenius solvers."""

    name = "kkt"
    description = "KKT residual vs iteration and seconds for MU, HALS, ANLS, PG, NeNMF"

    def parse(self, section: Mapping[str, Any]) -> KKTConfig:
        read = Section(section, StudyConfigError, KKTConfig.__dataclass_fields__)
        d = KKTConfig()
        lists = {}
        for key, allowed in (("datasets", DATASETS), ("solvers", tuple(jnmf.SOLVERS))):
            values = tuple(section.get(key, list(getattr(d, key))))
            bad = [v for v in values if v not in allowed]
            if not values or bad or len(set(values)) != len(values):
                raise StudyConfigError(
                    f"[study] {key} must list some of {list(allowed)} once each, got "
                    f"{list(values)}" + (f" (unknown: {bad})" if bad else "")
                )
            lists[key] = values
        return KKTConfig(
            **lists,
            rank=read.integer("rank", d.rank, 1, 395),
            max_iter=read.integer("max_iter", d.max_iter, 1, 100_000),
            n_seeds=read.integer("n_seeds", d.n_seeds, 1, 100),
            faces_downsample=read.integer("faces_downsample", d.faces_downsample, 1, 16),
        )

    def tasks(self, config: KKTConfig) -> list[Task]:
        return [
            Task(
                f"{dataset}_{solver}_seed{seed}",
                {"dataset": dataset, "solver": solver, "seed": seed, **asdict(config)},
            )
            for dataset in config.datasets
            for seed in range(config.n_seeds)
            for solver in config.solvers
        ]

    def load(self, config: KKTConfig) -> dict[str, np.ndarray]:
        return {name: load_dataset(name, config.faces_downsample) for name in config.datasets}

    def compute(self, task: Task, data: Mapping[str, np.ndarray]) -> dict[str, Any]:
        p = task.params
        V = data[p["dataset"]]
        if int(p["rank"]) > min(V.shape):
            raise ValueError(f"rank {p['rank']} exceeds min(n, m) = {min(V.shape)} of {V.shape}")
        run = trace_solver(V, p["solver"], int(p["rank"]), int(p["max_iter"]), int(p["seed"]))
        return {
            "dataset": p["dataset"],
            "solver": p["solver"],
            "seed": int(p["seed"]),
            "shape": list(V.shape),
            **run,
        }

    def tables(self, results, config: KKTConfig) -> dict[str, list[dict]]:
        rows = summarize(results)
        return {"kkt_final": rows} if rows else {}

    def figures(self, results, config: KKTConfig) -> dict[str, Any]:
        runs = [r for r in results.values() if "skipped" not in r]
        if not runs:
            return {}
        return {"residual": residual_figure(runs, config), "zeros": zeros_figure(runs, config)}


def summarize(results: Mapping[str, Mapping[str, Any]]) -> list[dict]:
    """One row per (dataset, solver, seed): final residual, time, zeros."""
    rows = []
    for r in results.values():
        if "skipped" in r:
            continue
        entries = int(r["entries"])
        rows.append(
            {
                "dataset": str(r["dataset"]),
                "solver": str(r["solver"]),
                "seed": int(r["seed"]),
                "iterations": len(r["kkt"]) - 1,
                "final_relative_kkt": float(r["kkt"][-1]),
                "final_objective": float(r["objective"][-1]),
                "seconds": float(r["seconds"][-1]),
                "cpu_seconds": float(r["cpu_seconds"][-1]),
                "compile_seconds": float(r["compile_seconds"]),
                "exact_zeros_W": int(r["zeros_W"]),
                "exact_zeros_H": int(r["zeros_H"]),
                "exact_zero_fraction": float((r["zeros_W"] + r["zeros_H"]) / entries),
                "tiny_positive": int(r["tiny"]),
            }
        )
    return sorted(
        rows,
        key=lambda row: (
            row["dataset"],
            SOLVERS.index(row["solver"]) if row["solver"] in SOLVERS else 99,
            row["seed"],
        ),
    )


def _color(solver: str) -> str:
    palette = ["tab:red", "tab:blue", "tab:cyan", "tab:green", "tab:purple", "tab:orange"]
    return palette[SOLVERS.index(solver)] if solver in SOLVERS else "black"


def residual_figure(runs: list, config: KKTConfig):
    """Rows: datasets; left: relative KKT residual vs iteration; right: vs seconds."""
    datasets = [d for d in config.datasets if any(str(r["dataset"]) == d for r in runs)]
    fig = new_figure(figsize=(11, 4 * len(datasets)), layout="constrained")
    axes = fig.subplots(len(datasets), 2, squeeze=False)
    for (left, right), dataset in zip(axes, datasets, strict=True):
        mine = [r for r in runs if str(r["dataset"]) == dataset]
        for r in mine:
            solver = str(r["solver"])
            label = f"{solver}: {float(r['kkt'][-1]):.1e}" if int(r["seed"]) == 0 else None
            kwargs = {"color": _color(solver), "lw": 2.2 if solver == "mu" else 1.2}
            iterations = np.arange(len(r["kkt"]))
            left.plot(iterations[1:], r["kkt"][1:], label=label, **kwargs)
            right.plot(r["seconds"][1:], r["kkt"][1:], **kwargs)
        shape = "×".join(str(s) for s in mine[0]["shape"])
        left.set_title(f"{dataset} ({shape}), rank {config.rank}: vs iteration", fontsize=9)
        right.set_title(f"{dataset}: vs seconds (k × mean step time, compile excluded)", fontsize=9)
        for ax in (left, right):
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_ylabel("‖min(X, ∇f)‖ / its start value")
        left.set_xscale("log")
        left.set_xlabel("iteration")
        right.set_xlabel("seconds")
        left.legend(fontsize=8, title="solver: final residual", title_fontsize=8)
    fig.suptitle("KKT residual of the Frobenius NMF, every iteration", fontsize=10)
    return fig


def zeros_figure(runs: list, config: KKTConfig):
    """Per dataset: the fraction of exactly-zero entries of W and H per solver, and of tiny
    positive ones (0 < X ≤ 10⁻⁶ max X: on their way to 0 without reaching it)."""
    datasets = [d for d in config.datasets if any(str(r["dataset"]) == d for r in runs)]
    fig = new_figure(figsize=(5.5 * len(datasets), 4), layout="constrained")
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets, strict=True):
        mine = [r for r in runs if str(r["dataset"]) == dataset and int(r["seed"]) == 0]
        mine.sort(key=lambda r: SOLVERS.index(str(r["solver"])) if r["solver"] in SOLVERS else 99)
        names = [str(r["solver"]) for r in mine]
        zero = [100 * (r["zeros_W"] + r["zeros_H"]) / r["entries"] for r in mine]
        tiny = [100 * r["tiny"] / r["entries"] for r in mine]
        x = np.arange(len(names))
        bars = ax.bar(x - 0.2, zero, 0.4, label="exactly 0", color=[_color(n) for n in names])
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
        bars = ax.bar(
            x + 0.2, tiny, 0.4, label="0 < X ≤ 1e-6 max X", color="lightgrey", edgecolor="black"
        )
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_xticks(x, names, rotation=30, fontsize=8)
        ax.set_ylabel("% of the entries of W and H")
        iterations = len(mine[0]["kkt"]) - 1 if mine else 0
        ax.set_title(f"{dataset}, after {iterations} iterations", fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle(
        "zero-locking: MU never reaches 0; the others set entries exactly to 0", fontsize=10
    )
    return fig
