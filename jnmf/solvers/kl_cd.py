"""Cyclic coordinate descent with Newton steps for the generalized KL divergence (β = 1).

Hsieh & Dhillon (2011), "Fast coordinate descent methods with variable selection for
non-negative matrix factorization", Section 4.  With W fixed, the entries of one row k of H
are independent given the rest of the model, so the update of row k is vectorized over the
columns j: with Y = WH (kept up to date as entries change), w = W[:, k] and
R = M ⊙ ∂d_1(V | Y)/∂Y (``divergence.derivative_parts``, M the entry weights),

    g_j = Σ_i w_i R_ij + l1_H + l2_H h_j,       s_j = Σ_i w_i² M_ij V_ij / Y_ij² + l2_H,

(the second derivative of d_1 in y is V/y², the negative gradient part divided by y) and a
projected Newton step h_j ← max(h_j − g_j / s_j, 0) follows, with Y updated by the rank-one
change w (h_new − h)ᵀ.  ``newton_steps`` such steps are taken per row.  Each 1-D function
has a concave derivative (f''' ≤ 0), so its curvature decreases as h_j grows.  A step to the
right (g_j ≤ 0) therefore never overshoots and decreases f.  A step to the left can overshoot;
it is kept only when the quadratic bound with the curvature at its end point, the largest on
the step, proves a decrease (g δ + ½ s(h + δ) δ² ≤ 0, which fails when the step makes some
Y_ij ≤ 0 < V_ij).  Otherwise the coordinate takes the multiplicative (majorize-minimize)
step of ``mu.mm_ratio``, which also decreases f.  So the objective never increases.

Rows k = 1..r are swept in order by ``lax.fori_loop``; W is updated the same way on
Vᵀ ≈ Hᵀ Wᵀ, before H (scikit-learn's order).  Y = WH is formed once per step.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from jnmf.optimality import penalty_gradient
from jnmf.problem import Factors, Problem
from jnmf.solvers.base import AbstractSolver
from jnmf.solvers.mu import mm_ratio


def _sweep_H(problem: Problem, W: Array, H: Array, Y: Array, newton_steps: int):
    """One cyclic pass of Newton coordinate descent over the rows of H; returns (H, Y = WH)."""
    div = problem.divergence
    X = problem.data()
    M = problem.weights
    l1, l2 = problem.l1_H, problem.l2_H

    def weighted(A):
        return A if M is None else M * A

    def curvature(neg, Y):
        """M ⊙ V / Y² (= neg / Y), +inf where Y ≤ 0 < V."""
        inside = neg / jnp.where(Y > 0, Y, 1.0)
        return weighted(jnp.where(Y > 0, inside, jnp.where(neg != 0, jnp.inf, 0.0)))

    def row(k, carry):
        H, Y = carry
        w = W[:, k]
        w2 = w * w

        def newton(_, c):
            h, Y = c
            pos, neg = div.derivative_parts(X, Y)
            P, N = w @ weighted(pos), w @ weighted(neg)
            g = P - N + penalty_gradient(l1, l2, h)
            s = w2 @ curvature(neg, Y) + l2
            step = jnp.where(s > 0, -g / jnp.where(s > 0, s, 1.0), jnp.where(g > 0, -h, 0.0))
            delta = jnp.maximum(h + step, 0.0) - h
            # moving left, the curvature at the new point bounds it on the whole step
            Y_try = Y + jnp.outer(w, delta)
            _, neg_try = div.derivative_parts(X, Y_try)
            s_try = w2 @ curvature(neg_try, Y_try) + l2
            safe = (delta >= 0) | (g * delta + 0.5 * s_try * delta * delta <= 0.0)
            h_mm = h * mm_ratio(1.0, P, N, l1, l2, h)
            h_new = jnp.where(safe, h + delta, h_mm)
            return h_new, Y + jnp.outer(w, h_new - h)

        h, Y = jax.lax.fori_loop(0, newton_steps, newton, (H[k], Y))
        return H.at[k].set(h), Y

    return jax.lax.fori_loop(0, H.shape[0], row, (H, Y))


class KLCoordinateDescent(AbstractSolver):
    """Hsieh & Dhillon's cyclic coordinate descent with Newton steps, for β = 1 only.

    Supports L1/L2 penalties and entry weights.  Each step sweeps the columns of W, then the
    rows of H, ``newton_steps`` projected Newton steps per coordinate.
    """

    newton_steps: int = eqx.field(default=1, static=True)

    def __check_init__(self):
        if self.newton_steps < 1:
            raise ValueError(f"newton_steps must be ≥ 1, got {self.newton_steps}")

    def check(self, problem: Problem) -> None:
        beta = problem.beta
        if not (isinstance(beta, float) and beta == 1.0):
            raise ValueError(
                f"solver 'kl-cd' handles only the generalized KL divergence (beta=1, given as a "
                f"Python number), got beta={beta!r}; use solver='mu' or 'projected-gradient' "
                "for other beta"
            )

    def init(self, problem: Problem, factors: Factors) -> None:
        return None

    def step(self, problem: Problem, factors: Factors, state: None) -> tuple[Factors, None]:
        W, H = factors
        Y = W @ H
        Wt, Yt = _sweep_H(problem.transpose(), H.T, W.T, Y.T, self.newton_steps)
        W = Wt.T
        H, _ = _sweep_H(problem, W, H, Yt.T, self.newton_steps)
        return Factors(W, H), state
