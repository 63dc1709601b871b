"""NMF algorithms, one family per module, all behind ``AbstractSolver``.

``SOLVERS`` maps the names accepted by ``jnmf.nmf(solver=...)`` to solver classes.
"""

from jnmf.solvers.anls import ANLSBPP
from jnmf.solvers.base import AbstractAlternatingSolver, AbstractSolver
from jnmf.solvers.hals import HALS, AcceleratedHALS
from jnmf.solvers.hoyer import SparseHoyer
from jnmf.solvers.kl_cd import KLCoordinateDescent
from jnmf.solvers.kl_dna import KLDiagonalNewton
from jnmf.solvers.mu import MultiplicativeUpdate
from jnmf.solvers.nesterov import Nesterov
from jnmf.solvers.pgd import OptaxProjectedGradient, ProjectedGradient
from jnmf.solvers.registry import SOLVERS, get_solver

__all__ = [
    "ANLSBPP",
    "HALS",
    "AbstractAlternatingSolver",
    "AbstractSolver",
    "AcceleratedHALS",
    "KLCoordinateDescent",
    "KLDiagonalNewton",
    "MultiplicativeUpdate",
    "Nesterov",
    "OptaxProjectedGradient",
    "ProjectedGradient",
    "SOLVERS",
    "SparseHoyer",
    "get_solver",
]
