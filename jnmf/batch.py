"""Batching by transformation: restarts as a ``vmap`` over PRNG keys, and best-of selection."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from jnmf.init import initialize
from jnmf.problem import Factors, Problem
from jnmf.solve import Solution, solve
from jnmf.solvers.base import AbstractSolver


def restart_keys(key, n_restarts: int) -> Array:
    """``n_restarts`` independent keys from an int seed or a PRNG key."""
    if isinstance(key, (int,)) and not isinstance(key, bool):
        key = jax.random.PRNGKey(key)
    elif key is None:
        key = jax.random.PRNGKey(0)
    return jax.random.split(key, n_restarts)


@eqx.filter_jit
def solve_restarts(
    problem: Problem,
    solver: AbstractSolver,
    keys: Array,
    init: str | Factors,
    rank: int,
    *,
    max_iter: int,
    tol,
    kkt_tol,
    every: int,
) -> Solution:
    """One solve per key, vmapped into one compiled program; returns the batched ``Solution``.

    ``init`` is an initializer name (called with each key) or fixed ``Factors``.
    """

    def one(key):
        factors = init if isinstance(init, Factors) else initialize(key, problem, rank, init)
        return solve(
            problem, solver, factors, max_iter=max_iter, tol=tol, kkt_tol=kkt_tol, every=every
        )

    return jax.vmap(one)(keys)


@eqx.filter_jit
def best_of(solutions: Solution) -> Solution:
    """The restart with the smallest final objective (NaN counts as +inf), all objectives kept."""
    objectives = solutions.objective
    best = jnp.argmin(jnp.where(jnp.isnan(objectives), jnp.inf, objectives))
    arrays, static = eqx.partition(solutions, eqx.is_array)
    picked = jax.tree_util.tree_map(lambda x: x[best], arrays)
    sol = eqx.combine(picked, static)
    return eqx.tree_at(lambda s: s.restart_objectives, sol, objectives, is_leaf=lambda x: x is None)
