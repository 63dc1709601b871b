"""Gradients of the objective and the KKT residuals: the one place they are written.

With R = M ⊙ ∂d_β(V | WH)/∂(WH) (elementwise, M the entry weights),

    ∇_H f = Wᵀ R + l1_H + l2_H H,        ∇_W f = R Hᵀ + l1_W + l2_W W.

The divergence part splits into positive and negative parts (``gradient_parts_H``):
Wᵀ(M ⊙ (WH)^(β−1)) − Wᵀ(M ⊙ V ⊙ (WH)^(β−2)); multiplicative updates are their ratio.
Frobenius without weights uses the Gram form WᵀW H − WᵀV, which never forms WH.

A sparse V (``Problem.is_sparse``) never forms WH either: WH is sampled at the stored
entries (``jnmf.sparse``) and the products with V are sparse–dense products.  At β = 1 the
positive part is the column sum of W; at β = 2 the Gram form holds as it is; for any other β
the positive part Wᵀ (WH)^(β−1) runs over every entry (V = 0 included) and is formed one
block of columns at a time (``sparse.dense_left``).

First-order (KKT) conditions of min f over W, H ≥ 0 are X ≥ 0, ∇f ≥ 0, X ⊙ ∇f = 0, which
hold exactly when min(X, ∇_X f) = 0.  We report

    kkt = ‖min(W, ∇_W f)‖² + ‖min(H, ∇_H f)‖²            (squared; take √ and divide by the start)
    pg  = ‖∇^P_W f‖² + ‖∇^P_H f‖²,   ∇^P = ∇ where X > 0, min(0, ∇) where X = 0   (Lin 2007)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from jnmf import sparse
from jnmf.divergence import kl_from_quotient
from jnmf.problem import Factors, Problem, divergence_value, penalty


def gradient_parts_H(
    problem: Problem, W: Array, H: Array, floor: float | None = None
) -> tuple[Array, Array]:
    """(P, N) with ∇_H D = P − N, both ≥ 0 (penalties not included); shapes broadcast to r×m.

    ``floor`` > 0 replaces WH by max(WH, floor) inside the parts (never for β = 2, whose parts
    have no negative powers): the ε guard of multiplicative updates against 0 division.
    A zero weight removes its entry before the product (``where``, never 0·∞).
    """
    div = problem.divergence
    M = problem.weights
    if problem.is_sparse:
        return _sparse_parts_H(problem, W, H, floor)
    if problem.is_quadratic:
        return (W.T @ W) @ H, W.T @ problem.V
    WH = W @ H
    if floor is not None:
        WH = jnp.maximum(WH, floor)
    if M is None and div.is_beta(1.0):
        _, neg = div.derivative_parts(problem.V, WH)
        return jnp.sum(W, axis=0)[:, None], W.T @ neg
    pos, neg = div.derivative_parts(problem.data(), WH)
    if M is not None:
        observed = M > 0
        pos = jnp.where(observed, M * jnp.where(observed, pos, 0.0), 0.0)
        neg = jnp.where(observed, M * jnp.where(observed, neg, 0.0), 0.0)
    return W.T @ pos, W.T @ neg


def _sparse_parts_H(problem: Problem, W: Array, H: Array, floor) -> tuple[Array, Array]:
    """``gradient_parts_H`` for a sparse V: WH only at the stored entries (module docstring)."""
    div = problem.divergence
    V = problem.V
    if problem.is_quadratic:
        return (W.T @ W) @ H, sparse.left_product(W, V, V.data)
    y = sparse.sampled_product(W, H, V)
    if floor is not None:
        y = jnp.maximum(y, floor)
    _, neg = div.derivative_parts(V.data, y)
    N = sparse.left_product(W, V, neg)
    if div.is_beta(1.0):
        return jnp.sum(W, axis=0)[:, None], N
    zero = jnp.zeros((), y.dtype)

    def positive(Y):
        Y = Y if floor is None else jnp.maximum(Y, floor)
        return div.derivative_parts(zero, Y)[0]

    return sparse.dense_left(W, H, positive), N


def gradient_parts_W(
    problem: Problem, W: Array, H: Array, floor: float | None = None
) -> tuple[Array, Array]:
    """(P, N) with ∇_W D = P − N, by symmetry: the H-parts of Vᵀ ≈ Hᵀ Wᵀ, transposed."""
    pos, neg = gradient_parts_H(problem.transpose(), H.T, W.T, floor)
    return pos.T, neg.T


def gram_products(problem: Problem, W: Array) -> tuple[Array, Array]:
    """(WᵀW, WᵀV), r×r and r×m, for the unweighted Frobenius objective.

    ∇_H D = WᵀW H − WᵀV is linear in H, so these are ``gradient_parts_H`` at H = I_r.
    """
    eye = jnp.eye(W.shape[1], dtype=W.dtype)
    return gradient_parts_H(problem, W, eye)


def penalized_gram(problem: Problem, W: Array) -> tuple[Array, Array]:
    """(G, B) = (WᵀW + l2_H I, WᵀV − l1_H): the H-subproblem is min_{H≥0} ½⟨H, GH⟩ − ⟨B, H⟩."""
    WtW, WtV = gram_products(problem, W)
    G = WtW + problem.l2_H * jnp.eye(W.shape[1], dtype=W.dtype)
    return G, WtV - problem.l1_H


def kl_curvature(neg: Array, Y: Array) -> Array:
    """∂²d_1/∂y² = x/y² from the negative part x/y of the KL derivative: neg / Y.

    Where Y = 0 it is +inf if the data term is there (neg ≠ 0), else 0.
    """
    inside = Y > 0
    curv = neg / jnp.where(inside, Y, 1.0)
    return jnp.where(inside, curv, jnp.where(neg != 0, jnp.inf, 0.0))


def penalty_gradient(l1: Array, l2: Array, X: Array) -> Array:
    """∇ of l1‖X‖₁ + ½ l2‖X‖² on X ≥ 0."""
    return l1 + l2 * X


def gradients(problem: Problem, factors: Factors) -> Factors:
    """(∇_W f, ∇_H f) at ``factors``, forming WH once (a sparse V: from the gradient parts)."""
    W, H = factors
    if problem.is_sparse:
        return _sparse_gradients(problem, W, H)
    R = residual(problem, W @ H)
    gW = R @ H.T + penalty_gradient(problem.l1_W, problem.l2_W, W)
    gH = W.T @ R + penalty_gradient(problem.l1_H, problem.l2_H, H)
    return Factors(gW, gH)


def _sparse_gradients(problem: Problem, W: Array, H: Array) -> Factors:
    PW, NW = gradient_parts_W(problem, W, H)
    PH, NH = gradient_parts_H(problem, W, H)
    gW = PW - NW + penalty_gradient(problem.l1_W, problem.l2_W, W)
    gH = PH - NH + penalty_gradient(problem.l1_H, problem.l2_H, H)
    return Factors(gW, gH)


def residual(problem: Problem, WH: Array) -> Array:
    """R = M ⊙ ∂d_β(V | WH)/∂(WH), zero where the weight is zero (a dense V only)."""
    R = problem.divergence.derivative(problem.data(), WH)
    if problem.weights is not None:
        observed = problem.weights > 0
        R = jnp.where(observed, problem.weights * jnp.where(observed, R, 0.0), 0.0)
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


def _measures(W, H, gW, gH) -> tuple[Array, Array]:
    kkt = jnp.sum(kkt_matrix(W, gW) ** 2) + jnp.sum(kkt_matrix(H, gH) ** 2)
    pg = jnp.sum(projected_gradient(W, gW) ** 2) + jnp.sum(projected_gradient(H, gH) ** 2)
    return kkt, pg


def _objective_direct(problem: Problem, W: Array, H: Array) -> Array:
    WH = W @ H
    return problem.divergence.value(problem.data(), WH, problem.weights) + penalty(problem, W, H)


def _evaluate_direct(problem: Problem, W: Array, H: Array) -> Evaluation:
    WH = W @ H
    value = problem.divergence.value(problem.data(), WH, problem.weights) + penalty(problem, W, H)
    R = residual(problem, WH)
    gW = R @ H.T + penalty_gradient(problem.l1_W, problem.l2_W, W)
    gH = W.T @ R + penalty_gradient(problem.l1_H, problem.l2_H, H)
    return Evaluation(value, *_measures(W, H, gW, gH))


# Below this many ε of ½‖V‖² the Gram-form objective has lost too many digits to cancellation
# (its absolute error is a few ε‖V‖²): 1e5 ε is 1.2e-2 in float32 and 2e-11 in float64.
GRAM_CANCELLATION = 1e5


def _evaluate_gram(problem: Problem, W: Array, H: Array) -> Evaluation:
    """Unweighted Frobenius without forming WH: two products with V and r×r Grams.

    f = ½‖V‖² − ⟨WᵀV, H⟩ + ½⟨WᵀW, HHᵀ⟩ + penalties, ∇_H f = WᵀW H − WᵀV + …,
    ∇_W f = W HHᵀ − VHᵀ + ….  The objective cancels when ‖V − WH‖² ≪ ‖V‖²: below
    ``GRAM_CANCELLATION`` ε · ½‖V‖² it is recomputed from the residual (``lax.cond``).
    """
    V = problem.V
    V_sq = jnp.sum(V * V) if problem.V_sq is None else problem.V_sq
    WtV = W.T @ V
    VHt = V @ H.T
    WtW, HHt = W.T @ W, H @ H.T
    data = 0.5 * V_sq - jnp.sum(WtV * H) + 0.5 * jnp.sum(WtW * HHt)
    gH = WtW @ H - WtV + penalty_gradient(problem.l1_H, problem.l2_H, H)
    gW = W @ HHt - VHt + penalty_gradient(problem.l1_W, problem.l2_W, W)
    kkt, pg = _measures(W, H, gW, gH)
    accurate = data > GRAM_CANCELLATION * jnp.finfo(V.dtype).eps * 0.5 * V_sq
    value = jax.lax.cond(
        accurate,
        lambda: data + penalty(problem, W, H),
        lambda: _objective_direct(problem, W, H),
    )
    return Evaluation(value, kkt, pg)


def _evaluate_kl(problem: Problem, W: Array, H: Array) -> Evaluation:
    """Unweighted KL with one quotient: Q = V / WH (0 where V = 0) serves the objective
    d = V log Q − V + WH and both gradients, ∇_H f = Wᵀ(1 − Q) = (Σ_i W_ik) − WᵀQ and
    ∇_W f = (1 − Q)Hᵀ = (Σ_j H_kj) − Q Hᵀ (plus penalties): one division and one logarithm
    per entry instead of the general path's two divisions.  V > 0 where WH = 0 gives
    Q = +∞, an infinite objective and a −∞ gradient, as the edge table says.
    """
    V = problem.V
    WH = W @ H
    observed = V > 0
    Q = jnp.where(observed, V / jnp.where(observed, WH, 1.0), 0.0)
    value = jnp.sum(kl_from_quotient(V, Q, WH)) + penalty(problem, W, H)
    gH = jnp.sum(W, axis=0)[:, None] - W.T @ Q
    gW = jnp.sum(H, axis=1)[None, :] - Q @ H.T
    gH = gH + penalty_gradient(problem.l1_H, problem.l2_H, H)
    gW = gW + penalty_gradient(problem.l1_W, problem.l2_W, W)
    return Evaluation(value, *_measures(W, H, gW, gH))


def _evaluate_sparse_kl(problem: Problem, W: Array, H: Array) -> Evaluation:
    """``_evaluate_kl`` for a sparse V: Q = V / WH at the stored entries only, and
    Σ_ij (WH)_ij = (Σ_i W_i·)·(Σ_j H_·j)."""
    V = problem.V
    v = V.data
    y = sparse.sampled_product(W, H, V)
    observed = v > 0
    q = jnp.where(observed, v / jnp.where(observed, y, 1.0), 0.0)
    col_W, row_H = jnp.sum(W, axis=0), jnp.sum(H, axis=1)
    value = jnp.sum(kl_from_quotient(v, q, y) - y) + col_W @ row_H + penalty(problem, W, H)
    gH = col_W[:, None] - sparse.left_product(W, V, q)
    gW = row_H[None, :] - sparse.right_product(V, q, H)
    gH = gH + penalty_gradient(problem.l1_H, problem.l2_H, H)
    gW = gW + penalty_gradient(problem.l1_W, problem.l2_W, W)
    return Evaluation(value, *_measures(W, H, gW, gH))


def _evaluate_sparse(problem: Problem, W: Array, H: Array) -> Evaluation:
    """Objective and measures for a sparse V (``sparse.divergence_value``, gradients from the
    parts); unweighted KL shares one quotient (``_evaluate_sparse_kl``)."""
    if problem.divergence.is_beta(1.0):
        return _evaluate_sparse_kl(problem, W, H)
    value = divergence_value(problem, W, H) + penalty(problem, W, H)
    gW, gH = _sparse_gradients(problem, W, H)
    return Evaluation(value, *_measures(W, H, gW, gH))


def evaluate(problem: Problem, factors: Factors) -> Evaluation:
    """Objective, ‖min(X, ∇f)‖² and ‖∇^P f‖² over both factors.

    Unweighted Frobenius uses the Gram form (``_evaluate_gram``: no n×m temporary, about the
    cost of one multiplicative update); unweighted KL shares one quotient V / WH between
    the objective and the gradients (``_evaluate_kl``); every other problem forms WH once.
    A sparse V forms WH only at its stored entries (``_evaluate_sparse``).
    """
    W, H = factors
    if problem.is_sparse:
        return _evaluate_sparse(problem, W, H)
    if problem.is_quadratic:
        return _evaluate_gram(problem, W, H)
    if problem.weights is None and problem.divergence.is_beta(1.0):
        return _evaluate_kl(problem, W, H)
    return _evaluate_direct(problem, W, H)


def kkt_residual(problem: Problem, factors: Factors) -> Array:
    """‖min(W, ∇_W f)‖² + ‖min(H, ∇_H f)‖², square-rooted (absolute, not relative)."""
    return jnp.sqrt(evaluate(problem, factors).kkt_sq)
