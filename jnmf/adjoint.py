"""How ``solve`` is differentiated: an argument of the loop, as optimistix's ``adjoint=``.

* ``Unrolled()``: the loop runs exactly ``max_iter`` steps as a ``lax.scan`` (no early stop);
  reverse mode differentiates that truncated algorithm exactly (initialization included).
  With ``checkpoint=True`` the scan runs over chunks of k ≈ √max_iter steps, each under
  ``jax.checkpoint``: memory O(√max_iter) iterates for about one extra forward pass.
* ``Implicit()``: the forward pass is the ordinary ``lax.while_loop`` (never differentiated);
  a custom VJP differentiates the first-order conditions at the solution.  With x the free
  factors, θ the problem's arrays and any fixed factor, S = {x > ∇_x f} the support (at an
  exact KKT point S = {x > 0}, the rule min(x, ∇f) = 0 implies), x_{S^c} = 0 and
  (∇_x f)_S(x; θ) = 0, so for a cotangent x̄

      (∇²_xx f)_SS u = x̄_S,        θ̄ = −(∂_θ ∇_x f)ᵀ u        (u = 0 off S),

  solved matrix-free by conjugate gradients with Hessian-vector products from
  ``jax.linearize`` of ``optimality.gradients``.  The objective's cotangent adds ∂_θ f
  (envelope theorem).  Exact at a strict local minimum with strict complementarity; the
  forward solve should be converged (a warning says so when it is not).  The MU map is never
  the fixed-point equation: h = 0 is a fixed point of every multiplicative update.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.sparse.linalg import cg


class Unrolled(eqx.Module):
    """Differentiate ``max_iter`` solver steps (no early stop) by reverse mode through a scan.

    ``checkpoint=True`` (default) splits the steps into chunks of ``chunk`` steps
    (⌈√max_iter⌉ when None), each rematerialized in the backward pass.
    """

    checkpoint: bool = eqx.field(default=True, static=True)
    chunk: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        if self.chunk is not None and (isinstance(self.chunk, bool) or self.chunk < 1):
            raise ValueError(f"chunk must be an integer ≥ 1 or None, got {self.chunk!r}")

    def chunk_size(self, max_iter: int) -> int:
        """Steps per checkpointed chunk for a budget of ``max_iter`` steps."""
        k = self.chunk if self.chunk is not None else math.isqrt(max_iter - 1) + 1
        return max(1, min(int(k), max_iter))


class Implicit(eqx.Module):
    """Differentiate the solution through its KKT conditions on the support (module docstring).

    ``cg_tol``: relative residual tolerance of conjugate gradients on the restricted Hessian
    system (None: ε^(2/3) of the dtype); ``cg_maxiter`` caps its iterations (None: JAX's
    default, 10 × the system size).
    """

    cg_tol: float | None = eqx.field(default=None, static=True)
    cg_maxiter: int | None = eqx.field(default=None, static=True)


def kkt_adjoint(
    grad_fn: Callable[[Any, Any], Any],
    x: Any,
    theta: Any,
    x_bar: Any,
    *,
    cg_tol: float | None,
    cg_maxiter: int | None,
) -> Any:
    """θ̄ = −(∂_θ g)ᵀ u with (∂_x g)_SS u = x̄_S, where g = ``grad_fn(x, θ)`` = ∇_x f.

    ``x`` is a pytree of non-negative arrays at a KKT point of min_{x ≥ 0} f(x; θ), S its
    support {x > g}.  The operator applied by CG is the restricted Hessian on S and the
    identity off S (so it is symmetric, and positive definite at a strict local minimum);
    the right-hand side and u vanish off S.
    """
    g, hvp = jax.linearize(lambda x_: grad_fn(x_, theta), x)
    mask = jax.tree_util.tree_map(lambda xi, gi: xi > gi, x, g)

    def restrict(t):
        return jax.tree_util.tree_map(lambda m, ti: jnp.where(m, ti, 0.0), mask, t)

    def operator(v):
        hv = hvp(restrict(v))
        return jax.tree_util.tree_map(lambda m, a, b: jnp.where(m, a, b), mask, hv, v)

    b = restrict(x_bar)
    if cg_tol is None:
        dtype = jax.tree_util.tree_leaves(x)[0].dtype
        cg_tol = float(jnp.finfo(dtype).eps) ** (2 / 3)
    u, _ = cg(operator, b, tol=cg_tol, atol=0.0, maxiter=cg_maxiter)
    u = restrict(u)
    # differentiate the array leaves only: a Python float (a static β) must stay static
    dyn, static = eqx.partition(theta, eqx.is_array)
    _, vjp = jax.vjp(lambda d: grad_fn(x, eqx.combine(d, static)), dyn)
    (theta_bar,) = vjp(jax.tree_util.tree_map(jnp.negative, u))
    return theta_bar


__all__ = ["Implicit", "Unrolled", "kkt_adjoint"]
