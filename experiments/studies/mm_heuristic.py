"""Study ``mm-vs-heuristic``: Févotte & Idier's (2011) MM exponent γ(β) against exponent 1.

Multiplicative updates h ← h (N / P)^e, with P − N the split of the β-divergence gradient
(``jnmf.MultiplicativeUpdate``).  Févotte & Idier prove that e = γ(β), with

    γ(β) = 1/(2 − β) for β < 1,   1 for 1 ≤ β ≤ 2,   1/(β − 1) for β > 2,

minimizes an auxiliary function, so the objective never increases; the older heuristic
exponent e = 1 (``exponent="heuristic"``) has no such guarantee outside β ∈ [1, 2] but takes
longer steps.  For every β in ``betas`` (by default −0.5, 0, 0.5, 2.5, 3, all outside
[1, 2]) and both exponents, from the same random starts (one per seed), we record the
objective f_k at every iteration and count the increases

    f_k − f_{k−1} > ``rounding`` · ε · |f_{k−1}|     (ε the machine epsilon of the dtype),

with their size, and the objective reached after ``max_iter`` iterations.

Data with V > 0 (β ≤ 0 is undefined at V_ij = 0):

* ``faces``: the 400 ORL faces (``jnmf.data``), averaged over ``faces_downsample``² pixel
  blocks, scaled to [0, 1] (÷ 255) and shifted by ``faces_offset``;
* ``synthetic``: V = (W H) ⊙ G, W and H with Gamma(1, 1) entries (rank ``synthetic_rank``),
  G ~ Gamma with mean 1 and coefficient of variation ``synthetic_noise``: strictly positive.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import jax
import numpy as np

import jnmf
from experiments.studies._faces import Section, block_mean, new_figure
from experiments.study import Study, StudyConfigError, Task

DATASETS = ("faces", "synthetic")
EXPONENTS = ("mm", "heuristic")
EXPONENT_LABELS = {"mm": "MM exponent γ(β)", "heuristic": "heuristic exponent 1"}


@dataclass(frozen=True)
class MMHeuristicConfig:
    datasets: tuple[str, ...] = DATASETS
    betas: tuple[float, ...] = (-0.5, 0.0, 0.5, 2.5, 3.0)
    rank: int = 10
    max_iter: int = 300
    n_seeds: int = 3
    rounding: float = 1000.0
    faces_downsample: int = 4
    faces_offset: float = 0.01
    synthetic_n: int = 200
    synthetic_m: int = 100
    synthetic_rank: int = 5
    synthetic_noise: float = 0.5


def synthetic_data(config: MMHeuristicConfig) -> np.ndarray:
    """V = (W H) ⊙ G > 0 (module docstring), from a fixed generator seed."""
    rng = np.random.default_rng(2011)
    n, m, r = config.synthetic_n, config.synthetic_m, config.synthetic_rank
    W = rng.gamma(1.0, 1.0, (n, r))
    H = rng.gamma(1.0, 1.0, (r, m))
    shape = 1.0 / config.synthetic_noise**2
    return (W @ H) * rng.gamma(shape, 1.0 / shape, (n, m))


def faces_data(config: MMHeuristicConfig) -> np.ndarray:
    """ORL faces in [0, 1], block-averaged, plus ``faces_offset`` (so that V > 0)."""
    data = jnmf.data.load("orl_faces")
    V, _ = block_mean(data.V / 255.0, tuple(data.meta["image_shape"]), config.faces_downsample)
    return V + config.faces_offset


def count_increases(objective: np.ndarray, rounding: float, eps: float) -> dict[str, np.ndarray]:
    """Per row (one seed) of ``objective`` (f_0, …, f_K): increases and their size.

    Returns ``increases`` (f_k − f_{k−1} > rounding·ε·|f_{k−1}|), ``raw_increases`` (> 0),
    ``largest_increase`` (the largest relative increase (f_k − f_{k−1}) / |f_{k−1}|, 0 when
    there is none) and ``closest_to_increase`` (the largest relative change, an increase or
    the smallest decrease: how near the run came to going up).  NaNs (a stop) are ignored.
    """
    f = np.atleast_2d(np.asarray(objective, np.float64))
    step = f[:, 1:] - f[:, :-1]
    base = np.abs(f[:, :-1])
    relative = np.where(np.isfinite(step), step / np.where(base > 0, base, 1.0), -np.inf)
    return {
        "increases": np.sum(relative > rounding * eps, axis=1),
        "raw_increases": np.sum(relative > 0, axis=1),
        "largest_increase": np.maximum(relative.max(axis=1), 0.0),
        "closest_to_increase": relative.max(axis=1),
    }


@functools.cache
def _compiled_runs(exponent: str, rank: int, max_iter: int):
    """A jit-compiled f(V, β, keys) -> (f_0, f_1…f_K per key, non-finite per key).

    β is an argument (traced: jnmf's general β path), so one program serves every β of a
    (data shape, exponent): the study compiles once per dataset and exponent.
    """
    solver = jnmf.MultiplicativeUpdate(exponent=exponent)

    def one(V, beta, key):
        problem = jnmf.make_problem(V, beta)
        start = jnmf.initialize(key, problem, rank, "random")
        solution = jnmf.solve(problem, solver, start, max_iter=max_iter, tol=0.0, every=1)
        history = solution.history
        trace = jax.numpy.concatenate([history.objective0[None], history.objective])
        return trace, solution.status == jnmf.Status.NONFINITE

    return jax.jit(jax.vmap(one, in_axes=(None, None, 0)))


def run_exponent(V, beta: float, exponent: str, rank: int, max_iter: int, seeds) -> dict:
    """MU with ``exponent`` from one random start per seed; objective at every iteration.

    ``seconds``: wall time of the call, compilation included when this (data shape,
    exponent) is first met.
    """
    keys = jax.numpy.stack([jax.random.PRNGKey(int(s)) for s in seeds])
    beta = jax.numpy.asarray(beta, V.dtype)
    run = _compiled_runs(exponent, rank, max_iter)
    start = time.perf_counter()
    trace, nonfinite = jax.block_until_ready(run(V, beta, keys))
    return {
        "objective": np.asarray(trace, np.float64),
        "nonfinite": np.asarray(nonfinite, bool),
        "seconds": time.perf_counter() - start,
    }


class MMHeuristicStudy(Study):
    """Objective increases and the objective reached: MM exponent γ(β) vs exponent 1."""

    name = "mm-vs-heuristic"
    description = "MU with the MM exponent gamma(beta) vs the heuristic exponent 1 (beta ∉ [1, 2])"

    def parse(self, section: Mapping[str, Any]) -> MMHeuristicConfig:
        read = Section(section, StudyConfigError, MMHeuristicConfig.__dataclass_fields__)
        d = MMHeuristicConfig()
        datasets = tuple(section.get("datasets", list(d.datasets)))
        unknown = [x for x in datasets if x not in DATASETS]
        if not datasets or unknown or len(set(datasets)) != len(datasets):
            raise StudyConfigError(
                f"[study] datasets must list some of {list(DATASETS)} once each, got {datasets}"
            )
        betas = read.reals("betas", list(d.betas), -10.0, 10.0)
        if not betas:
            raise StudyConfigError("[study] betas must list at least one β, e.g. [-0.5, 3.0]")
        n = read.integer("synthetic_n", d.synthetic_n, 2, 100_000)
        m = read.integer("synthetic_m", d.synthetic_m, 2, 100_000)
        rank = read.integer("rank", d.rank, 1, 1000)
        if "synthetic" in datasets and rank > min(n, m):
            raise StudyConfigError(f"[study] rank {rank} exceeds the synthetic min(n, m)")
        return MMHeuristicConfig(
            datasets=datasets,
            betas=betas,
            rank=rank,
            max_iter=read.integer("max_iter", d.max_iter, 2, 100_000),
            n_seeds=read.integer("n_seeds", d.n_seeds, 1, 100),
            rounding=read.real("rounding", d.rounding, 0.0, 1e12),
            faces_downsample=read.integer("faces_downsample", d.faces_downsample, 1, 16),
            faces_offset=read.real("faces_offset", d.faces_offset, 0.0, 1.0, open_low=True),
            synthetic_n=n,
            synthetic_m=m,
            synthetic_rank=read.integer("synthetic_rank", d.synthetic_rank, 1, min(n, m)),
            synthetic_noise=read.real("synthetic_noise", d.synthetic_noise, 0.0, 10.0, True),
        )

    def tasks(self, config: MMHeuristicConfig) -> list[Task]:
        return [
            Task(
                f"{dataset}_beta{beta:g}_{exponent}",
                {"dataset": dataset, "beta": beta, "exponent": exponent, **asdict(config)},
            )
            for dataset in config.datasets
            for beta in config.betas
            for exponent in EXPONENTS
        ]

    def load(self, config: MMHeuristicConfig) -> dict[str, np.ndarray]:
        dtype = jax.dtypes.canonicalize_dtype(np.float64)
        loaders = {"faces": faces_data, "synthetic": synthetic_data}
        return {name: loaders[name](config).astype(dtype) for name in config.datasets}

    def compute(self, task: Task, data: Mapping[str, np.ndarray]) -> dict[str, Any]:
        p = task.params
        V = data[p["dataset"]]
        seeds = range(int(p["n_seeds"]))
        if int(p["rank"]) > min(V.shape):
            raise ValueError(f"rank {p['rank']} exceeds min(n, m) = {min(V.shape)} of {V.shape}")
        run = run_exponent(V, float(p["beta"]), p["exponent"], int(p["rank"]), p["max_iter"], seeds)
        eps = float(np.finfo(V.dtype).eps)
        counts = count_increases(run["objective"], float(p["rounding"]), eps)
        return {
            "dataset": p["dataset"],
            "shape": list(V.shape),
            "beta": float(p["beta"]),
            "exponent": p["exponent"],
            "gamma": float(jnmf.mm_exponent(float(p["beta"]))),
            "dtype": str(V.dtype),
            "threshold": float(p["rounding"]) * eps,
            **run,
            **counts,
        }

    def tables(self, results, config: MMHeuristicConfig) -> dict[str, list[dict]]:
        rows = summarize(results)
        return {"mm_vs_heuristic": rows} if rows else {}

    def figures(self, results, config: MMHeuristicConfig) -> dict[str, Any]:
        rows = summarize(results)
        if not rows:
            return {}
        return {
            "objective": objective_figure(finished(results), rows, config),
            "summary": summary_figure(rows, config),
        }


def finished(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The results of computed tasks (a skipped task is stored as ``{"skipped": reason}``)."""
    return {key: r for key, r in results.items() if "skipped" not in r}


def summarize(results: Mapping[str, Mapping[str, Any]]) -> list[dict]:
    """One row per (dataset, β, exponent): increases over all seeds, objective reached."""
    by_key = {
        (str(r["dataset"]), float(r["beta"]), str(r["exponent"])): r
        for r in finished(results).values()
    }
    rows = []
    for (dataset, beta, exponent), r in sorted(by_key.items()):
        final = np.asarray(r["objective"], np.float64)[:, -1]
        mm = by_key.get((dataset, beta, "mm"))
        ratio = final / np.asarray(mm["objective"], np.float64)[:, -1] if mm else np.nan
        rows.append(
            {
                "dataset": dataset,
                "beta": beta,
                "exponent": exponent,
                "gamma": float(r["gamma"]) if exponent == "mm" else 1.0,
                "seeds": len(final),
                "iterations": np.asarray(r["objective"]).shape[1] - 1,
                "increases": int(np.sum(r["increases"])),
                "raw_increases": int(np.sum(r["raw_increases"])),
                "largest_relative_increase": float(np.max(r["largest_increase"])),
                "closest_to_increase": float(np.max(r["closest_to_increase"])),
                "threshold": float(r["threshold"]),
                "final_objective_mean": float(np.mean(final)),
                "final_vs_mm_mean": float(np.mean(ratio)),
                "nonfinite_seeds": int(np.sum(r["nonfinite"])),
                "seconds": float(r["seconds"]),
            }
        )
    return rows


def objective_figure(results, rows: list[dict], config: MMHeuristicConfig):
    """Rows: datasets; columns: β.  f_k / f* per seed, both exponents, f* the lowest
    objective any run reached on that (dataset, β); increases marked ×."""
    datasets = [d for d in config.datasets if any(r["dataset"] == d for r in rows)]
    betas = sorted({r["beta"] for r in rows})
    fig = new_figure(figsize=(3.3 * len(betas), 3.0 * len(datasets) + 0.6), layout="constrained")
    axes = fig.subplots(len(datasets), len(betas), squeeze=False)
    styles = {"mm": ("tab:blue", "-"), "heuristic": ("tab:orange", "--")}
    for i, dataset in enumerate(datasets):
        runs = {
            (float(r["beta"]), str(r["exponent"])): r
            for r in results.values()
            if str(r["dataset"]) == dataset
        }
        for j, beta in enumerate(betas):
            ax = axes[i, j]
            mine = [(e, runs[(beta, e)]) for e in EXPONENTS if (beta, e) in runs]
            if not mine:
                ax.set_visible(False)
                continue
            best = min(np.nanmin(np.asarray(r["objective"], np.float64)) for _, r in mine)
            counts = []
            for exponent, r in mine:
                color, style = styles[exponent]
                trace = np.asarray(r["objective"], np.float64)
                excess = trace / best
                steps = np.arange(trace.shape[1])
                for s, row in enumerate(excess):
                    label = EXPONENT_LABELS[exponent] if s == 0 else None
                    ax.plot(steps[1:], row[1:], color=color, ls=style, lw=1, label=label)
                    up = np.flatnonzero(np.diff(trace[s]) > r["threshold"] * np.abs(trace[s, :-1]))
                    ax.plot(up + 1, row[up + 1], "x", color="red", ms=6)
                counts.append(f"{exponent} {int(np.sum(r['increases']))}")
            gamma = float(jnmf.mm_exponent(beta))
            ax.set_title(
                f"{dataset}, β = {beta:g} (γ = {gamma:.3g})\nincreases: " + ", ".join(counts),
                fontsize=9,
            )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            if j == 0:
                ax.set_ylabel("f / f*  (f* = lowest reached)")
            if i == len(datasets) - 1:
                ax.set_xlabel("iteration")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(
        f"MU objective per iteration, rank {config.rank}, {config.n_seeds} seeds (one line "
        "each, same starts for both exponents); × = an increase beyond rounding",
        fontsize=10,
    )
    return fig


def summary_figure(rows: list[dict], config: MMHeuristicConfig):
    """Left: the largest per-iteration relative change of f (> 0: an increase) per β and
    exponent, with the count of increases; right: heuristic's objective / MM's after the
    budget."""
    fig = new_figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    betas = sorted({r["beta"] for r in rows})
    positions = np.arange(len(betas))
    groups = [(d, e) for d in config.datasets for e in EXPONENTS]
    width = 0.8 / len(groups)
    for g, (dataset, exponent) in enumerate(groups):
        mine = {r["beta"]: r for r in rows if r["dataset"] == dataset and r["exponent"] == exponent}
        if not mine:
            continue
        x = positions + (g - (len(groups) - 1) / 2) * width
        change = [mine[b]["closest_to_increase"] if b in mine else np.nan for b in betas]
        marker = "o" if exponent == "mm" else "s"
        left.plot(x, change, marker, ls="none", label=f"{dataset}, {exponent}")
        for xi, b, c in zip(x, betas, change, strict=True):
            if b in mine:
                left.annotate(
                    str(mine[b]["increases"]),
                    (xi, c),
                    fontsize=7,
                    ha="center",
                    xytext=(0, 5),
                    textcoords="offset points",
                )
        if exponent == "heuristic":
            ratio = [mine[b]["final_vs_mm_mean"] if b in mine else np.nan for b in betas]
            right.plot(positions, ratio, "o-", label=dataset)
    iterations = rows[0]["iterations"]
    threshold = rows[0]["threshold"]
    left.set_yscale("symlog", linthresh=max(threshold, 1e-300))
    left.axhline(threshold, color="red", lw=1, label=f"rounding threshold {threshold:.1e}")
    left.axhline(0.0, color="grey", lw=0.8)
    left.set_xticks(positions, [f"{b:g}" for b in betas])
    left.set_xlabel("β")
    left.set_ylabel("largest (f_k − f_{k−1}) / f_{k−1} over steps, seeds")
    left.set_title(
        f"< 0: f fell at every step; labels: increases\n(all seeds × {iterations} iterations)",
        fontsize=9,
    )
    left.legend(fontsize=8)
    right.axhline(1.0, color="grey", lw=1)
    right.set_xticks(positions, [f"{b:g}" for b in betas])
    right.set_xlabel("β")
    right.set_ylabel("f(heuristic) / f(MM), mean over seeds")
    right.set_title(
        f"objective reached after {iterations} iterations (< 1: heuristic lower)", fontsize=9
    )
    right.legend(fontsize=8)
    right.grid(True, alpha=0.3)
    return fig


__all__ = ["MMHeuristicConfig", "MMHeuristicStudy", "count_increases", "finished", "summarize"]
