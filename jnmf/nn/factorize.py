"""``factorize``: a whole factorization (W*, H*) of V, differentiable through its KKT system.

The forward pass is ``jnmf.nmf`` (restarts, best of) to find the start, then one ``solve``
from that start with the ``Implicit`` adjoint (it stops at its first evaluation when the
start is converged), so the derivative comes from the joint first-order conditions
∇_W f = 0 on supp W*, ∇_H f = 0 on supp H* (``jnmf.adjoint``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jnmf.adjoint import Implicit
from jnmf.api import nmf
from jnmf.checks import check_key, check_positive_int
from jnmf.problem import Factors, make_problem
from jnmf.solve import Budget, solve
from jnmf.solvers import get_solver


def factorize(
    V,
    rank: int,
    *,
    beta=2.0,
    l1_W=0.0,
    l1_H=0.0,
    l2_W=0.0,
    l2_H=0.0,
    solver="mu",
    init="nndsvda",
    n_restarts: int = 1,
    max_iter: int = 2000,
    tol: float = 1e-10,
    key: int = 0,
    implicit: Implicit | None = None,
) -> Factors:
    """(W*, H*) = ``jnmf.nmf(V, rank, ...)``, differentiable in V, the penalties (and β if traced).

    Well-posedness: NMF is invariant under W D, D⁻¹ H (D positive diagonal), a direction in
    which the unpenalized Hessian is singular; a penalty on each factor
    (l1_W + l2_W > 0 and l1_H + l2_H > 0) fixes the scale, and is required here.  The gradient
    is still meaningless when (W*, H*) is not a strict local minimum on its support (an
    unconverged solve, a degenerate solution, or entries with H_ij = 0 = ∇f_ij).  Columns may
    come out in any order (the order is not differentiable).
    """
    implicit = Implicit() if implicit is None else implicit
    with jax.ensure_compile_time_eval():
        problem = make_problem(V, beta, l1_W=l1_W, l1_H=l1_H, l2_W=l2_W, l2_H=l2_H)
    for name, a, b in (("W", problem.l1_W, problem.l2_W), ("H", problem.l1_H, problem.l2_H)):
        if not isinstance(a + b, jax.core.Tracer) and not float(a + b) > 0:
            raise ValueError(
                f"factorize needs a penalty on {name} (l1_{name} or l2_{name} > 0): without one "
                "the scaling W D, D⁻¹H leaves the solution's derivative undefined"
            )
    check_key(key)
    budget = Budget(max_iter=check_positive_int("max_iter", max_iter), tol=tol)
    if isinstance(init, str):
        frozen = jax.lax.stop_gradient
        with jax.ensure_compile_time_eval():
            found = nmf(
                frozen(problem.V),
                rank,
                beta=frozen(problem.beta) if not isinstance(problem.beta, float) else problem.beta,
                solver=solver,
                init=init,
                n_restarts=n_restarts,
                max_iter=max_iter,
                tol=tol,
                key=key,
                l1_W=frozen(problem.l1_W),
                l1_H=frozen(problem.l1_H),
                l2_W=frozen(problem.l2_W),
                l2_H=frozen(problem.l2_H),
            )
        start = Factors(found.W, found.H)
    elif isinstance(init, tuple) and len(init) == 2:
        start = Factors(*(jnp.asarray(x, problem.dtype) for x in init))
    else:
        raise ValueError("init must be an initializer name or a tuple (W0, H0)")
    sol = solve(problem, get_solver(solver), start, budget, adjoint=implicit)
    return Factors(sol.W, sol.H)


__all__ = ["factorize"]
