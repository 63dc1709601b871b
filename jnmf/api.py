"""``jnmf.nmf``: the one-call entry point over the composable core.

    sol = jnmf.nmf(V, rank=10, beta="kullback-leibler", solver="mu", init="nndsvda",
                   n_restarts=8, max_iter=500, tol=1e-5, key=0)

validates everything in Python (``ValueError`` before compiling), builds a ``Problem``,
runs ``n_restarts`` solves as one vmapped, jit-compiled program and returns the best.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp

from jnmf.batch import best_of, resolve_batch_size, restart_keys, solve_restarts
from jnmf.init import check_init
from jnmf.problem import make_problem
from jnmf.solve import Solution
from jnmf.solvers import SOLVERS, AbstractSolver, get_solver


def nmf(
    V,
    rank: int,
    *,
    beta=2.0,
    solver: str | AbstractSolver = "mu",
    init="random",
    n_restarts: int = 1,
    max_iter: int = 200,
    tol: float = 1e-4,
    kkt_tol: float = 0.0,
    key=0,
    l1_W: float = 0.0,
    l1_H: float = 0.0,
    l2_W: float = 0.0,
    l2_H: float = 0.0,
    weights=None,
    every: int = 1,
    batch_size="auto",
) -> Solution:
    """Factorize V (n×m, ≥ 0) as W H with W (n×r) ≥ 0, H (r×m) ≥ 0.

    Minimizes Σ M_ij d_β(V_ij | (WH)_ij) + l1_W‖W‖₁ + l1_H‖H‖₁ + ½l2_W‖W‖² + ½l2_H‖H‖².

    Args:
        V: data, n×m, non-negative and finite (NaN allowed where ``weights`` is 0).
        rank: r ≥ 1.
        beta: a real β or "frobenius" (2), "kullback-leibler" (1), "itakura-saito" (0).
        solver: a name in ``jnmf.solvers.SOLVERS`` or a solver object.
        init: "random", "nndsvd", "nndsvda", "nndsvdar" or a tuple ``(W0, H0)``.
        n_restarts: independent starts (keys split from ``key``), vmapped; the best is kept.
        max_iter, tol, kkt_tol, every: passed to ``solve``.
        batch_size: how restarts are batched in the one compiled program: None = one ``vmap``,
            b = ``lax.map`` b at a time, "auto" = 1 on CPU (faster there) and None elsewhere.
        key: an int seed or a JAX PRNG key.
        weights: optional M ≥ 0 of V's shape (0 marks a missing entry).

    Returns:
        The best restart's ``Solution``; ``restart_objectives`` holds every restart's final
        objective.
    """
    problem = make_problem(V, beta, l1_W=l1_W, l1_H=l1_H, l2_W=l2_W, l2_H=l2_H, weights=weights)
    n, m = problem.shape
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank must be an integer ≥ 1, got {rank!r}")
    if not isinstance(n_restarts, int) or n_restarts < 1:
        raise ValueError(f"n_restarts must be an integer ≥ 1, got {n_restarts!r}")
    if not (tol >= 0 and kkt_tol >= 0):
        raise ValueError(f"tol and kkt_tol must be ≥ 0, got tol={tol}, kkt_tol={kkt_tol}")
    solver_obj = get_solver(solver)
    solver_obj.check(problem)
    start = check_init(init, (n, m), rank, problem.dtype)
    if isinstance(start, str) and start in ("nndsvd", "nndsvda") and n_restarts > 1:
        warnings.warn(
            f"init={start!r} is deterministic: all {n_restarts} restarts start from the same "
            "factors. Use init='random' or 'nndsvdar' for distinct restarts.",
            stacklevel=2,
        )
    batch = resolve_batch_size(batch_size)
    keys = restart_keys(key, n_restarts)
    solutions = solve_restarts(
        problem,
        solver_obj,
        keys,
        start,
        rank,
        max_iter=max_iter,
        every=every,
        batch_size=batch,
        tol=jnp.asarray(tol, problem.dtype),
        kkt_tol=jnp.asarray(kkt_tol, problem.dtype),
    )
    return best_of(solutions)


__all__ = ["nmf", "SOLVERS"]
