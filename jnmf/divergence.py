"""The β-divergence family: elementwise value, its derivative in the model WH, and γ(β).

For x ≥ 0 (data) and y > 0 (model),

    d_β(x | y) = (x^β + (β−1) y^β − β x y^(β−1)) / (β (β−1))     β ∉ {0, 1}
    d_1(x | y) = x log(x / y) − x + y                               generalized KL
    d_0(x | y) = x / y − log(x / y) − 1                             Itakura-Saito

and d_2(x | y) = ½ (x − y)², so that D_2(V‖WH) = ½‖V − WH‖_F².  The convention
0·log 0 = 0 (and 0 · y^(β−1) = 0) makes every β > 0 finite at x = 0.

The derivative in y splits into a positive and a negative part,

    ∂d_β/∂y = y^(β−1) − x y^(β−2) = positive − negative,

which is the split that multiplicative updates, HALS and the KKT residual all use.

Edges (the one table; ``derivative_parts`` and ``derivative`` implement it, tests check it
against the limits of the formula).  For y = 0 the parts are limits y → 0⁺:

    | β         | y^(β−1) at y=0 | x y^(β−2) at y=0, x>0 | at x=0 | ∂d/∂y at y=0, x>0 |
    |-----------|----------------|-----------------------|--------|-------------------|
    | β < 1     | +inf           | +inf                  | 0      | −inf              |
    | β = 1     | 1              | +inf                  | 0      | −inf              |
    | 1 < β < 2 | 0              | +inf                  | 0      | −inf              |
    | β = 2     | 0              | x                     | 0      | −x                |
    | β > 2     | 0              | 0                     | 0      | 0                 |

and at x = y = 0 the derivative is pos (0 for β > 1, 1 at β = 1, +inf for β < 1).  A zero
entry weight removes a term before it is formed (``jnp.where``, never 0·∞).

When ``beta`` is a Python number the β = 0, 1, 2 special cases compile to their own short
code.  When ``beta`` is a JAX array (traced under ``vmap``/``grad``), one general path covers
every β, selecting the β = 0 and β = 1 limits with ``jnp.where``; differentiating in β
exactly at β ∈ {0, 1} then returns the derivative of the limit formula (zero).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from jnmf.checks import check_beta

BETA_NAMES = {
    "frobenius": 2.0,
    "euclidean": 2.0,
    "kullback-leibler": 1.0,
    "kl": 1.0,
    "itakura-saito": 0.0,
    "is": 0.0,
}


def beta_from_name(beta) -> float | Array:
    """A β given as a name, a Python or NumPy real or a 0-d array, as a float or JAX scalar.

    Names and numbers become Python floats (static: the β = 0, 1, 2 fast paths); a JAX
    0-d array is kept (traced: one can ``vmap`` or ``grad`` over β).  ``check_beta`` refuses
    bools, NaN, ±inf and arrays with dimensions.
    """
    if isinstance(beta, str):
        key = beta.lower().replace("_", "-")
        if key not in BETA_NAMES:
            raise ValueError(
                f"unknown beta {beta!r}: use a real number or one of {sorted(set(BETA_NAMES))}"
            )
        return BETA_NAMES[key]
    return check_beta(beta)


def mm_exponent(beta) -> float | Array:
    """γ(β) of Févotte & Idier (2011): 1/(2−β) for β<1, 1/(β−1) for β>2, else 1."""
    if isinstance(beta, float):
        if beta < 1:
            return 1.0 / (2.0 - beta)
        if beta > 2:
            return 1.0 / (beta - 1.0)
        return 1.0
    return jnp.where(beta < 1, 1.0 / (2.0 - beta), jnp.where(beta > 2, 1.0 / (beta - 1.0), 1.0))


def _safe_pos(y):
    """y with non-positive entries replaced by 1, for use inside ``jnp.where``."""
    return jnp.where(y > 0, y, jnp.ones_like(y))


class BetaDivergence(eqx.Module):
    """d_β(x | y) summed over entries; ``beta`` is static when a Python float.

    Methods take the data ``x`` and the model ``y`` (= WH) elementwise.
    """

    beta: float | Array

    def __init__(self, beta):
        self.beta = beta_from_name(beta)

    @property
    def is_static(self) -> bool:
        return isinstance(self.beta, float)

    def is_beta(self, value: float) -> bool:
        """β is the Python number ``value`` (a static special case; False when traced)."""
        return self.is_static and self.beta == value

    @property
    def gamma(self):
        """The MM exponent γ(β)."""
        return mm_exponent(self.beta)

    def elementwise(self, x: Array, y: Array) -> Array:
        """d_β(x | y) for each entry, with 0·log 0 = 0."""
        b = self.beta
        if self.is_static:
            if b == 2.0:
                return 0.5 * (x - y) ** 2
            if b == 1.0:
                return _kl(x, y)
            if b == 0.0:
                return _is(x, y)
            return _general(x, y, b)
        b = jnp.asarray(b, dtype=y.dtype)
        safe_b = jnp.where((b == 0) | (b == 1), 0.5, b)
        return jnp.where(b == 1, _kl(x, y), jnp.where(b == 0, _is(x, y), _general(x, y, safe_b)))

    def value(self, x: Array, y: Array, weights: Array | None = None) -> Array:
        """D_β(x‖y) = Σ_ij m_ij d_β(x_ij | y_ij) (m = 1 when ``weights`` is None)."""
        if weights is None:
            return jnp.sum(self.elementwise(x, y))
        # a zero-weight entry is evaluated at x = y (d = 0, zero gradient): safe under grad
        observed = weights > 0
        d = self.elementwise(jnp.where(observed, x, y), y)
        return jnp.sum(jnp.where(observed, weights * d, 0.0))

    def derivative_parts(self, x: Array, y: Array) -> tuple[Array, Array]:
        """(y^(β−1), x y^(β−2)): ∂d_β/∂y = first − second, elementwise.

        Where x = 0 the second part is exactly 0 (even if y = 0).
        """
        b = self.beta
        if self.is_static and b == 2.0:
            return y, x
        if self.is_static and b == 1.0:
            return jnp.ones_like(y), jnp.where(x > 0, x / jnp.where(x > 0, y, 1.0), 0.0)
        ys = _safe_pos(y)
        pos = jnp.where(y > 0, _power(ys, b - 1.0), _zero_power(y, b - 1.0))
        neg = jnp.where(x > 0, x * _power(ys, b - 2.0), 0.0)
        # y = 0 < x: x·0^(β−2) is +inf for β < 2, x at β = 2 and 0 for β > 2 (edge table)
        # (held constant for reverse mode: its unselected inf must never meet a zero cotangent)
        edge = jax.lax.stop_gradient(jnp.where(x > 0, _safe_pos(x) * _zero_power(y, b - 2.0), 0.0))
        neg = jnp.where((x > 0) & (y <= 0), edge, neg)
        return pos, neg

    def derivative(self, x: Array, y: Array) -> Array:
        """∂d_β(x | y)/∂y elementwise; at y = 0 the limit of the edge table (never inf − inf)."""
        pos, neg = self.derivative_parts(x, y)
        both_inf = jnp.isinf(pos) & jnp.isinf(neg)
        return jnp.where(both_inf, -jnp.inf, pos - jnp.where(both_inf, 0.0, neg))


def _power(y, p):
    """y^p for y > 0: by multiplications when p is a whole Python number (β = 0, 3, …: XLA's
    general power is an exp and a log per entry), else the general power."""
    if isinstance(p, float) and p.is_integer() and abs(p) <= 4:
        return y ** int(p)
    return y**p


def _zero_power(y, p):
    """0^p: 0 for p > 0, 1 for p = 0, +inf for p < 0."""
    p = jnp.asarray(p, dtype=y.dtype)
    return jnp.where(p > 0, 0.0, jnp.where(p == 0, 1.0, jnp.inf)).astype(y.dtype)


def kl_from_quotient(x, q, y):
    """d_KL(x | y) = x log q − x + y given the quotient q = x / y (used where x > 0 only)."""
    return jnp.where(x > 0, x * jnp.log(jnp.where(x > 0, q, 1.0)), 0.0) - x + y


def _kl(x, y):
    d = kl_from_quotient(x, x / _safe_pos(y), y)
    return jnp.where((x > 0) & (y <= 0), jnp.inf, d)


def _is(x, y):
    ratio = jnp.where((x > 0) & (y > 0), x / _safe_pos(y), 1.0)
    return jnp.where((x > 0) & (y > 0), ratio - jnp.log(ratio) - 1.0, jnp.inf)


def _general(x, y, b):
    ys = _safe_pos(y)
    cross = jnp.where(x > 0, x * ys ** (b - 1.0), 0.0)
    cross = jnp.where((x > 0) & (y <= 0), _zero_power(y, b - 1.0), cross)  # β ≠ 1 here
    xb = jnp.where(x > 0, _safe_pos(x) ** b, _zero_power(x, b))
    yb = jnp.where(y > 0, ys**b, _zero_power(y, b))
    return (xb + (b - 1.0) * yb - b * cross) / (b * (b - 1.0))
