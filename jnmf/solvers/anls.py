"""Alternating non-negative least squares with block principal pivoting (Kim & Park 2011).

With W fixed, the H-subproblem min_{H ≥ 0} ½‖V − WH‖² + l1_H ΣH + ½ l2_H ‖H‖² splits into one
convex quadratic program per column j,

    min_{x ≥ 0} ½ xᵀ G x − bᵀ x,    G = WᵀW + l2_H I,  b = (WᵀV)_j − l1_H,

(``optimality.penalized_gram``).  Its KKT conditions are
y = Gx − b, x ≥ 0, y ≥ 0, xᵀy = 0.  Block principal pivoting keeps a passive set F, solves
G_FF x_F = b_F with x = 0 off F, sets y = Gx − b off F (0 on F), and exchanges every
infeasible index (x_i < 0 on F, y_i < 0 off F) in one go; when the number of infeasible
indices stops shrinking it allows three more full exchanges and then exchanges only the
infeasible index of largest label (Murty's rule), which terminates finitely.  The result is
the exact minimizer of the subproblem (up to the linear solves' rounding).

Batching: each column runs the pivoting on its own passive set, as a ``lax.while_loop``
vectorized over columns (``vmap``) and mapped over blocks of ``block_size`` columns
(``lax.map``), so a block holds block_size r×r systems in memory.  Passive sets start from
the current support (warm start).  Every step solves each subproblem exactly, so the
objective never increases.  Components whose Gram diagonal G_ii is 0 (a zero column of W)
are held at x_i = 0, where the objective is flat or increasing.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from jnmf.optimality import penalized_gram
from jnmf.problem import Problem
from jnmf.solvers.base import AbstractAlternatingSolver


def spd_solve(A: Array, b: Array) -> Array:
    """A⁻¹ b for a symmetric positive definite r×r A, by Gaussian elimination without pivoting.

    Without pivoting, elimination on an SPD matrix is Cholesky's (LDLᵀ) and as stable.
    Plain ``fori_loop`` arithmetic, so it vectorizes over columns under ``vmap`` and needs
    no LAPACK call.
    """
    r = b.shape[0]
    idx = jnp.arange(r)

    def eliminate(k, carry):
        A, b = carry
        below = idx > k
        factor = jnp.where(below, A[:, k] / A[k, k], 0.0)
        return A - factor[:, None] * A[k][None, :], b - factor * b[k]

    U, c = jax.lax.fori_loop(0, r, eliminate, (A, b))

    def substitute(i, x):
        k = r - 1 - i
        return x.at[k].set((c[k] - U[k] @ x) / U[k, k])

    return jax.lax.fori_loop(0, r, substitute, jnp.zeros_like(b))


def _solve_passive(G: Array, b: Array, F: Array) -> tuple[Array, Array]:
    """x with x_F = G_FF⁻¹ b_F, 0 elsewhere, and y = Gx − b off F (0 on F)."""
    r = b.shape[0]
    both = F[:, None] & F[None, :]
    A = jnp.where(both, G, jnp.eye(r, dtype=G.dtype))
    x = jnp.where(F, spd_solve(A, jnp.where(F, b, 0.0)), 0.0)
    y = jnp.where(F, 0.0, G @ x - b)
    return x, y


def nnls_bpp_column(G: Array, b: Array, x0: Array, max_pivots: int) -> Array:
    """argmin_{x ≥ 0} ½ xᵀGx − bᵀx by block principal pivoting, starting from F = {x0 > 0}.

    Each pass solves on the passive set, stops when no index is infeasible, else exchanges
    (at most ``max_pivots`` exchanges): the passive solve appears once in the program.
    """
    r = b.shape[0]
    usable = jnp.diagonal(G) > 0
    labels = jnp.arange(r)

    def cond(carry):
        k, _, _, _, _, done = carry
        return ~done & (k <= max_pivots)

    def body(carry):
        k, F, _, n_best, backups, _ = carry
        x, y = _solve_passive(G, b, F)
        bad = (F & (x < 0)) | (~F & (y < 0) & usable)
        n_bad = jnp.sum(bad)
        improved = n_bad < n_best
        full = improved | (backups >= 1)
        last = jnp.max(jnp.where(bad, labels, -1))
        flip = jnp.where(full, bad, labels == last)
        n_best = jnp.where(improved, n_bad, n_best)
        backups = jnp.where(improved, 3, jnp.where(full, backups - 1, backups))
        return k + 1, F ^ flip, x, n_best, backups, n_bad == 0

    F = (x0 > 0) & usable
    carry = (
        jnp.asarray(0),
        F,
        jnp.zeros_like(b),
        jnp.asarray(r + 1),
        jnp.asarray(3),
        jnp.asarray(False),
    )
    x = jax.lax.while_loop(cond, body, carry)[2]
    return jnp.maximum(x, 0.0)


def anls_update_H(problem: Problem, W: Array, H: Array, max_pivots: int, block_size: int):
    """H ← argmin_{H ≥ 0} of the penalized least squares with W fixed, column by column."""
    G, B = penalized_gram(problem, W)

    def column(args):
        b, x0 = args
        return nnls_bpp_column(G, b, x0, max_pivots)

    X = jax.lax.map(column, (B.T, H.T), batch_size=min(block_size, H.shape[1]))
    return X.T


class ANLSBPP(AbstractAlternatingSolver):
    """ANLS with block principal pivoting (Kim & Park 2011) for β = 2, L1/L2 penalties.

    Each step solves the W-subproblem exactly, then the H-subproblem.  ``max_pivots``
    (static) caps the pivoting iterations of one column (Murty's rule terminates long
    before in practice); ``block_size`` (static) is the number of columns solved together.
    """

    betas: ClassVar = (2.0,)
    weights: ClassVar = False

    max_pivots: int = eqx.field(default=100, static=True)
    block_size: int = eqx.field(default=512, static=True)

    def __check_init__(self):
        if self.max_pivots < 1 or self.block_size < 1:
            raise ValueError("max_pivots and block_size must be ≥ 1")

    def update_block(self, problem: Problem, W: Array, H: Array, state, model):
        return anls_update_H(problem, W, H, self.max_pivots, self.block_size), state, None
