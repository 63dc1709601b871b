"""Held-out imputation cross-validation: fit with random entries held out, score them.

k random masks of entries; each fold fits on the other entries (weights 0 on the held-out
ones) and measures the mean β-divergence d_β(V_ij | (WH)_ij) over its held-out entries.
All folds × ranks × restarts run in one compiled program.  The rank with the smallest mean
held-out error is picked.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jnmf.batch import restart_keys, solve_batch
from jnmf.checks import check_positive_int
from jnmf.problem import Factors, Problem, make_problem
from jnmf.program import Program, solve_work
from jnmf.solve import Budget, check_scale
from jnmf.solvers import AbstractSolver, get_solver
from jnmf.sweep import check_plan, check_ranks, default_plan, initial_factors


class ImputationCV(NamedTuple):
    """Held-out imputation cross-validation.

    ``heldout``: (F, K) mean divergence over each fold's held-out entries, for the restart
    with the smallest training objective; ``train``: (F, K) that restart's training
    objective divided by the number of training entries; ``masks``: (F, n, m) boolean,
    True where held out; ``best_rank``: the rank minimizing the mean of ``heldout`` over folds.
    """

    ranks: np.ndarray
    heldout: np.ndarray
    train: np.ndarray
    masks: np.ndarray
    best_rank: int


def holdout_masks(key, shape: tuple[int, int], n_folds: int, fraction: float, observed=None):
    """``n_folds`` independent random masks, each entry held out with probability ``fraction``.

    Only observed entries (``observed`` True, default all) are held out.  (F, n, m) bool.
    """
    u = jax.random.uniform(key, (n_folds,) + tuple(shape))
    masks = u < fraction
    if observed is not None:
        masks = masks & observed
    return masks


def _cv(
    problem: Problem,
    solver: AbstractSolver,
    ranks: tuple[int, ...],
    keys: Array,
    init: str,
    holdout: Array,
    budget: Budget,
    batch_size: int | None,
):
    """Every (fold, rank, restart) fit as one ``solve_batch`` (folds as a batch of weights)."""
    base = jnp.ones(problem.shape, problem.dtype) if problem.weights is None else problem.weights
    fold_w = jnp.where(holdout, 0.0, base)
    F, K, R, r_max = holdout.shape[0], len(ranks), keys.shape[0], max(ranks)

    def starts(w):
        return initial_factors(problem.replace(weights=w), ranks, keys, init, r_max)

    (W0, H0), mask = jax.vmap(starts)(fold_w)
    P = K * R
    W0, H0, mask = (x.reshape((F * P,) + x.shape[2:]) for x in (W0, H0, mask))
    weights = jnp.repeat(fold_w, P, axis=0)
    sol = solve_batch(
        problem.replace(weights=base),
        solver,
        Factors(W0, H0),
        budget,
        masks=mask if K > 1 else None,
        weights=weights,
        batch_size=batch_size,
    )
    held = (jnp.repeat(holdout, P, axis=0)) & (base > 0)
    n_train = jnp.maximum(jnp.sum(weights > 0, axis=(1, 2)), 1)

    def held_error(W, H, held):
        WH = W @ H
        x = jnp.where(held, problem.data(), WH)
        d = problem.divergence.elementwise(x, WH)
        return jnp.sum(jnp.where(held, base * d, 0.0)) / jnp.maximum(jnp.sum(held), 1)

    err = jax.lax.map(lambda a: held_error(*a), (sol.W, sol.H, held))
    train = (sol.objective / n_train).reshape(F, K, R)
    err = err.reshape(F, K, R)
    pick = jnp.argmin(jnp.where(jnp.isnan(train), jnp.inf, train), axis=-1)
    take = lambda x: jnp.take_along_axis(x, pick[..., None], axis=-1)[..., 0]  # noqa: E731
    return take(train), take(err)


def _cv_work(problem, solver, ranks, keys, init, holdout, budget, batch_size) -> int:
    solves = len(ranks) * keys.shape[0] * holdout.shape[0]
    return solve_work(problem.shape, max(ranks), budget.max_iter, solves)


_cv_program = Program(_cv, _cv_work)


def imputation_cv(
    V,
    ranks=range(2, 11),
    *,
    n_folds: int = 5,
    fraction: float = 0.1,
    n_restarts: int = 1,
    beta=2.0,
    solver: str | AbstractSolver = "mu",
    init: str = "random",
    max_iter: int = 500,
    tol: float = 1e-5,
    key=0,
    weights=None,
    every: int = 10,
    batch_size="auto",
) -> ImputationCV:
    """Pick the rank whose fits best predict held-out entries.

    For each of ``n_folds`` folds a random ``fraction`` of the observed entries is held out
    (weight 0); every (fold, rank, restart) fit minimizes Σ M_ij d_β(V_ij | (WH)_ij) on the
    rest.  The held-out error of a (fold, rank) is (1/|held|) Σ_held M_ij d_β(V_ij |
    (WH)_ij) for the restart with the smallest training objective.  All fits run as one
    compiled program (``batch_size`` as in ``rank_sweep``: None vmaps every fit, an integer
    runs that many at a time; "auto" is 1 on CPU, None on accelerators).

    The fold masks come from ``key`` folded with 1; restart starts from ``restart_keys(key,
    n_restarts)`` and the fold's weighted data mean.

    Returns an ``ImputationCV`` with ``best_rank``.  A sparse V is refused (``ValueError``):
    the folds are weights, which sparse V does not take.
    """
    problem = make_problem(V, beta, weights=weights)
    if problem.is_sparse:
        raise ValueError(
            "imputation_cv holds entries out through weights, which a sparse V does not take: "
            "pass V dense (V.toarray() or V.todense()), or choose the rank from a rank_sweep "
            "of the sparse V (error_curve, consensus, stability)"
        )
    if not (0.0 < fraction < 1.0):
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 1:
        raise ValueError(f"n_folds must be an integer ≥ 1, got {n_folds!r}")
    if isinstance(n_restarts, bool) or not isinstance(n_restarts, int) or n_restarts < 1:
        raise ValueError(f"n_restarts must be an integer ≥ 1, got {n_restarts!r}")
    if not isinstance(init, str):
        raise ValueError("imputation_cv needs an initializer name for init, e.g. 'random'")
    check_plan("auto", batch_size)
    ranks = check_ranks(ranks, problem.shape, init)
    solver_obj = get_solver(solver)
    solver_obj.check(problem)
    if batch_size == "auto":
        batch_size = default_plan()[1]
    keys = restart_keys(key, n_restarts)
    observed = None if problem.weights is None else problem.weights > 0
    fold_key = jax.random.fold_in(keys[0], 1)
    masks = holdout_masks(fold_key, problem.shape, n_folds, fraction, observed)
    if not bool(jnp.all(jnp.any(masks, axis=(1, 2)))):
        raise ValueError(f"fraction={fraction} holds out no entry in some fold: raise it")
    budget = Budget(max_iter=check_positive_int("max_iter", max_iter), tol=tol, every=every)
    check_scale(problem)
    train, err = _cv_program(problem, solver_obj, ranks, keys, init, masks, budget, batch_size)
    err = np.asarray(err)
    mean = np.where(np.isfinite(err), err, np.inf).mean(axis=0)
    return ImputationCV(
        ranks=np.asarray(ranks),
        heldout=err,
        train=np.asarray(train),
        masks=np.asarray(masks),
        best_rank=int(ranks[int(np.argmin(mean))]),
    )
