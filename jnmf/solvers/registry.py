"""Solver names: ``SOLVERS`` maps the names ``jnmf.nmf(solver=...)`` accepts to classes."""

from __future__ import annotations

from jnmf.problem import Problem
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


def name_of(cls: type) -> str:
    """The name of a solver class in ``SOLVERS`` (its class name if it is not listed)."""
    for name, registered in SOLVERS.items():
        if registered is cls:
            return name
    return cls.__name__


def able(problem: Problem) -> str:
    """The names of the registered solvers whose declared capabilities cover ``problem``."""
    names = [name for name, cls in SOLVERS.items() if cls.supports(problem) is None]
    return ", ".join(repr(n) for n in names) or "none"


def get_solver(solver) -> AbstractSolver:
    """A solver object from a name in ``SOLVERS`` or an ``AbstractSolver`` instance."""
    if isinstance(solver, AbstractSolver):
        return solver
    if isinstance(solver, str) and solver in SOLVERS:
        return SOLVERS[solver]()
    raise ValueError(f"unknown solver {solver!r}: use one of {sorted(SOLVERS)} or a solver object")
