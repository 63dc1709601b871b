"""Hierarchical alternating least squares for the Frobenius objective (β = 2).

One step of fast HALS (Cichocki & Phan 2009) updates the columns of W one after another,
then the rows of H.  With W fixed, G = WᵀW (r×r) and B = WᵀV (r×m) (``gram_products``, the
Frobenius gradient parts of ``optimality``: ∇_H D = G H − B), row t of H has the exact
coordinate minimizer of the penalized objective

    h_t ← max(0, h_t − (G_t H − B_t + l1_H + l2_H h_t) / (G_tt + l2_H)),

where G_t H uses the rows already updated in this sweep (Gauss-Seidel).  The max(0, ·) puts
exact zeros where the penalized gradient stays positive.  When G_tt + l2_H = 0 (column t of W
is zero) the objective is linear in h_t with slope l1_H ≥ 0: h_t is set to 0 if l1_H > 0 and
kept otherwise, so no 0/0 ever appears.  The W-update is the same on Vᵀ ≈ Hᵀ Wᵀ.  This is
scikit-learn's ``solver="cd"`` with ``shuffle=False`` (same order, same iterates).

With entry weights M the coordinate minimizer is

    h_tj ← max(0, (Σ_i M_ij W_it (R_ij + W_it h_tj) − l1_H) / (Σ_i M_ij W_it² + l2_H)),

with the residual R = V − WH kept up to date after each row, so each component costs O(nm)
and a sweep O(nmr) (instead of O(r²m) after the O(nmr) products without weights).

``AcceleratedHALS`` (Gillis & Glineur 2012) reuses G and B for several sweeps on the same
factor: at most ⌊1 + α ρ⌋ sweeps, with ρ = 1 + (nm + mr)/(n(r+1)) for W and
1 + (nm + nr)/(m(r+1)) for H (the cost of the products over the cost of a sweep), stopping
early once ‖X_{l+1} − X_l‖_F ≤ δ ‖X_1 − X_0‖_F.  Every sweep is a block coordinate descent
step, so the objective never increases in either solver.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from jnmf.optimality import gram_products
from jnmf.problem import Problem
from jnmf.solvers.base import AbstractAlternatingSolver


def _coordinate_minimizer(x: Array, grad: Array, hess: Array) -> Array:
    """argmin over x' ≥ 0 of grad·(x'−x) + ½ hess (x'−x)², with hess ≥ 0 (0 allowed)."""
    safe = jnp.where(hess > 0, hess, 1.0)
    return jnp.where(hess > 0, jnp.maximum(x - grad / safe, 0.0), jnp.where(grad > 0, 0.0, x))


def hals_sweep(G: Array, B: Array, H: Array, l1: Array, l2: Array) -> Array:
    """One Gauss-Seidel pass over the rows of H (r×m) for ½‖V − WH‖² + penalties.

    G = WᵀW (r×r), B = WᵀV (r×m); returns the new H.
    """

    def row(t, H):
        grad = G[t] @ H - B[t] + l1 + l2 * H[t]
        return H.at[t].set(_coordinate_minimizer(H[t], grad, G[t, t] + l2))

    return jax.lax.fori_loop(0, H.shape[0], row, H)


def hals_update_H(problem: Problem, W: Array, H: Array) -> Array:
    """One fast-HALS sweep over the rows of H with W fixed."""
    if problem.weights is not None:
        return weighted_hals_update_H(problem, W, H)
    G, B = gram_products(problem, W)
    return hals_sweep(G, B, H, problem.l1_H, problem.l2_H)


def weighted_hals_update_H(problem: Problem, W: Array, H: Array) -> Array:
    """One HALS sweep over the rows of H with entry weights M: O(nm) per row."""
    M = problem.weights
    R = problem.data() - W @ H
    l1, l2 = problem.l1_H, problem.l2_H

    def row(t, carry):
        H, R = carry
        w = W[:, t]
        h = H[t]
        MR = M * R
        # gradient of Σ M ½ R² + penalties in h_t, and its curvature, per column j
        grad = -(w @ MR) + l1 + l2 * h
        hess = (w * w) @ M + l2
        h_new = _coordinate_minimizer(h, grad, hess)
        R = R - jnp.outer(w, h_new - h)
        return H.at[t].set(h_new), R

    H, _ = jax.lax.fori_loop(0, H.shape[0], row, (H, R))
    return H


class HALS(AbstractAlternatingSolver):
    """Fast HALS (Cichocki & Phan 2009) for β = 2 with L1/L2 penalties and entry weights.

    Each step sweeps the columns of W, then the rows of H (scikit-learn's ``cd`` order).
    Without weights a step costs the products VHᵀ, WᵀV (2·nmr) plus O((n+m)r²); with
    weights each component costs O(nm), a step O(nmr) with a larger constant.
    """

    betas: ClassVar = (2.0,)

    def update_block(self, problem: Problem, W: Array, H: Array, state, model):
        return hals_update_H(problem, W, H), state, None


def inner_cap(alpha: float, n: int, m: int, r: int) -> int:
    """⌊1 + α ρ⌋ sweeps on H (r×m) with W (n×r): ρ = 1 + (nm + nr) / (m(r+1))."""
    rho = 1.0 + (n * m + n * r) / (m * (r + 1))
    return max(1, math.floor(1.0 + alpha * rho))


def accelerated_update_H(
    problem: Problem, W: Array, H: Array, alpha: float, delta, max_inner: int | None
) -> Array:
    """Repeated HALS sweeps on H reusing G = WᵀW and B = WᵀV (Gillis & Glineur's rule)."""
    n, m = problem.shape
    r = W.shape[1]
    cap = inner_cap(alpha, n, m, r)
    if max_inner is not None:
        cap = min(cap, max_inner)
    G, B = gram_products(problem, W)
    l1, l2 = problem.l1_H, problem.l2_H
    H1 = hals_sweep(G, B, H, l1, l2)
    first = jnp.sum((H1 - H) ** 2)
    threshold = delta**2 * first

    def cond(carry):
        k, _, change = carry
        return (k < cap) & (change > threshold)

    def body(carry):
        k, H, _ = carry
        H_new = hals_sweep(G, B, H, l1, l2)
        return k + 1, H_new, jnp.sum((H_new - H) ** 2)

    _, H, _ = jax.lax.while_loop(cond, body, (jnp.asarray(1), H1, first))
    return H


class AcceleratedHALS(AbstractAlternatingSolver):
    """Accelerated HALS (Gillis & Glineur 2012) for β = 2 with L1/L2 penalties.

    ``alpha`` sets the inner cap ⌊1 + α ρ⌋ (static; ρ from the shapes, see the module
    docstring), ``delta`` the early stop ‖X_{l+1} − X_l‖ ≤ δ‖X_1 − X_0‖; ``max_inner``
    (static) optionally lowers the cap.  The cap depends on the rank, so zero-padded
    components change the iterates (``padding_exact = False``).
    """

    betas: ClassVar = (2.0,)
    weights: ClassVar = False
    padding_exact: ClassVar = False

    alpha: float = eqx.field(default=0.5, static=True)
    delta: float = 0.1
    max_inner: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be ≥ 0, got {self.alpha}")
        if self.max_inner is not None and self.max_inner < 1:
            raise ValueError(f"max_inner must be ≥ 1 or None, got {self.max_inner}")

    def update_block(self, problem: Problem, W: Array, H: Array, state, model):
        H = accelerated_update_H(problem, W, H, self.alpha, self.delta, self.max_inner)
        return H, state, None
