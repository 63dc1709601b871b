"""The solver protocol.

A solver is an ``equinox.Module`` holding only its hyperparameters.  ``solve`` owns the loop,
the history and the stopping rule; a solver only says how to start and how to take one step:

    state = solver.init(problem, factors)
    factors, state = solver.step(problem, factors, state)

``check(problem)`` runs in Python before anything is compiled and raises ``ValueError`` when
the solver cannot handle the problem's β, penalties or weights (naming solvers that can).
State must be a pytree; its array leaves are carried through ``lax.while_loop``.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx

from jnmf.problem import Factors, Problem


class AbstractSolver(eqx.Module):
    """One NMF algorithm: ``init`` and ``step``; nothing else is required."""

    @abc.abstractmethod
    def check(self, problem: Problem) -> None:
        """Raise ``ValueError`` if this solver cannot handle ``problem``."""

    @abc.abstractmethod
    def init(self, problem: Problem, factors: Factors) -> Any:
        """The solver's state before the first step."""

    @abc.abstractmethod
    def step(self, problem: Problem, factors: Factors, state: Any) -> tuple[Factors, Any]:
        """One iteration: new factors and state."""
