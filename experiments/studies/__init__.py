"""Studies: each is a config (``configs/<study>.toml``) plus one function registered here.

The runner computes a study's grid (``runner.run``) the same way for every study; the
study's function turns the stored results into figures: ``figures(results: RunResults) ->
{name: Figure}``.  A new study is a config and one ``@register``-ed function; a new solver
joins a study by its name in the config.

* ``quickstart``: MU against another solver on ORL faces at rank 49 (Lee & Seung's
  setting): objective and KKT residual against iterations and seconds, and the learned
  basis images.
* ``convergence``: every listed solver, every β, every dataset: relative objective gap and
  KKT residual against iterations and seconds, restarts and seeds as bands; skipped
  combinations are listed under each figure with their reason.
* ``script``: a study computed by ``module.function(params) -> dict`` (one task); if the
  module also defines ``figures(result: dict) -> {name: Figure}`` it draws them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from experiments.figures import RunResults, basis_figure, convergence_figure


@dataclass(frozen=True)
class Study:
    """A named study: its figure function (the computation is the runner's grid)."""

    name: str
    figures: Callable[[RunResults], dict]


STUDIES: dict[str, Study] = {}


def register(name: str):
    """Decorator: register ``fn(results) -> {name: Figure}`` as study ``name``."""

    def wrap(fn):
        STUDIES[name] = Study(name, fn)
        return fn

    return wrap


def _skip_notes(results: RunResults, **match) -> list[str]:
    notes = []
    for info in results.skipped(**match):
        reason = info.get("reason", "").split(";")[0].split(". ")[0]
        notes.append(f"skipped {info['solver']} (β={info['beta']:g}): {reason[:110]}")
    return notes


def _beta_name(beta: float) -> str:
    names = {2.0: "Frobenius", 1.0: "Kullback-Leibler", 0.0: "Itakura-Saito"}
    return f"β = {beta:g} ({names[beta]})" if beta in names else f"β = {beta:g}"


@register("quickstart")
def quickstart(results: RunResults) -> dict:
    """Convergence panels (raw objective) per problem, and the basis images of each solver."""
    figs = {}
    problems = results.problems()
    for dataset, beta, rank in problems:
        curves = results.curves(dataset, beta, rank)
        if not curves:
            continue
        suffix = "" if len(problems) == 1 else f"_{dataset}_beta{beta:g}_r{rank}"
        title = f"{dataset}, rank {rank}, {_beta_name(beta)}: " + " vs ".join(
            f"{c.solver} (compile {c.compile_s:.1f} s)" for c in curves
        )
        notes = _skip_notes(results, dataset=dataset, beta=beta, rank=rank)
        figs[f"quickstart_convergence{suffix}"] = convergence_figure(
            curves, title, gap=False, notes=notes
        )
        panels, shape = [], None
        for solver in results.config["grid"]["solvers"]:
            for info in results.done(dataset=dataset, beta=beta, rank=rank, solver=solver)[:1]:
                shape = (info.get("meta") or {}).get("image_shape")
                arrays = results.arrays(info)
                if shape and "W" in arrays:
                    label = f"{solver} (seed {info['seed']}): f = {info['best_objective']:.4g}"
                    panels.append((label, arrays["W"]))
        if panels:
            figs[f"quickstart_basis{suffix}"] = basis_figure(
                panels, tuple(shape), f"basis images W[:, k] of {dataset}, rank {rank}"
            )
    return figs


@register("convergence")
def convergence(results: RunResults) -> dict:
    """One 2×2 figure per (dataset, β, rank): gap and KKT against iterations and seconds."""
    figs = {}
    for dataset, beta, rank in results.problems():
        curves = results.curves(dataset, beta, rank)
        notes = _skip_notes(results, dataset=dataset, beta=beta, rank=rank)
        if not curves and not notes:
            continue
        title = f"{dataset}, rank {rank}, {_beta_name(beta)}"
        figs[f"convergence_{dataset}_beta{beta:g}_r{rank}"] = convergence_figure(
            curves, title, gap=True, notes=notes
        )
    return figs


@register("script")
def script(results: RunResults) -> dict:
    """The script module's own ``figures(result)``, if it defines one."""
    spec = results.config["script"]
    module = importlib.import_module(spec["module"])
    draw = getattr(module, "figures", None)
    if draw is None or not results.done():
        return {}
    (info,) = results.done()
    result = dict(info.get("result", {}))
    result.update({k: np.asarray(v) for k, v in results.arrays(info).items()})
    return dict(draw(result))
