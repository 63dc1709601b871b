"""Figures of grid studies from stored results: convergence panels and basis montages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from experiments.figures import Curves, basis_figure, convergence_figure
from experiments.studies.grid import GridConfig, grid_tasks

BETA_LABELS = {2.0: "Frobenius", 1.0: "Kullback-Leibler", 0.0: "Itakura-Saito"}


def beta_name(beta: float) -> str:
    return f"β = {beta:g} ({BETA_LABELS[beta]})" if beta in BETA_LABELS else f"β = {beta:g}"


def problems(config: GridConfig) -> list[tuple[str, float, int]]:
    """The (dataset, β, rank) combinations in config order."""
    return [(d, b, r) for d in config.datasets for b in config.betas for r in config.ranks]


def _matching(results, config, dataset, beta, rank, solver=None):
    for task in grid_tasks(config):
        p = task.params
        same = (p["dataset"], p["beta"], p["rank"]) == (dataset, beta, rank)
        if same and (solver is None or p["solver"] == solver) and task.key in results:
            yield task, results[task.key]


def curves(results: Mapping[str, Mapping[str, Any]], config: GridConfig, dataset, beta, rank):
    """One ``Curves`` per solver (config order) with finished tasks on this problem; each
    seed's best restart is one run of the band, the start (iteration 0) prepended."""
    out = []
    for solver in config.solvers:
        matching = _matching(results, config, dataset, beta, rank, solver)
        done = [r for _, r in matching if "skipped" not in r]
        if not done:
            continue
        objective = [np.concatenate([[r["objective0"]], r["objective"]]) for r in done]
        kkt = [np.concatenate([[1.0], r["kkt"]]) for r in done]
        out.append(
            Curves(
                solver=solver,
                iterations=np.concatenate([[0], done[0]["iterations"]]),
                objective=np.asarray(objective, dtype=np.float64),
                kkt=np.asarray(kkt, dtype=np.float64),
                seconds_per_iter=float(np.median([r["s_per_iter"] for r in done])),
                compile_s=float(np.median([r["compile_s"] for r in done])),
                restarts=int(done[0]["restarts"]),
            )
        )
    return out


def skip_notes(results, config: GridConfig, dataset, beta, rank) -> list[str]:
    """One line per skipped solver on this problem, with the first clause of its reason."""
    notes = {}
    for task, result in _matching(results, config, dataset, beta, rank):
        if "skipped" in result and task.params["solver"] not in notes:
            reason = result["skipped"].split(";")[0].split(". ")[0]
            notes[task.params["solver"]] = f"skipped {task.params['solver']}: {reason[:110]}"
    return list(notes.values())


def convergence_figures(results, config: GridConfig, gap: bool, name_all: bool) -> dict:
    """A 2×2 convergence figure per problem; named ``convergence`` when there is one problem
    and ``name_all`` is false, else ``<dataset>_beta<β>_r<rank>``."""
    figs = {}
    combos = problems(config)
    for dataset, beta, rank in combos:
        found = curves(results, config, dataset, beta, rank)
        notes = skip_notes(results, config, dataset, beta, rank)
        if not found and not notes:
            continue
        title = f"{dataset}, rank {rank}, {beta_name(beta)}"
        if not gap and found:
            title += ": " + " vs ".join(f"{c.solver} (compile {c.compile_s:.1f} s)" for c in found)
        suffix = f"{dataset}_beta{beta:g}_r{rank}"
        name = suffix if name_all or len(combos) > 1 else "convergence"
        figs[name] = convergence_figure(found, title, gap=gap, notes=notes)
    return figs


def basis_figures(results, config: GridConfig) -> dict:
    """Montages of W's columns (the first seed's best restart per solver) for image data."""
    figs = {}
    combos = problems(config)
    for dataset, beta, rank in combos:
        panels, shape = [], None
        for solver in config.solvers:
            for _, r in _matching(results, config, dataset, beta, rank, solver):
                if "skipped" in r or "W" not in r or not r.get("image_shape"):
                    continue
                shape = tuple(r["image_shape"])
                label = f"{solver} (seed {r['seed']}): f = {r['best_objective']:.4g}"
                panels.append((label, r["W"]))
                break
        if panels:
            name = "basis" if len(combos) == 1 else f"basis_{dataset}_beta{beta:g}_r{rank}"
            title = f"basis images W[:, k] of {dataset}, rank {rank}"
            figs[name] = basis_figure(panels, shape, title)
    return figs
