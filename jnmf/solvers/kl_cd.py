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
has a concave derivative, so Newton from the left of the minimizer climbs to it without
overshoot, while a first step from the right can overshoot; two safeguards keep the
objective finite and non-increasing:

* a step that would make some Y_ij ≤ 0 where V_ij > 0 (infinite objective) is replaced by
  h_j ← h_j / 2 (the 1-D minimizer then lies in (0, h_j));
* after the Newton steps, a column whose 1-D objective went up returns to its start.

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


def _column_sum(M: Array | None, X: Array) -> Array:
    """Σ_i M_ij X_ij (M = 1 when None)."""
    return jnp.sum(X if M is None else M * X, axis=0)


def _sweep_H(problem: Problem, W: Array, H: Array, Y: Array, newton_steps: int):
    """One cyclic pass of Newton coordinate descent over the rows of H; returns (H, Y = WH)."""
    div = problem.divergence
    X = problem.data()
    M = problem.weights
    needs_positive = X > 0 if M is None else (X > 0) & (M > 0)
    l1, l2 = problem.l1_H, problem.l2_H

    def row(k, carry):
        H, Y = carry
        w = W[:, k]
        h0 = H[k]

        def newton(_, c):
            h, Y = c
            pos, neg = div.derivative_parts(X, Y)
            curv = jnp.where(Y > 0, neg / jnp.where(Y > 0, Y, 1.0), 0.0)
            g = w @ (pos - neg if M is None else M * (pos - neg)) + penalty_gradient(l1, l2, h)
            s = (w * w) @ (curv if M is None else M * curv) + l2
            newton_h = jnp.maximum(h - g / jnp.where(s > 0, s, 1.0), 0.0)
            target = jnp.where(s > 0, newton_h, jnp.where(g > 0, 0.0, h))
            Y_new = Y + jnp.outer(w, target - h)
            finite = jnp.all((Y_new > 0) | ~needs_positive, axis=0)
            target = jnp.where(finite, target, 0.5 * h)
            return target, Y + jnp.outer(w, target - h)

        h, Y_new = jax.lax.fori_loop(0, newton_steps, newton, (h0, Y))
        before = _column_sum(M, div.elementwise(X, Y))
        after = _column_sum(M, div.elementwise(X, Y_new))
        pen = l1 * (h - h0) + 0.5 * l2 * (h * h - h0 * h0)
        better = after - before + pen <= 0.0
        h = jnp.where(better, h, h0)
        Y = jnp.where(better[None, :], Y_new, Y)
        return H.at[k].set(h), Y

    return jax.lax.fori_loop(0, H.shape[0], row, (H, Y))


class KLCoordinateDescent(AbstractSolver):
    """Hsieh & Dhillon's cyclic coordinate descent with Newton steps, for β = 1 only.

    Supports L1/L2 penalties and entry weights.  Each step sweeps the columns of W, then the
    rows of H, ``newton_steps`` projected Newton steps per coordinate.
    """

    newton_steps: int = eqx.field(default=2, static=True)

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
