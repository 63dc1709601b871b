import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.decomposition._nmf import _beta_divergence

from jnmf.divergence import BetaDivergence, beta_from_name, mm_exponent

BETAS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]


def _data(rng, beta):
    V = rng.uniform(0.0, 2.0, (7, 5))
    if beta > 0:
        V[rng.uniform(size=V.shape) < 0.3] = 0.0  # zeros are allowed for β > 0
    W = rng.uniform(0.2, 1.0, (7, 3))
    H = rng.uniform(0.2, 1.0, (3, 5))
    return V, W, H


@pytest.mark.parametrize("beta", BETAS)
def test_value_matches_sklearn(rng, beta):
    V, W, H = _data(rng, beta)
    ours = BetaDivergence(beta).value(jnp.asarray(V), jnp.asarray(W @ H))
    theirs = _beta_divergence(V, W, H, beta)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("beta", BETAS)
def test_traced_beta_matches_static(rng, beta):
    V, W, H = _data(rng, beta)
    x, y = jnp.asarray(V), jnp.asarray(W @ H)
    static = BetaDivergence(beta).value(x, y)
    traced = jax.jit(lambda b: BetaDivergence(b).value(x, y))(jnp.asarray(beta))
    np.testing.assert_allclose(traced, static, rtol=1e-12)
    ds = BetaDivergence(beta).derivative(x, y)
    dt = jax.jit(lambda b: BetaDivergence(b).derivative(x, y))(jnp.asarray(beta))
    np.testing.assert_allclose(dt, ds, rtol=1e-12)


@pytest.mark.parametrize("beta", BETAS)
def test_derivative_is_grad_of_value(rng, beta):
    V, W, H = _data(rng, beta)
    x, y = jnp.asarray(V), jnp.asarray(W @ H)
    div = BetaDivergence(beta)
    auto = jax.grad(lambda y: div.value(x, y))(y)
    np.testing.assert_allclose(div.derivative(x, y), auto, rtol=1e-10, atol=1e-12)
    pos, neg = div.derivative_parts(x, y)
    assert (np.asarray(pos) >= 0).all() and (np.asarray(neg) >= 0).all()


def test_vmap_and_grad_over_beta(rng):
    V, W, H = _data(rng, 1.0)
    x, y = jnp.asarray(V) + 0.1, jnp.asarray(W @ H)
    betas = jnp.array([0.5, 1.5, 2.0, 3.0])
    vals = jax.vmap(lambda b: BetaDivergence(b).value(x, y))(betas)
    expected = [BetaDivergence(float(b)).value(x, y) for b in betas]
    np.testing.assert_allclose(vals, expected, rtol=1e-12)
    g = jax.grad(lambda b: BetaDivergence(b).value(x, y))(1.7)
    h = 1e-6
    fd = (BetaDivergence(1.7 + h).value(x, y) - BetaDivergence(1.7 - h).value(x, y)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_zero_data_conventions():
    x = jnp.array([0.0, 0.0, 1.0])
    y = jnp.array([0.5, 2.0, 1.0])
    # d_1(0|y) = y; d_β(0|y) = y^β / β for β > 0
    np.testing.assert_allclose(BetaDivergence(1.0).elementwise(x, y), [0.5, 2.0, 0.0])
    np.testing.assert_allclose(
        BetaDivergence(0.5).elementwise(x, y), [0.5**0.5 / 0.5, 2.0**0.5 / 0.5, 0.0]
    )


def test_mm_exponent():
    assert mm_exponent(0.0) == 0.5 and mm_exponent(0.5) == pytest.approx(1 / 1.5)
    assert mm_exponent(1.0) == 1.0 and mm_exponent(2.0) == 1.0
    assert mm_exponent(3.0) == 0.5
    np.testing.assert_allclose(mm_exponent(jnp.array([0.0, 1.5, 4.0])), [0.5, 1.0, 1 / 3])


def test_names():
    assert beta_from_name("frobenius") == 2.0
    assert beta_from_name("kullback-leibler") == 1.0
    assert beta_from_name("itakura-saito") == 0.0
    with pytest.raises(ValueError, match="unknown beta"):
        beta_from_name("hellinger")


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 1.5])
def test_zero_model_where_data_positive_is_infinite(beta):
    x = jnp.array([2.0, 1.0])
    y = jnp.array([0.0, 1.0])
    d = np.asarray(BetaDivergence(beta).elementwise(x, y))
    if beta <= 1:
        assert d[0] == np.inf  # log(x/0) or x/0 blows up
    else:
        assert np.isfinite(d[0]) and d[0] > 0  # (x^β + 0 − 0)/(β(β−1)) stays finite
    assert d[1] == 0.0
    traced = np.asarray(jax.jit(lambda b: BetaDivergence(b).elementwise(x, y))(jnp.asarray(beta)))
    np.testing.assert_array_equal(traced, d)
