"""``pick_solver``: the registered solver that the race table (benchmarks/RACE.md) found
fastest for a problem's β, penalties and weights.

| problem                               | pick                 | race (2000×1000, r = 20)   |
|---------------------------------------|----------------------|----------------------------|
| β = 2, no weights (penalties allowed) | ``accelerated-hals`` | 4–7× sooner than sklearn cd |
| β = 2 with weights                    | ``hals``             | (needs no Gram form)        |
| β = 1 (penalties, weights allowed)    | ``kl-dna``           | 3.3× sooner than sklearn MU |
| any other β, or β traced              | ``mu``               | the only general-β solver   |

At β = 1, kl-cd was 1.9× and MU 1.5× sooner than scikit-learn's MU (quiet machine).
A pick that the problem's declared capabilities do not cover falls back to ``mu``.
"""

from __future__ import annotations

from jnmf.problem import Problem
from jnmf.solvers.registry import SOLVERS


def pick_solver(problem: Problem) -> str:
    """The name in ``SOLVERS`` of the fastest solver for ``problem`` (module docstring)."""
    div = problem.divergence
    if div.is_beta(2.0):
        choice = "accelerated-hals" if problem.weights is None else "hals"
    elif div.is_beta(1.0):
        choice = "kl-dna"
    else:
        choice = "mu"
    if SOLVERS[choice].supports(problem) is not None:
        return "mu"
    return choice
