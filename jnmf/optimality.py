"""Gradients of the objective and the KKT residuals: the one place they are written.

With R = M ⊙ ∂d_β(V | WH)/∂(WH) (elementwise, M the entry weights),

    ∇_H f = Wᵀ R + l1_H + l2_H H,        ∇_W f = R Hᵀ + l1_W + l2_W W.

The divergence part splits into positive and negative parts (``gradient_parts_H``):
Wᵀ(M ⊙ (WH)^(β−1)) − Wᵀ(M ⊙ V ⊙ (WH)^(β−2)); multiplicative updates are their ratio.
Frobenius without weights uses the Gram form WᵀW H − WᵀV, which never forms WH.

First-order (KKT) conditions of min f over W, H ≥ 0 are X ≥ 0, ∇f ≥ 0, X ⊙ ∇f = 0, which
hold exactly when min(X, ∇_X f) = 0.  We report

    kkt = ‖min(W, ∇_W f)‖² + ‖min(H, ∇_H f)‖²            (squared; take √ and divide by the start)
    pg  = ‖∇^P_W f‖² + ‖∇^P_H f‖²,   ∇^P = ∇ where X > 0, min(0, ∇) where X = 0   (Lin 2007)
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from jnmf.problem import Factors, Problem, penalty


def gradient_parts_H(
    problem: Problem, W: Array, H: Array, floor: float | None = None
) -> tuple[Array, Array]:
    """(P, N) with ∇_H D = P − N, both ≥ 0 (penalties not included); shapes broadcast to r×m.

    ``floor`` > 0 replaces WH by max(WH, floor) inside the parts (never for β = 2, whose parts
    have no negative powers): the ε guard of multiplicative updates against 0 division.
    """
    div = problem.divergence
    M = problem.weights
    if M is None and div.is_static and div.beta == 2.0:
        return (W.T @ W) @ H, W.T @ problem.V
    WH = W @ H
    if floor is not None:
        WH = jnp.maximum(WH, floor)
    if M is None and div.is_static and div.beta == 1.0:
        _, neg = div.derivative_parts(problem.V, WH)
        return jnp.sum(W, axis=0)[:, None], W.T @ neg
    pos, neg = div.derivative_parts(problem.data(), WH)
    if M is not None:
        pos, neg = M * pos, M * neg
    return W.T @ pos, W.T @ neg


def gradient_parts_W(
    problem: Problem, W: Array, H: Array, floor: float | None = None
) -> tuple[Array, Array]:
    """(P, N) with ∇_W D = P − N, by symmetry: the H-parts of Vᵀ ≈ Hᵀ Wᵀ, transposed."""
    pos, neg = gradient_parts_H(problem.transpose(), H.T, W.T, floor)
    return pos.T, neg.T


def penalty_gradient(l1: Array, l2: Array, X: Array) -> Array:
    """∇ of l1‖X‖₁ + ½ l2‖X‖² on X ≥ 0."""
    return l1 + l2 * X


def gradients(problem: Problem, factors: Factors) -> Factors:
    """(∇_W f, ∇_H f) at ``factors``, forming WH once."""
    W, H = factors
    R = residual(problem, W @ H)
    gW = R @ H.T + penalty_gradient(problem.l1_W, problem.l2_W, W)
    gH = W.T @ R + penalty_gradient(problem.l1_H, problem.l2_H, H)
    return Factors(gW, gH)


def residual(problem: Problem, WH: Array) -> Array:
    """R = M ⊙ ∂d_β(V | WH)/∂(WH), zero where the weight is zero."""
    R = problem.divergence.derivative(problem.data(), WH)
    if problem.weights is not None:
        R = jnp.where(problem.weights > 0, problem.weights * R, 0.0)
    return R


def kkt_matrix(X: Array, G: Array) -> Array:
    """min(X, ∇f): zero exactly at a KKT point (X ≥ 0, ∇f ≥ 0, X ⊙ ∇f = 0)."""
    return jnp.minimum(X, G)


def projected_gradient(X: Array, G: Array) -> Array:
    """Lin's projected gradient: ∇f where X > 0, min(0, ∇f) where X = 0."""
    return jnp.where(X > 0, G, jnp.minimum(G, 0.0))


class Evaluation(NamedTuple):
    """Objective and squared stationarity measures at one point."""

    objective: Array
    kkt_sq: Array
    pg_sq: Array


def evaluate(problem: Problem, factors: Factors) -> Evaluation:
    """Objective, ‖min(X, ∇f)‖² and ‖∇^P f‖² over both factors, forming WH once."""
    W, H = factors
    WH = W @ H
    value = problem.divergence.value(problem.data(), WH, problem.weights) + penalty(problem, W, H)
    R = residual(problem, WH)
    gW = R @ H.T + penalty_gradient(problem.l1_W, problem.l2_W, W)
    gH = W.T @ R + penalty_gradient(problem.l1_H, problem.l2_H, H)
    kkt = jnp.sum(kkt_matrix(W, gW) ** 2) + jnp.sum(kkt_matrix(H, gH) ** 2)
    pg = jnp.sum(projected_gradient(W, gW) ** 2) + jnp.sum(projected_gradient(H, gH) ** 2)
    return Evaluation(value, kkt, pg)


def kkt_residual(problem: Problem, factors: Factors) -> Array:
    """‖min(W, ∇_W f)‖² + ‖min(H, ∇_H f)‖², square-rooted (absolute, not relative)."""
    return jnp.sqrt(evaluate(problem, factors).kkt_sq)
