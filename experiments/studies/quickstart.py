"""``quickstart``: Lee & Seung's faces setting, MU against another solver on ORL at rank 49.

A grid study (``experiments.studies.grid``): objective and KKT residual against iterations
and seconds (``quickstart_convergence.png``), and the learned basis images of each solver
(``quickstart_basis.png``, needs ``save_factors = true``).
"""

from __future__ import annotations

from experiments.studies.grid import GridConfig, GridStudy
from experiments.studies.grid_plots import basis_figures, convergence_figures


class QuickstartStudy(GridStudy):
    name = "quickstart"
    description = "convergence and basis images of a few solvers on one problem"

    def figures(self, results, config: GridConfig) -> dict:
        figs = convergence_figures(results, config, gap=False, name_all=False)
        figs.update(basis_figures(results, config))
        return figs
