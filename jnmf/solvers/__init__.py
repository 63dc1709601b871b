"""NMF algorithms, one family per module, all behind ``AbstractSolver``.

``SOLVERS`` maps the names accepted by ``jnmf.nmf(solver=...)`` to solver classes.
"""

from jnmf.solvers.anls import ANLSBPP
from jnmf.solvers.base import AbstractSolver
from jnmf.solvers.hals import HALS, AcceleratedHALS
from jnmf.solvers.hoyer import SparseHoyer
from jnmf.solvers.kl_cd import KLCoordinateDescent
from jnmf.solvers.kl_dna import KLDiagonalNewton
from jnmf.solvers.mu import MultiplicativeUpdate
from jnmf.solvers.nesterov import Nesterov
from jnmf.solvers.pgd import OptaxProjectedGradient, ProjectedGradient

SOLVERS: dict[str, type[AbstractSolver]] = {
    "mu": MultiplicativeUpdate,
    "hals": HALS,
    "accelerated-hals": AcceleratedHALS,
    "anls-bpp": ANLSBPP,
    "nesterov": Nesterov,
    "projected-gradient": ProjectedGradient,
    "optax-pg": OptaxProjectedGradient,
    "kl-cd": KLCoordinateDescent,
    "kl-dna": KLDiagonalNewton,
    "sparse-hoyer": SparseHoyer,
}


def get_solver(solver) -> AbstractSolver:
    """A solver object from a name in ``SOLVERS`` or an ``AbstractSolver`` instance."""
    if isinstance(solver, AbstractSolver):
        return solver
    if isinstance(solver, str) and solver in SOLVERS:
        return SOLVERS[solver]()
    raise ValueError(f"unknown solver {solver!r}: use one of {sorted(SOLVERS)} or a solver object")


__all__ = [
    "ANLSBPP",
    "HALS",
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
