"""``convergence``: every solver, every β, every dataset: relative objective gap and KKT
residual against iterations and seconds, seeds as min–max bands.

A grid study (``experiments.studies.grid``); one figure per (dataset, β, rank) named
``convergence_<dataset>_beta<β>_r<rank>.png``; skipped combinations are listed under each
figure with their reason.
"""

from __future__ import annotations

from experiments.studies.grid import GridConfig, GridStudy
from experiments.studies.grid_plots import convergence_figures


class ConvergenceStudy(GridStudy):
    name = "convergence"
    description = "objective gap and KKT residual vs iterations and seconds, every solver"

    def figures(self, results, config: GridConfig) -> dict:
        return convergence_figures(results, config, gap=True, name_all=True)
