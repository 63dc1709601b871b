"""Masked (weighted) fits: missing entries are ignored and can be imputed."""

import jax.numpy as jnp
import numpy as np
import pytest

import jnmf
from jnmf.problem import Factors, make_problem, objective


def test_objective_counts_only_observed_entries(rng):
    V = rng.uniform(0.5, 2.0, (7, 5))
    M = (rng.uniform(size=V.shape) > 0.3).astype(float)
    W, H = rng.uniform(0.1, 1.0, (7, 2)), rng.uniform(0.1, 1.0, (2, 5))
    WH = W @ H
    kl = V * np.log(V / WH) - V + WH
    V_nan = np.where(M > 0, V, np.nan)
    got = objective(make_problem(V_nan, 1.0, weights=M), Factors(jnp.asarray(W), jnp.asarray(H)))
    np.testing.assert_allclose(got, np.sum(M * kl), rtol=1e-12)


@pytest.mark.parametrize("beta", [2.0, 1.0])
def test_zero_weight_entries_are_irrelevant(rng, beta):
    """Changing V where the weight is 0 (to another value, or to NaN) changes nothing."""
    V = rng.uniform(0.2, 1.0, (20, 4)) @ rng.uniform(0.2, 1.0, (4, 15))
    M = (rng.uniform(size=V.shape) > 0.25).astype(float)
    hidden = M == 0
    W0 = rng.uniform(0.1, 1.0, (20, 4))
    H0 = rng.uniform(0.1, 1.0, (4, 15))
    kw = dict(beta=beta, init=(W0, H0), weights=M, max_iter=150, tol=0.0, every=10)
    ref = jnmf.nmf(V, 4, **kw)
    for fill in (np.nan, 1e6, 0.0):
        sol = jnmf.nmf(np.where(hidden, fill, V), 4, **kw)
        np.testing.assert_allclose(sol.W, ref.W, rtol=1e-12, atol=0)
        np.testing.assert_allclose(sol.H, ref.H, rtol=1e-12, atol=0)
        np.testing.assert_allclose(sol.objective, ref.objective, rtol=1e-12)
        assert np.isfinite(np.asarray(sol.history.objective)).all()


def test_nan_without_zero_weight_is_an_error(rng):
    V = rng.uniform(0.2, 1.0, (6, 5))
    V[2, 3] = np.nan
    M = np.ones_like(V)
    with pytest.raises(ValueError, match="NaN"):
        jnmf.nmf(V, 2, weights=M)
    M[2, 3] = 0.0
    jnmf.nmf(V, 2, weights=M, max_iter=2, every=1)  # NaN under a zero weight is fine
    V[1, 1] = np.nan
    with pytest.raises(ValueError, match="1 NaN"):
        jnmf.nmf(V, 2, weights=M)


def test_hidden_entries_recovered_to_noise_level(rng):
    """30% of a noisy rank-5 matrix hidden: the fit predicts them within the noise level."""
    n, m, r = 80, 60, 5
    W = rng.uniform(0.0, 1.0, (n, r))
    H = rng.uniform(0.0, 1.0, (r, m))
    V0 = W @ H
    sigma = 0.05 * V0.std()
    V = np.abs(V0 + sigma * rng.standard_normal(V0.shape))
    hidden = rng.uniform(size=V.shape) < 0.3
    M = (~hidden).astype(float)
    sol = jnmf.nmf(
        np.where(hidden, np.nan, V),
        r,
        beta=2.0,
        weights=M,
        n_restarts=4,
        max_iter=3000,
        tol=1e-9,
        every=10,
        key=1,
    )
    WH = np.asarray(sol.W @ sol.H)
    err_true = np.sqrt(np.mean((WH - V0)[hidden] ** 2))
    err_noisy = np.sqrt(np.mean((WH - V)[hidden] ** 2))
    fit_seen = np.sqrt(np.mean((WH - V)[~hidden] ** 2))
    # hidden entries are predicted closer to the clean value than the noise (measured:
    # 0.62 sigma), and against their noisy values within the noise level (1.18 sigma)
    assert err_true < sigma, (err_true, sigma)
    assert err_noisy < 1.25 * sigma, (err_noisy, sigma)
    assert fit_seen < sigma
