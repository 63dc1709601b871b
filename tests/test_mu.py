import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.decomposition import non_negative_factorization

import jnmf
from jnmf.optimality import gradients
from jnmf.problem import Factors, make_problem
from jnmf.solvers.mu import mm_ratio

from .conftest import low_rank


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0, 3.0])
def test_iterates_match_sklearn(rng, beta):
    V, _, _ = low_rank(rng, 30, 20, 4, noise=0.05, offset=0.01)
    W0 = rng.uniform(0.1, 1.0, (30, 4))
    H0 = rng.uniform(0.1, 1.0, (4, 20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W_sk, H_sk, n_iter = non_negative_factorization(
            V,
            W=W0.copy(),
            H=H0.copy(),
            n_components=4,
            init="custom",
            solver="mu",
            beta_loss=beta,
            tol=0,
            max_iter=100,
        )
    assert n_iter == 100
    sol = jnmf.nmf(V, 4, beta=beta, init=(W0, H0), max_iter=100, every=1, tol=0.0)
    assert int(sol.n_iter) == 100
    np.testing.assert_allclose(sol.W, W_sk, rtol=1e-6)
    np.testing.assert_allclose(sol.H, H_sk, rtol=1e-6)


@pytest.mark.parametrize("beta", [2.0, 3.0])
def test_penalized_iterates_match_sklearn_for_beta_ge_2(rng, beta):
    """For β ≥ 2 scikit-learn's L1 and L2 steps are MM steps, and ours coincide with them."""
    V, _, _ = low_rank(rng, 25, 15, 3, noise=0.05)
    W0 = rng.uniform(0.1, 1.0, (25, 3))
    H0 = rng.uniform(0.1, 1.0, (3, 15))
    alpha, l1_ratio = 0.01, 0.4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W_sk, H_sk, _ = non_negative_factorization(
            V,
            W=W0.copy(),
            H=H0.copy(),
            n_components=3,
            init="custom",
            solver="mu",
            beta_loss=beta,
            tol=0,
            max_iter=50,
            alpha_W=alpha,
            l1_ratio=l1_ratio,
        )
    n_samples, n_features = V.shape
    sol = jnmf.nmf(
        V,
        3,
        beta=beta,
        init=(W0, H0),
        max_iter=50,
        every=1,
        tol=0.0,
        l1_W=n_features * alpha * l1_ratio,
        l2_W=n_features * alpha * (1 - l1_ratio),
        l1_H=n_samples * alpha * l1_ratio,
        l2_H=n_samples * alpha * (1 - l1_ratio),
    )
    np.testing.assert_allclose(sol.W, W_sk, rtol=1e-6)
    np.testing.assert_allclose(sol.H, H_sk, rtol=1e-6)


PENALTIES = [
    dict(),
    dict(l1_W=0.3, l1_H=0.2),
    dict(l2_W=0.5, l2_H=0.7),
    dict(l1_W=0.1, l1_H=0.1, l2_W=2.0, l2_H=1.0),
]


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
@pytest.mark.parametrize("pen", range(len(PENALTIES)))
def test_objective_never_increases(beta, pen):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        V, _, _ = low_rank(rng, 20, 15, 3, noise=0.2, offset=0.05)
        sol = jnmf.nmf(V, 4, beta=beta, max_iter=500, every=1, tol=0.0, key=seed, **PENALTIES[pen])
        n = int(sol.n_iter)
        obj = np.concatenate([[sol.history.objective0], np.asarray(sol.history.objective)[:n]])
        assert n == 500 and np.isfinite(obj).all()
        increase = np.diff(obj) / np.abs(obj[:-1])
        assert increase.max() <= 1e-13, (beta, pen, seed, increase.max())


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 1.5])
def test_l2_step_solves_auxiliary_stationarity(rng, beta):
    """The exact L2 step for β < 2 zeroes the auxiliary gradient (module docstring)."""
    P = jnp.asarray(rng.uniform(0.1, 2.0, (4, 6)))
    N = jnp.asarray(rng.uniform(0.1, 2.0, (4, 6)))
    X = jnp.asarray(rng.uniform(0.1, 2.0, (4, 6)))
    l1, l2 = jnp.asarray(0.3), jnp.asarray(0.8)
    rho = mm_ratio(beta, P, N, l1, l2, X)
    a, c = P + l1, l2 * X
    if beta >= 1:
        g = a * rho ** (beta - 1) - N * rho ** (beta - 2) + c * rho
    else:
        g = a - N * rho ** (beta - 2) + c * rho
    np.testing.assert_allclose(g, 0.0, atol=1e-10)
    traced = mm_ratio(jnp.asarray(beta), P, N, l1, l2, X)
    np.testing.assert_allclose(traced, rho, rtol=1e-10)


def test_converges_to_kkt_point(rng):
    V, _, _ = low_rank(rng, 30, 25, 3)
    sol = jnmf.nmf(V, 3, beta=1.0, max_iter=3000, every=1, tol=0.0, kkt_tol=1e-7)
    assert bool(sol.status == jnmf.Status.CONVERGED)
    assert float(sol.history.kkt[int(sol.n_iter) - 1]) <= 1e-7


def test_fixed_W_is_transform(rng):
    V, W, H = low_rank(rng, 20, 12, 3)
    problem = make_problem(V, 1.0)
    H0 = jnp.full((3, 12), 0.5)
    sol = jnmf.solve(
        problem,
        jnmf.MultiplicativeUpdate(update_W=False),
        Factors(jnp.asarray(W), H0),
        max_iter=2000,
        every=1,
        tol=0.0,
    )
    np.testing.assert_array_equal(sol.W, W)
    np.testing.assert_allclose(sol.H, H, rtol=1e-5)
    g = gradients(problem, sol.factors).H
    assert float(jnp.abs(jnp.minimum(sol.H, g)).max()) < 1e-6


def test_vmap_over_traced_beta_matches_static_solves(rng):
    import jax

    V, _, _ = low_rank(rng, 15, 12, 3, noise=0.1, offset=0.05)
    f0 = Factors(
        jnp.asarray(rng.uniform(0.2, 1, (15, 3))), jnp.asarray(rng.uniform(0.2, 1, (3, 12)))
    )
    betas = jnp.array([0.5, 1.0, 1.5, 2.5])

    def run(beta):
        problem = make_problem(jnp.asarray(V), beta, l2_H=0.3)
        return jnmf.solve(problem, jnmf.MultiplicativeUpdate(), f0, max_iter=60, every=1, tol=0.0).W

    batched = jax.jit(jax.vmap(run))(betas)
    for b, Wb in zip(betas, batched, strict=True):
        np.testing.assert_allclose(Wb, run(float(b)), rtol=1e-9)
