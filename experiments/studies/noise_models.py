"""Study ``noise-models``: the β-divergence should follow the noise model.

The β-divergence d_β is, up to terms free of the factors, the negative log-likelihood of a
noise model (Févotte & Idier 2011): β = 2 of additive Gaussian noise, β = 1 of Poisson
counts, β = 0 of multiplicative Gamma noise.  The claim tested here: the fit whose β matches
the noise recovers the true factors best.

Ground truth (per seed), V₀ = W H, n × m at rank r, scaled to mean 1:

* W_iz = u² + 0.05 with u uniform on [0, 1]: dense, positive, a wide dynamic range;
* H sparse: each entry active with probability 0.35 (uniform on [0.2, 1]), at least one per
  column, so many columns hold one component only (anchors: the columns of W are extreme rays of
  the cone of V₀'s columns, which makes W identifiable up to scale and order), and V₀ > 0.

Noise at level ℓ (the coefficient of variation of an entry equal to the mean of V₀):

* ``gaussian``: V = V₀ + ℓ·ε, ε ~ N(0, 1); entries below ``floor`` are clipped to ``floor``
  (NMF needs V ≥ 0, β ≤ 1 fits need V > 0), and the clipped fraction is stored;
* ``poisson``: V = P/λ with P ~ Poisson(λ V₀), λ = 1/ℓ²; V has exact zeros where P = 0, where
  β = 0 is undefined (d_0(0|x) = ∞): that fit is skipped and the reason stored;
* ``gamma``: V = V₀ ⊙ G with G ~ Gamma(shape k = 1/ℓ², scale 1/k) (mean 1, CV ℓ).

Each β is fitted to its minimizer as closely as the budget allows, the best of ``n_restarts``
(``jnmf.nmf``): β = 1 and β = 0 by multiplicative updates (the MM exponent γ(β)), β = 2 by
``frobenius_solver`` (HALS by default: at 1000 steps, multiplicative updates for β = 2 are
still far enough from convergence to lose to β = 1 at low Gaussian noise, HALS or 5000 MU
steps are not; the claim is about the divergence, not about an algorithm).

Recovery: Pearson correlations between the columns of the true and the fitted W, columns
matched by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``, maximizing the
total correlation), averaged over the r pairs; then mean and standard deviation over seeds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import jax
import numpy as np
from scipy.optimize import linear_sum_assignment

import jnmf
from experiments.studies._faces import Section, new_figure
from experiments.study import Study, StudyConfigError, Task

NOISE_MODELS = ("gaussian", "poisson", "gamma")
MATCHING_BETA = {"gaussian": 2.0, "poisson": 1.0, "gamma": 0.0}
BETA_NAMES = {2.0: "β = 2 (Frobenius)", 1.0: "β = 1 (KL)", 0.0: "β = 0 (Itakura-Saito)"}


@dataclass(frozen=True)
class NoiseModelsConfig:
    n: int = 100
    m: int = 200
    rank: int = 5
    gaussian_levels: tuple[float, ...] = (0.1, 0.3, 0.5)
    poisson_levels: tuple[float, ...] = (0.1, 0.3, 0.5)
    gamma_levels: tuple[float, ...] = (0.1, 0.3, 0.6, 1.0)
    betas: tuple[float, ...] = (2.0, 1.0, 0.0)
    n_seeds: int = 3
    n_restarts: int = 2
    max_iter: int = 2000
    tol: float = 1e-8
    frobenius_solver: str = "hals"
    floor: float = 1e-3


def ground_truth(rng: np.random.Generator, n: int, m: int, rank: int):
    """W (n×r) dense positive, H (r×m) sparse with anchors, V₀ = W H scaled to mean 1."""
    W = rng.uniform(0.0, 1.0, (n, rank)) ** 2 + 0.05
    active = rng.random((rank, m)) < 0.35
    active[rng.integers(rank, size=m), np.arange(m)] = True
    H = active * rng.uniform(0.2, 1.0, (rank, m))
    scale = float((W @ H).mean())
    return W, H / scale, W @ H / scale


def add_noise(rng: np.random.Generator, V0: np.ndarray, model: str, level: float, floor: float):
    """V drawn from ``model`` around V₀ at coefficient of variation ``level``; clipped fraction."""
    if model == "gaussian":
        V = V0 + level * rng.standard_normal(V0.shape)
        clipped = V < floor
        return np.where(clipped, floor, V), float(clipped.mean())
    if model == "poisson":
        counts_per_unit = 1.0 / level**2
        return rng.poisson(counts_per_unit * V0) / counts_per_unit, 0.0
    if model == "gamma":
        shape = 1.0 / level**2
        return V0 * rng.gamma(shape, 1.0 / shape, V0.shape), 0.0
    raise ValueError(f"unknown noise model {model!r}; use one of {NOISE_MODELS}")


def matched_correlation(W_true: np.ndarray, W_fit: np.ndarray) -> float:
    """Mean Pearson correlation of W_true's columns with W_fit's, Hungarian-matched."""
    A = W_true - W_true.mean(axis=0)
    B = W_fit - W_fit.mean(axis=0)
    norms = np.linalg.norm(A, axis=0)[:, None] * np.linalg.norm(B, axis=0)[None, :]
    correlation = (A.T @ B) / np.where(norms > 0, norms, np.inf)
    rows, cols = linear_sum_assignment(correlation, maximize=True)
    return float(correlation[rows, cols].mean())


def recovery(model: str, level: float, seed: int, config: NoiseModelsConfig) -> dict[str, Any]:
    """Draw truth and noise for ``seed``, fit every β; correlations (NaN where skipped)."""
    rng = np.random.default_rng([seed, NOISE_MODELS.index(model), int(round(level * 1e6))])
    W, _, V0 = ground_truth(rng, config.n, config.m, config.rank)
    V, clipped = add_noise(rng, V0, model, level, config.floor)
    dtype = jax.dtypes.canonicalize_dtype(np.float64)
    correlations, objectives, skip_notes = [], [], []
    for beta in config.betas:
        zeros = int(np.sum(V <= 0))
        if beta <= 0 and zeros:
            correlations.append(np.nan)
            objectives.append(np.nan)
            skip_notes.append(f"β = {beta:g} skipped: V has {zeros} zero entries (needs V > 0)")
            continue
        solution = jnmf.nmf(
            np.asarray(V, dtype),
            config.rank,
            beta=beta,
            solver=config.frobenius_solver if beta == 2.0 else "mu",
            n_restarts=config.n_restarts,
            max_iter=config.max_iter,
            tol=config.tol,
            key=seed,
        )
        correlations.append(matched_correlation(W, np.asarray(solution.W, np.float64)))
        objectives.append(float(solution.objective))
    return {
        "model": model,
        "level": level,
        "seed": seed,
        "betas": np.asarray(config.betas),
        "correlation": np.asarray(correlations),
        "objective": np.asarray(objectives),
        "clipped_fraction": clipped,
        "zero_fraction": float(np.mean(V <= 0)),
        "skip_notes": skip_notes,
    }


class NoiseModelsStudy(Study):
    """Recovery of W under Gaussian, Poisson and Gamma noise by β = 2, 1, 0 fits."""

    name = "noise-models"
    description = "synthetic V = WH with Gaussian/Poisson/Gamma noise, fit with beta = 2, 1, 0"

    def parse(self, section: Mapping[str, Any]) -> NoiseModelsConfig:
        read = Section(section, StudyConfigError, NoiseModelsConfig.__dataclass_fields__)
        d = NoiseModelsConfig()
        n = read.integer("n", d.n, 2, 100_000)
        m = read.integer("m", d.m, 2, 100_000)
        levels = {
            f"{model}_levels": read.reals(
                f"{model}_levels", list(getattr(d, f"{model}_levels")), 0.0, 10.0, True
            )
            for model in NOISE_MODELS
        }
        if not any(levels.values()):
            raise StudyConfigError("[study] every *_levels list is empty: give some noise level")
        betas = read.reals("betas", list(d.betas), -5.0, 5.0)
        if not betas:
            raise StudyConfigError("[study] betas must list at least one β (e.g. [2.0, 1.0, 0.0])")
        return NoiseModelsConfig(
            n=n,
            m=m,
            rank=read.integer("rank", d.rank, 1, min(n, m)),
            **levels,
            betas=betas,
            n_seeds=read.integer("n_seeds", d.n_seeds, 1, 1000),
            n_restarts=read.integer("n_restarts", d.n_restarts, 1, 100),
            max_iter=read.integer("max_iter", d.max_iter, 1),
            tol=read.real("tol", d.tol, 0.0),
            floor=read.real("floor", d.floor, 0.0, 1.0, True),
            frobenius_solver=read.choice(
                "frobenius_solver",
                d.frobenius_solver,
                {"mu", "hals", "accelerated-hals", "anls-bpp"},
            ),
        )

    def tasks(self, config: NoiseModelsConfig) -> list[Task]:
        params = asdict(config)
        return [
            Task(
                f"{model}_{level:g}_seed{seed}",
                {**params, "model": model, "level": level, "seed": seed},
            )
            for model in NOISE_MODELS
            for level in getattr(config, f"{model}_levels")
            for seed in range(config.n_seeds)
        ]

    def compute(self, task: Task, data: Any) -> dict[str, Any]:
        fields = NoiseModelsConfig.__dataclass_fields__
        config = NoiseModelsConfig(**{k: v for k, v in task.params.items() if k in fields})
        start = time.perf_counter()
        p = task.params
        result = recovery(p["model"], float(p["level"]), int(p["seed"]), config)
        return {**result, "seconds": time.perf_counter() - start}

    def tables(self, results, config: NoiseModelsConfig) -> dict[str, list[dict]]:
        rows = summarize(results, config)
        return {"noise_models_recovery": rows} if rows else {}

    def figures(self, results, config: NoiseModelsConfig) -> dict[str, Any]:
        rows = summarize(results, config)
        return {"recovery": _recovery_figure(rows, config)} if rows else {}


def summarize(results, config: NoiseModelsConfig) -> list[dict]:
    """One row per (noise model, level, β): mean ± std over seeds of the matched correlation."""
    groups: dict[tuple[str, float], list] = {}
    for result in (r for r in results.values() if "skipped" not in r):
        groups.setdefault((str(result["model"]), float(result["level"])), []).append(result)
    rows = []
    for (model, level), group in sorted(groups.items(), key=lambda g: (_order(g[0][0]), g[0][1])):
        betas = [float(b) for b in group[0]["betas"]]
        correlation = np.array([np.asarray(r["correlation"], np.float64) for r in group])
        fitted = ~np.all(np.isnan(correlation), axis=0)
        means = np.full(len(betas), np.nan)
        means[fitted] = np.nanmean(correlation[:, fitted], axis=0)
        best = betas[int(np.nanargmax(means))] if fitted.any() else None
        matching = MATCHING_BETA[model]
        for j, beta in enumerate(betas):
            notes = sorted(
                {n for r in group for n in r["skip_notes"] if n.startswith(f"β = {beta:g} ")}
            )
            rows.append(
                {
                    "noise": model,
                    "level": level,
                    "beta": beta,
                    "matching": beta == matching,
                    "mean_correlation": float(means[j]),
                    "std_correlation": float(np.nanstd(correlation[:, j])) if fitted[j] else np.nan,
                    "seeds": len(group),
                    "best": beta == best,
                    "matching_beta_wins": best == matching if matching in betas else None,
                    "clipped_fraction": float(np.mean([r["clipped_fraction"] for r in group])),
                    "zero_fraction": float(np.mean([r["zero_fraction"] for r in group])),
                    "note": notes[0].split(": ", 1)[1] if notes else "",
                }
            )
    return rows


def _order(model: str) -> int:
    return NOISE_MODELS.index(model)


def _recovery_figure(rows: list[dict], config: NoiseModelsConfig):
    """Per noise model: 1 − mean matched correlation against the level, one line per β."""
    models = [m for m in NOISE_MODELS if any(r["noise"] == m for r in rows)]
    fig = new_figure(figsize=(4.6 * len(models), 4.4), layout="constrained")
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    verdicts = []
    for ax, model in zip(axes, models, strict=True):
        mine = [r for r in rows if r["noise"] == model]
        for k, beta in enumerate(dict.fromkeys(r["beta"] for r in mine)):
            line = [r for r in mine if r["beta"] == beta and np.isfinite(r["mean_correlation"])]
            if not line:
                continue
            levels = np.array([r["level"] for r in line])
            gap = np.array([1.0 - r["mean_correlation"] for r in line])
            spread = np.array([r["std_correlation"] for r in line])
            label = BETA_NAMES.get(beta, f"β = {beta:g}")
            if beta == MATCHING_BETA[model]:
                label += " ← matches"
            ax.errorbar(
                levels * (1 + 0.03 * (k - 1)),
                gap,
                yerr=np.minimum(spread, gap * 0.95),
                marker="o",
                capsize=3,
                lw=2.5 if beta == MATCHING_BETA[model] else 1.2,
                label=label,
            )
        levels = sorted({r["level"] for r in mine})
        wins = [
            lv for lv in levels if any(r["level"] == lv and r["matching_beta_wins"] for r in mine)
        ]
        verdicts.append(f"{model}: {len(wins)}/{len(levels)}")
        extra = []
        for beta in dict.fromkeys(r["beta"] for r in mine if r["note"]):
            at = ", ".join(f"{r['level']:g}" for r in mine if r["beta"] == beta and r["note"])
            extra.append(f"β = {beta:g} not fitted at level {at}: V has zeros")
        clipped = max(r["clipped_fraction"] for r in mine)
        if clipped > 0:
            extra.append(f"negatives clipped: up to {100 * clipped:.1f}% of entries")
        ax.set_title(f"{model} noise\n" + "; ".join(e for e in extra if e), fontsize=9)
        ax.set_xscale("log")
        ax.set_xticks(levels, [f"{level:g}" for level in levels])
        ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
        ax.set_yscale("log")
        ax.set_xlabel("noise level (coefficient of variation at the mean entry)")
        ax.set_ylabel("1 − mean matched correlation of W (lower is better)")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(
        f"recovery of the true W ({config.n}×{config.rank}, m = {config.m}, "
        f"{config.n_seeds} seeds, ± std; β = 2 by {config.frobenius_solver}, others by mu); "
        "matching β best at: " + ", ".join(verdicts),
        fontsize=10,
    )
    return fig
