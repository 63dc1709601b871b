"""``NMFLayer``, an equinox module with a learnable non-negative dictionary, and
hyperparameter gradients through ``encode`` (``holdout_loss``, ``tune_l1``)."""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from jnmf.adjoint import Implicit, Unrolled
from jnmf.divergence import BetaDivergence
from jnmf.nn.encode import check_dictionary, encode
from jnmf.problem import as_float_array


def _divergence(beta) -> BetaDivergence:
    """``BetaDivergence(beta)`` built at trace time (its Python checks stay in Python)."""
    with jax.ensure_compile_time_eval():
        return BetaDivergence(beta)


def _inverse_softplus(x: Array) -> Array:
    """log(eˣ − 1), the inverse of softplus, for x > 0."""
    return x + jnp.log(-jnp.expm1(-x))


class NMFLayer(eqx.Module):
    """A learnable non-negative dictionary W (n×r) and the code h*(v) = encode(v, W).

    Called on one sample v (n,) it returns h* (r,), like ``equinox.nn`` layers; batch with
    ``jax.vmap(layer)(X)`` for X (batch×n).

    Non-negativity is kept by a parameterization, W = softplus(Θ) (then each column scaled to
    unit ℓ2 norm when ``normalize``), not by a projection: the layer then composes with any
    optax optimizer and any training loop unchanged (a projection must be added to every
    update, and a projected atom that reaches exactly 0 is a fixed point of multiplicative
    updates and gets no gradient through the codes).  The price is that W is never exactly
    sparse.  Normalizing the atoms removes the scale ambiguity W D, D⁻¹h, without which an L1
    penalty on h could be defeated by growing W (Mairal et al. 2012 constrain ‖w_k‖₂ ≤ 1).

    ``l1``, ``l2`` are ordinary fields (Python floats are treated as static by
    ``eqx.filter_jit``; pass arrays to trace or learn them); ``beta``, ``solver``,
    ``max_iter`` and ``gradient`` are static.
    """

    theta: Array
    l1: float | Array
    l2: float | Array
    tol: float | Array
    beta: float = eqx.field(static=True)
    solver: str = eqx.field(static=True)
    max_iter: int = eqx.field(static=True)
    gradient: Unrolled | Implicit = eqx.field(static=True)
    normalize: bool = eqx.field(static=True)

    def __init__(
        self,
        n_features: int,
        n_atoms: int,
        *,
        key: Array | None = None,
        W=None,
        beta: float = 2.0,
        l1=0.0,
        l2=0.0,
        solver: str = "mu",
        max_iter: int = 200,
        tol=1e-7,
        gradient: Unrolled | Implicit | None = None,
        normalize: bool = True,
        dtype=None,
    ):
        if W is None:
            if key is None:
                raise ValueError("NMFLayer needs a PRNG `key` (or an initial dictionary `W`)")
            dtype = jnp.result_type(float) if dtype is None else dtype
            W = jax.random.uniform(key, (n_features, n_atoms), dtype, 0.1, 1.0)
        else:
            W = as_float_array(W, "W")
            if W.shape != (n_features, n_atoms):
                raise ValueError(f"W must be {(n_features, n_atoms)}, got {tuple(W.shape)}")
            check_dictionary(W, n_features)
            W = W.astype(W.dtype if dtype is None else dtype)
        floor = 1e-6 * jnp.max(W) if W.size else 1.0
        self.theta = _inverse_softplus(jnp.maximum(W, floor))
        self.l1, self.l2, self.tol = l1, l2, tol
        self.beta = float(_divergence(beta).beta)
        self.solver = solver
        self.max_iter = max_iter
        self.gradient = Implicit() if gradient is None else gradient
        self.normalize = normalize

    @property
    def W(self) -> Array:
        """The dictionary, softplus(Θ), columns of unit ℓ2 norm when ``normalize``."""
        W = jax.nn.softplus(self.theta)
        if self.normalize:
            W = W / jnp.linalg.norm(W, axis=0, keepdims=True)
        return W

    def __call__(self, v: Array, *, key: Array | None = None) -> Array:
        """The code h* (r,) of one sample v (n,) (or H* (r×m) of columns V (n×m))."""
        return encode(
            v,
            self.W,
            beta=self.beta,
            l1=self.l1,
            l2=self.l2,
            solver=self.solver,
            max_iter=self.max_iter,
            tol=self.tol,
            gradient=self.gradient,
        )


# ---------------------------------------------------------------------------------------------
# hyperparameter gradients


def holdout_loss(
    l1,
    V_obs,
    W_obs,
    V_held,
    W_held,
    *,
    beta=2.0,
    l2=0.0,
    **encode_kwargs,
) -> Array:
    """Held-out reconstruction error D_β(V_held‖W_held H*) / size, H* = encode(V_obs, W_obs, l1).

    The rows of V (features) are split into observed (V_obs, W_obs) and held-out (V_held,
    W_held) parts; the code is fitted on the observed rows and judged on the others.
    Differentiable in ``l1`` (and the arrays) through ``encode``'s gradient mode.
    """
    H = encode(V_obs, W_obs, beta=beta, l1=l1, l2=l2, **encode_kwargs)
    V_held = jnp.asarray(V_held)
    return _divergence(beta).value(V_held, W_held @ H) / V_held.size


class L1Path(NamedTuple):
    """``tune_l1``'s trajectory: l1 and the held-out loss before each step (and at the end)."""

    l1: Array
    loss: Array


def tune_l1(
    V_obs,
    W_obs,
    V_held,
    W_held,
    *,
    l1_init: float = 1e-3,
    steps: int = 20,
    learning_rate: float = 0.2,
    **loss_kwargs,
) -> L1Path:
    """Gradient descent with Adam on log l1 to minimize ``holdout_loss``; one jit'd scan.

    Optimizing log l1 keeps l1 > 0.  Returns ``steps + 1`` values of l1 and of the loss.
    """
    import optax

    if not l1_init > 0:
        raise ValueError(f"l1_init must be > 0 (we optimize log l1), got {l1_init}")
    V_obs, W_obs = as_float_array(V_obs, "V_obs"), as_float_array(W_obs, "W_obs")
    V_held, W_held = as_float_array(V_held, "V_held"), as_float_array(W_held, "W_held")
    opt = optax.adam(learning_rate)

    def loss(log_l1):
        return holdout_loss(jnp.exp(log_l1), V_obs, W_obs, V_held, W_held, **loss_kwargs)

    value_and_grad = jax.value_and_grad(loss)

    @jax.jit
    def run(log_l1):
        def step(carry, _):
            x, state = carry
            value, g = value_and_grad(x)
            updates, state = opt.update(g, state)
            return (optax.apply_updates(x, updates), state), (jnp.exp(x), value)

        (x, _), (l1s, values) = jax.lax.scan(step, (log_l1, opt.init(log_l1)), None, length=steps)
        return jnp.append(l1s, jnp.exp(x)), jnp.append(values, loss(x))

    l1s, values = run(jnp.log(jnp.asarray(l1_init, V_obs.dtype)))
    return L1Path(l1s, values)


__all__ = ["L1Path", "NMFLayer", "holdout_loss", "tune_l1"]
