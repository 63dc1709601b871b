"""NeNMF (Guan, Tao, Luo & Yuan 2012): Nesterov's optimal gradient method on each factor.

With W fixed, the H-subproblem f(H) = ½‖V − WH‖² + l1_H ΣH + ½ l2_H‖H‖² has gradient
∇f(H) = G H − B with G = WᵀW + l2_H I and B = WᵀV − l1_H (``optimality.penalized_gram``),
which is L-Lipschitz with L = λ_max(G), bounded from above by ``lipschitz_bound``.
The optimal gradient method (OGM) runs, from Y₀ = H₀ and α₀ = 1,

    H_{k+1} = max(0, Y_k − ∇f(Y_k) / L),
    α_{k+1} = (1 + √(4α_k² + 1)) / 2,
    Y_{k+1} = H_{k+1} + (α_k − 1)/α_{k+1} · (H_{k+1} − H_k),

converging as O(1/k²).  ∇f is affine, so ∇f(Y_{k+1}) is the same combination of ∇f(H_{k+1})
and ∇f(H_k): one r×r by r×m product per inner iteration.  The inner loop stops when Lin's
projected gradient ‖∇^P f(H_k)‖_F (``optimality.projected_gradient``) falls below a
tolerance ε_H, or after ``max_inner`` (static) iterations.  As in NeNMF, ε_W = ε_H start at
``inner_tol`` times the projected-gradient norm at the initial factors, and a tolerance is
divided by 10 whenever its inner loop stops after at most one iteration.  The W-update is the
same on Vᵀ ≈ Hᵀ Wᵀ; each step updates W then H.

OGM is not a descent method: the objective usually decreases but is not guaranteed to.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from jnmf.optimality import gradients, penalized_gram, projected_gradient
from jnmf.problem import Factors, Problem
from jnmf.solvers.base import AbstractAlternatingSolver


def lipschitz_bound(G: Array, steps: int = 20) -> Array:
    """An upper bound on λ_max(G) for a symmetric G ≥ 0 (entrywise), tight at convergence.

    Collatz-Wielandt: λ_max(G) ≤ max_i (Gx)_i / x_i for every x > 0.  x comes from ``steps``
    power iterations with G + δI (δ > 0 keeps x > 0 even when G has zero rows).  No LAPACK
    call, so it batches cheaply; the bound is never below λ_max, so 1/L stays a safe step.
    """
    r = G.shape[0]
    delta = jnp.trace(G) / r * 1e-3 + jnp.finfo(G.dtype).tiny

    def power(_, x):
        y = G @ x + delta * x
        return y / jnp.max(y)

    x = jax.lax.fori_loop(0, steps, power, jnp.ones((r,), G.dtype))
    return jnp.max((G @ x) / x)


def ogm_update_H(problem: Problem, W: Array, H: Array, tol: Array, max_inner: int):
    """OGM on the H-subproblem; returns the new H and the number of inner iterations."""
    G, B = penalized_gram(problem, W)
    L = lipschitz_bound(G)
    inv_L = jnp.where(L > 0, 1.0 / jnp.where(L > 0, L, 1.0), 0.0)
    gH = G @ H - B

    def pg_norm(X, gX):
        return jnp.sqrt(jnp.sum(projected_gradient(X, gX) ** 2))

    def cond(carry):
        k, _, _, _, _, _, pg = carry
        return (k < max_inner) & (pg > tol)

    def body(carry):
        k, H, gH, Y, gY, alpha, _ = carry
        H_new = jnp.maximum(Y - inv_L * gY, 0.0)
        g_new = G @ H_new - B
        alpha_new = 0.5 * (1.0 + jnp.sqrt(4.0 * alpha * alpha + 1.0))
        c = (alpha - 1.0) / alpha_new
        Y = H_new + c * (H_new - H)
        gY = g_new + c * (g_new - gH)
        return k + 1, H_new, g_new, Y, gY, alpha_new, pg_norm(H_new, g_new)

    one = jnp.asarray(1.0, H.dtype)
    carry = (jnp.asarray(0), H, gH, H, gH, one, pg_norm(H, gH))
    k, H, _, _, _, _, _ = jax.lax.while_loop(cond, body, carry)
    return H, k


class Nesterov(AbstractAlternatingSolver):
    """NeNMF: alternating optimal gradient method for β = 2 with L1/L2 penalties.

    ``max_inner`` (static) caps the OGM iterations per subproblem; ``inner_tol`` sets the
    starting inner tolerance relative to the projected-gradient norm at the start.  The state
    of each block is its inner tolerance ε, divided by 10 when its OGM stops after ≤ 1 step.
    OGM is not a descent method (``monotone = False``).
    """

    betas: ClassVar = (2.0,)
    weights: ClassVar = False
    monotone: ClassVar = False

    max_inner: int = eqx.field(default=50, static=True)
    inner_tol: float = 1e-3

    def __check_init__(self):
        if self.max_inner < 1:
            raise ValueError(f"max_inner must be ≥ 1, got {self.max_inner}")

    def init(self, problem: Problem, factors: Factors):
        g = gradients(problem, factors)
        pg = projected_gradient(factors.W, g.W), projected_gradient(factors.H, g.H)
        tol = self.inner_tol * jnp.sqrt(jnp.sum(pg[0] ** 2) + jnp.sum(pg[1] ** 2))
        return tol, tol

    def update_block(self, problem: Problem, W: Array, H: Array, tol, model):
        H, k = ogm_update_H(problem, W, H, tol, self.max_inner)
        return H, jnp.where(k <= 1, tol / 10, tol), None
