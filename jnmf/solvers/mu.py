"""Multiplicative updates: the majorize-minimize algorithm of Févotte & Idier (2011).

For the H-update (W fixed; the W-update is the same on Vᵀ ≈ Hᵀ Wᵀ), write the divergence
gradient as P − N (``optimality.gradient_parts_H``), ρ = h_new / h, a = P + l1_H, c = l2_H·h.
The auxiliary function G(h | h̃) of Févotte & Idier majorizes D_β by Jensen's inequality on
its convex part and a tangent on its concave part.  Its gradient in h_k is

    β ∈ [1, 2]:  P ρ^(β−1) − N ρ^(β−2),    β < 1:  P − N ρ^(β−2),    β > 2:  P ρ^(β−1) − N,

and setting it to zero gives h ← h (N / P)^γ(β).  Penalties enter as follows.

* L1 (every β): l1·h is majorized by l1·h̃ (ρ^p − 1)/p + l1·h̃ with p = β for β ≥ 1
  (and is kept exact, linear, for β < 1); both put l1 into the "denominator": a = P + l1.
  This is scikit-learn's step, and it is an MM step for every β.
* L2, β ≥ 2: ½ l2 h² = ½ l2 h̃² ρ² ≤ ½ l2 h̃² ((2/β) ρ^β + 1 − 2/β); its gradient adds
  c ρ^(β−1), giving ρ = (N / (a + c))^γ: scikit-learn's step, an MM step here.
* L2, β < 2: that bound fails (ρ² is not below it), so we keep ½ l2 h² exact and minimize the
  auxiliary function exactly: ρ is the unique root of
      a ρ + c ρ^(3−β) = N   (1 ≤ β < 2; a quadratic at β = 1, solved in closed form),
      a ρ^(2−β) + c ρ^(3−β) = N   (β < 1),
  both increasing in ρ.  We solve by Newton's method on u = log ρ from the upper bound
  min((N/a)^(1/s), (N/c)^(1/t)); the map u ↦ log(a e^(su) + c e^(tu)) is convex, so Newton
  decreases monotonically to the root.  scikit-learn instead adds c to the denominator and
  takes the power γ, which is not an MM step for β < 2.

ε guards: inside P and N the model WH is replaced by max(WH, ``eps``) for β < 2 (as
scikit-learn does with float32's machine epsilon), so 0/0 never appears; where a = 0 the
entry is set to 0 as scikit-learn does.  ``floor`` > 0 returns max(h_new, floor), the exact
minimizer of the auxiliary function over h ≥ floor, which keeps the descent guarantee and
gives the convergence of Gillis & Glineur's ε-MU.  With positive data and factors neither
guard is active and the objective never increases.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jnmf.divergence import mm_exponent
from jnmf.optimality import gradient_parts_H
from jnmf.problem import Problem
from jnmf.solvers.base import AbstractAlternatingSolver

SKLEARN_EPS = float(np.finfo(np.float32).eps)


def _ratio(num: Array, den: Array) -> Array:
    """num / den with 0 where den = 0 (scikit-learn's convention for a zero denominator)."""
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)


def _root_newton(a, c, N, s, t, steps):
    """The root ρ > 0 of a ρ^s + c ρ^t = N (a, c, N ≥ 0, t > s ≥ 1), by Newton in log ρ."""
    tiny = jnp.finfo(N.dtype).tiny
    logN = jnp.log(jnp.maximum(N, tiny))
    la = jnp.log(jnp.maximum(a, tiny))
    lc = jnp.log(jnp.maximum(c, tiny))
    u = jnp.where(c > 0, jnp.minimum((logN - la) / s, (logN - lc) / t), (logN - la) / s)
    u = jnp.where(a > 0, u, (logN - lc) / t)

    def newton(_, u):
        # φ(u) = log(a e^{su} + c e^{tu}) − log N, evaluated stably in log space
        ea, ec = la + s * u, lc + t * u
        ea = jnp.where(a > 0, ea, -jnp.inf)
        ec = jnp.where(c > 0, ec, -jnp.inf)
        lse = jnp.logaddexp(ea, ec)
        wa = jnp.exp(ea - lse)
        slope = s * wa + t * (1.0 - wa)
        return u - (lse - logN) / slope

    u = jax.lax.fori_loop(0, steps, newton, u)
    return jnp.where((N > 0) & ((a > 0) | (c > 0)), jnp.exp(u), 0.0)


def _mm_power(rho: Array, gamma: float) -> Array:
    """ρ^γ for a static exponent γ(β): 1 and ½ (β = 0, 3) without XLA's general power."""
    if gamma == 1.0:
        return rho
    return jnp.sqrt(rho) if gamma == 0.5 else rho**gamma


def heuristic_ratio(P: Array, N: Array, l1: Array, l2: Array, X: Array) -> Array:
    """ρ = N / (P + l1 + l2 X): the heuristic exponent 1 for every β (not MM outside [1, 2])."""
    return _ratio(N, P + l1 + l2 * X)


def mm_ratio(beta, P: Array, N: Array, l1: Array, l2: Array, X: Array, newton_steps: int = 30):
    """ρ = X_new / X for the penalized MM step (module docstring): static or traced β."""
    a = P + l1
    c = l2 * X
    gamma = mm_exponent(beta)
    if isinstance(beta, float):
        if beta >= 2:
            return _mm_power(_ratio(N, a + c), gamma)
        plain = _mm_power(_ratio(N, a), gamma)
        if beta == 1.0:
            exact = 2.0 * N / jnp.where(a + N > 0, a + jnp.sqrt(a * a + 4.0 * c * N), 1.0)
            exact = jnp.where(a + c > 0, exact, 0.0)
        else:
            s, t = max(1.0, 2.0 - beta), 3.0 - beta
            exact = _root_newton(a, c, N, s, t, newton_steps)
        return jax.lax.cond(l2 > 0, lambda: exact, lambda: jnp.broadcast_to(plain, exact.shape))
    above = _ratio(N, a + c) ** gamma
    s = jnp.maximum(1.0, 2.0 - beta)
    t = 3.0 - beta
    below = _root_newton(a, c, N, s, t, newton_steps)
    return jnp.where(beta >= 2, above, below)


def mm_update_H(
    problem: Problem, W: Array, H: Array, eps, floor, newton_steps, exponent: str = "mm"
) -> Array:
    """One MM update of H with W fixed (``exponent="heuristic"``: the exponent-1 update)."""
    beta = problem.beta
    guard = None if (isinstance(beta, float) and beta >= 2) else eps
    P, N = gradient_parts_H(problem, W, H, guard)
    if exponent == "heuristic":
        ratio = heuristic_ratio(P, N, problem.l1_H, problem.l2_H, H)
    else:
        ratio = mm_ratio(beta, P, N, problem.l1_H, problem.l2_H, H, newton_steps)
    return jnp.maximum(H * ratio, floor)


class MultiplicativeUpdate(AbstractAlternatingSolver):
    """Majorize-minimize multiplicative updates for any β (Lee-Seung at β = 1, 2).

    Each step updates W then H (scikit-learn's order).  ``update_W=False`` holds W fixed
    (that is ``transform``); ``update_H=False`` holds H fixed.  See the module docstring for
    the auxiliary functions behind the penalized steps and the ε guards.

    ``exponent="heuristic"`` replaces γ(β) by 1 (h ← h N / (P + l1 + l2 h), the update used
    before Févotte & Idier 2011): identical to MM for β ∈ [1, 2] without L2 penalty, and not
    guaranteed to decrease the objective outside that range.
    """

    eps: float = SKLEARN_EPS
    floor: float = 0.0
    newton_steps: int = eqx.field(default=30, static=True)
    exponent: str = eqx.field(default="mm", static=True)

    def __check_init__(self):
        if self.exponent not in ("mm", "heuristic"):
            raise ValueError(f"exponent must be 'mm' or 'heuristic', got {self.exponent!r}")

    def update_block(self, problem: Problem, W: Array, H: Array, state, model):
        args = (self.eps, self.floor, self.newton_steps, self.exponent)
        return mm_update_H(problem, W, H, *args), state, None
