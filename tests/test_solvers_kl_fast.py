"""The diagonalized Newton KL solver ("kl-dna") and the safeguarded steps of "kl-cd"."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jnmf
from jnmf.problem import Factors, make_problem, objective
from jnmf.solve import Status
from jnmf.solvers import SOLVERS, get_solver
from jnmf.solvers.kl_cd import KLCoordinateDescent
from jnmf.solvers.kl_dna import KLDiagonalNewton, _update_H
from jnmf.solvers.mu import mm_update_H

from .conftest import low_rank


def _history(sol):
    n = int(np.sum(np.isfinite(np.asarray(sol.history.objective))))
    return np.asarray(sol.history.objective)[:n]


def _assert_non_increasing(values, rtol=1e-12, atol=0.0):
    values = np.asarray(values)
    slack = rtol * np.abs(values[:-1]) + atol
    assert np.all(np.diff(values) <= slack), np.diff(values).max()


def _poisson(rng, n, m, r, mean=5.0):
    L = rng.gamma(1.0, 1.0, (n, r)) @ rng.gamma(1.0, 1.0, (r, m))
    return rng.poisson(L * mean / L.mean()).astype(float)


def test_registered():
    assert SOLVERS["kl-dna"] is KLDiagonalNewton
    assert isinstance(get_solver("kl-dna"), KLDiagonalNewton)


def _newton_reference(problem, W, H):
    """max(H − g/S, 0) with g = ∇_H f and S = diag ∇²_H f from autodiff, and f."""

    def f(Hx):
        return objective(problem, Factors(W, Hx))

    g = jax.grad(f)(H)
    S = jnp.diag(jax.hessian(f)(H).reshape(H.size, H.size)).reshape(H.shape)
    return jnp.maximum(H - g / S, 0.0), f


def test_newton_step_matches_autodiff(rng):
    """W with nearly disjoint columns: the Hessian is nearly diagonal, Newton is taken."""
    n, r, m = 15, 3, 9
    W = 0.01 * rng.uniform(size=(n, r))
    for k in range(r):
        W[5 * k : 5 * k + 5, k] += rng.uniform(0.5, 1.5, 5)
    H = rng.uniform(0.2, 1.0, (r, m))
    V = np.abs(W @ H + 0.01 * rng.standard_normal((n, m)))
    problem = make_problem(V, 1.0, l1_H=0.01, l2_H=0.1)
    W, H = jnp.asarray(W), jnp.asarray(H) * 1.2
    expected, f = _newton_reference(problem, W, H)
    H_new, Y_new = _update_H(problem, W, H, W @ H)
    np.testing.assert_allclose(H_new, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(Y_new, W @ H_new, rtol=1e-12)
    assert float(f(H_new)) < float(f(H))


def test_overshooting_columns_take_mu(rng):
    """Correlated columns of W: Jacobi-Newton overshoots in every column; MU is taken."""
    V, W, H = low_rank(rng, 14, 9, 3, noise=0.01)
    problem = make_problem(V, 1.0, l1_H=0.01, l2_H=0.1)
    W, H = jnp.asarray(W), jnp.asarray(H) * 1.01
    newton, f = _newton_reference(problem, W, H)
    for j in range(H.shape[1]):  # the premise: Newton raises f in each column
        assert float(f(H.at[:, j].set(newton[:, j]))) > float(f(H))
    H_new, _ = _update_H(problem, W, H, W @ H)
    H_mu = mm_update_H(problem, W, H, 0.0, 0.0, 30)
    np.testing.assert_allclose(H_new, H_mu, rtol=1e-12)
    assert float(f(H_new)) < float(f(H))


def test_falls_back_to_mu_and_never_increases(rng):
    """Far from a solution (a bad start) columns fall back to MU; f decreases every step."""
    V = _poisson(rng, 40, 30, 4)
    W0 = rng.uniform(0.0, 3.0, (40, 4))
    H0 = rng.uniform(0.0, 0.01, (4, 30))
    sol = jnmf.nmf(V, 4, beta=1.0, solver="kl-dna", init=(W0, H0), max_iter=300, every=1, tol=0.0)
    hist = _history(sol)
    assert len(hist) == 300
    _assert_non_increasing(np.concatenate([[float(sol.history.objective0)], hist]))
    assert hist[-1] < 0.5 * float(sol.history.objective0)


def test_same_fixed_point_as_mu_and_cd(rng):
    """Exact data: KL → 0; noisy data, same start: the same objective as MU and kl-cd."""
    V, _, _ = low_rank(rng, 12, 10, 2)
    W0, H0 = rng.uniform(0.1, 1.0, (12, 2)), rng.uniform(0.1, 1.0, (2, 10))
    total = V.sum()
    dna = jnmf.nmf(V, 2, beta=1.0, solver="kl-dna", init=(W0, H0), max_iter=500, every=1, tol=0.0)
    assert abs(float(dna.objective)) < 1e-10 * total
    _assert_non_increasing(_history(dna), atol=1e-14 * total)

    noisy = np.abs(V + 0.05 * rng.standard_normal(V.shape))
    dna = jnmf.nmf(
        noisy, 2, beta=1.0, solver="kl-dna", init=(W0, H0), max_iter=1000, every=1, tol=0.0
    )
    cd = jnmf.nmf(
        noisy, 2, beta=1.0, solver="kl-cd", init=(W0, H0), max_iter=2000, every=1, tol=0.0
    )
    mu = jnmf.nmf(noisy, 2, beta=1.0, solver="mu", init=(W0, H0), max_iter=20000, every=1, tol=0.0)
    assert float(dna.objective) == pytest.approx(float(mu.objective), rel=1e-8)
    assert float(dna.objective) == pytest.approx(float(cd.objective), rel=1e-8)
    _assert_non_increasing(_history(dna))
    # fewer iterations than MU for the same progress
    assert float(dna.history.objective[99]) < float(mu.history.objective[99])


def test_weights_penalties_and_zeros_reach_kkt(rng):
    V, _, _ = low_rank(rng, 15, 12, 2, noise=0.1)
    V[rng.uniform(size=V.shape) < 0.15] = 0.0
    weights = (rng.uniform(size=V.shape) > 0.2).astype(float)
    sol = jnmf.nmf(
        V,
        2,
        beta=1.0,
        solver="kl-dna",
        weights=weights,
        l1_H=0.01,
        l2_W=0.05,
        max_iter=3000,
        every=1,
        tol=0.0,
        kkt_tol=1e-7,
    )
    assert bool(sol.status == Status.CONVERGED)
    assert float(sol.history.kkt[int(sol.n_iter) - 1]) < 1e-6
    _assert_non_increasing(_history(sol), rtol=1e-10)


@pytest.mark.parametrize("solver", ["kl-dna", "kl-cd"])
def test_poisson_counts_float32(rng, solver):
    """Counts with many zeros, float32: finite, dtype kept, f non-increasing, near MU."""
    V = _poisson(rng, 60, 40, 5, mean=1.0).astype(np.float32)
    assert (V == 0).mean() > 0.2
    sol = jnmf.nmf(V, 5, beta=1.0, solver=solver, max_iter=200, every=1, tol=0.0, key=1)
    assert sol.W.dtype == jnp.float32 and sol.H.dtype == jnp.float32
    assert bool(sol.status == Status.MAX_ITER)
    hist = _history(sol)
    _assert_non_increasing(hist, rtol=1e-5)
    mu = jnmf.nmf(V, 5, beta=1.0, solver="mu", max_iter=200, every=1, tol=0.0, key=1)
    assert hist[-1] < 0.9 * hist[0]
    assert hist[-1] <= 1.01 * float(mu.objective)  # local minima may differ slightly


def test_kl_cd_left_steps_are_bounded(rng):
    """A kl-cd step never removes more than a quarter of an entry, and f decreases."""
    V = _poisson(rng, 30, 20, 3)
    problem = make_problem(V, 1.0)
    W0, H0 = rng.uniform(0.5, 2.0, (30, 3)), rng.uniform(0.5, 2.0, (3, 20))
    factors = Factors(jnp.asarray(W0), jnp.asarray(H0))
    new, _ = KLCoordinateDescent().step(problem.with_caches(), factors, (None, None))
    assert np.all(np.asarray(new.W) >= 0.75 * W0 - 1e-15)
    assert np.all(np.asarray(new.H) >= 0.75 * H0 - 1e-15)
    assert float(objective(problem, new)) < float(objective(problem, factors))


def test_rejects_other_beta(rng):
    V, _, _ = low_rank(rng, 8, 6, 2)
    with pytest.raises(ValueError, match="'mu'"):
        jnmf.nmf(V, 2, beta=2.0, solver="kl-dna")
    with pytest.raises(ValueError, match="'mu'"):
        jnmf.nmf(V, 2, beta=0.5, solver="kl-dna")
