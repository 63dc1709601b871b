"""Projected gradient (Lin, optax), KL coordinate descent and Hoyer's sparse NMF."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jnmf
from jnmf.batch import restart_keys
from jnmf.init import initialize
from jnmf.problem import make_problem, objective
from jnmf.solve import Status, solve
from jnmf.solvers import SOLVERS, get_solver
from jnmf.solvers.hoyer import SparseHoyer, project_norms, project_sparseness, sparseness
from jnmf.solvers.kl_cd import KLCoordinateDescent
from jnmf.solvers.pgd import OptaxProjectedGradient, ProjectedGradient

from .conftest import low_rank


def _rel_error(V, sol):
    return np.linalg.norm(V - np.asarray(sol.W) @ np.asarray(sol.H)) / np.linalg.norm(V)


def _history(sol):
    n = int(np.sum(np.isfinite(np.asarray(sol.history.objective))))
    return np.asarray(sol.history.objective)[:n]


def _assert_non_increasing(values, rtol=1e-12, atol=0.0):
    values = np.asarray(values)
    slack = rtol * np.abs(values[:-1]) + atol
    assert np.all(np.diff(values) <= slack), np.diff(values).max()


def test_names_registered():
    assert SOLVERS["projected-gradient"] is ProjectedGradient
    assert SOLVERS["optax-pg"] is OptaxProjectedGradient
    assert SOLVERS["kl-cd"] is KLCoordinateDescent
    assert SOLVERS["sparse-hoyer"] is SparseHoyer
    assert isinstance(get_solver("kl-cd"), KLCoordinateDescent)


# ---------------------------------------------------------------- projected gradient (Lin)


@pytest.mark.parametrize("shape", [(30, 20, 3), (16, 24, 2)])
def test_projected_gradient_solves_exact_factorization(rng, shape):
    n, m, r = shape
    V, _, _ = low_rank(rng, n, m, r)
    sol = jnmf.nmf(V, r, solver="projected-gradient", max_iter=1500, every=1, tol=0.0, kkt_tol=1e-7)
    k = int(sol.n_iter)
    assert bool(sol.status == Status.CONVERGED) and k < 1500
    assert _rel_error(V, sol) < 1e-6
    assert float(sol.history.kkt[k - 1]) < 1e-6
    _assert_non_increasing(_history(sol))


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_projected_gradient_other_betas_monotone(rng, beta):
    V, _, _ = low_rank(rng, 20, 15, 3, noise=0.05, offset=0.05)
    sol = jnmf.nmf(V, 3, beta=beta, solver="projected-gradient", max_iter=50, every=1, tol=0.0)
    hist = _history(sol)
    assert bool(sol.status == Status.MAX_ITER) and len(hist) == 50
    _assert_non_increasing(hist)
    assert hist[-1] < 0.05 * float(sol.history.objective0)
    # a projected gradient point of Lin's method is close to stationary
    assert float(sol.history.kkt[-1]) < 1e-2


def test_projected_gradient_weights_and_penalties(rng):
    """Missing entries (NaN, weight 0) are ignored; the fit of the rest is near-exact."""
    V, _, _ = low_rank(rng, 20, 15, 2)
    weights = (rng.uniform(size=V.shape) > 0.2).astype(float)
    V_missing = np.where(weights > 0, V, np.nan)
    sol = jnmf.nmf(
        V_missing,
        2,
        weights=weights,
        solver="projected-gradient",
        max_iter=400,
        every=1,
        tol=0.0,
        kkt_tol=1e-7,
    )
    assert np.all(np.isfinite(sol.W)) and np.all(np.isfinite(sol.H))
    _assert_non_increasing(_history(sol))
    fit = np.asarray(sol.W) @ np.asarray(sol.H)
    obs = weights > 0
    assert np.linalg.norm((fit - V)[obs]) / np.linalg.norm(V[obs]) < 1e-5
    # penalties: converges to a KKT point of the penalized objective
    pen = jnmf.nmf(
        V,
        2,
        solver="projected-gradient",
        l1_H=0.05,
        l2_W=0.1,
        max_iter=1500,
        every=1,
        tol=0.0,
        kkt_tol=1e-7,
    )
    assert float(pen.history.kkt[int(pen.n_iter) - 1]) < 1e-6


def _loop_of_single_solves(problem, solver, key, n_restarts, rank, max_iter):
    single = eqx.filter_jit(solve)
    objectives = []
    for k in restart_keys(key, n_restarts):
        factors = initialize(k, problem, rank, "random")
        sol = single(problem, solver, factors, max_iter=max_iter, every=1, tol=0.0)
        objectives.append(float(sol.objective))
    return np.array(objectives)


@pytest.mark.parametrize(
    "solver, beta",
    [(ProjectedGradient(), 2.0), (OptaxProjectedGradient(), 1.0), (KLCoordinateDescent(), 1.0)],
)
def test_vmap_over_restarts_equals_loop(rng, solver, beta):
    V, _, _ = low_rank(rng, 12, 10, 2, noise=0.05, offset=0.05)
    args = dict(beta=beta, solver=solver, n_restarts=3, max_iter=15, every=1, tol=0.0, key=3)
    batched = jnmf.nmf(V, 2, **args)
    every = jnmf.nmf(V, 2, return_restarts=True, **args)
    problem = make_problem(V, beta)
    looped = _loop_of_single_solves(problem, solver, 3, 3, 2, 15)
    np.testing.assert_allclose(np.asarray(every.objective), looped, rtol=1e-9)
    assert float(batched.objective) == pytest.approx(looped.min(), rel=1e-9)


# ---------------------------------------------------------------- optax variant


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_optax_projected_gradient_decreases_objective(rng, beta):
    V, _, _ = low_rank(rng, 25, 20, 4, noise=0.05, offset=0.05)
    sol = jnmf.nmf(V, 4, beta=beta, solver="optax-pg", max_iter=300, every=1, tol=0.0)
    assert bool(sol.status == Status.MAX_ITER)
    assert np.all(np.asarray(sol.W) >= 0) and np.all(np.asarray(sol.H) >= 0)
    assert float(sol.objective) < 0.02 * float(sol.history.objective0)


def test_optax_custom_transformation_alternating_with_weights(rng):
    V, _, _ = low_rank(rng, 20, 15, 3, offset=0.05)
    weights = (rng.uniform(size=V.shape) > 0.3).astype(float)
    solver = OptaxProjectedGradient(
        optimizer=optax.chain(optax.clip_by_global_norm(10.0), optax.adam(0.02)),
        alternating=True,
    )
    sol = jnmf.nmf(V, 3, beta=1.0, weights=weights, solver=solver, max_iter=300, every=1, tol=0.0)
    problem = make_problem(V, 1.0, weights=weights)
    assert float(objective(problem, sol.factors)) == pytest.approx(float(sol.objective))
    assert float(sol.objective) < 0.02 * float(sol.history.objective0)


# ---------------------------------------------------------------- KL coordinate descent


def test_kl_cd_matches_mu_objective(rng):
    """Exact data: both reach KL = 0; noisy data, same start: the same KL objective."""
    V, _, _ = low_rank(rng, 12, 10, 2)
    W0, H0 = rng.uniform(0.1, 1.0, (12, 2)), rng.uniform(0.1, 1.0, (2, 10))
    total = V.sum()
    cd = jnmf.nmf(V, 2, beta=1.0, solver="kl-cd", init=(W0, H0), max_iter=2000, every=1, tol=0.0)
    mu = jnmf.nmf(V, 2, beta=1.0, solver="mu", init=(W0, H0), max_iter=20000, every=1, tol=0.0)
    assert abs(float(cd.objective)) < 1e-10 * total
    assert abs(float(mu.objective)) < 1e-10 * total
    assert abs(float(cd.objective) - float(mu.objective)) < 1e-8 * total
    _assert_non_increasing(_history(cd), atol=1e-14 * total)  # rounding around f = 0

    noisy = np.abs(V + 0.05 * rng.standard_normal(V.shape))
    cd = jnmf.nmf(
        noisy, 2, beta=1.0, solver="kl-cd", init=(W0, H0), max_iter=2000, every=1, tol=0.0
    )
    mu = jnmf.nmf(noisy, 2, beta=1.0, solver="mu", init=(W0, H0), max_iter=20000, every=1, tol=0.0)
    assert float(cd.objective) == pytest.approx(float(mu.objective), rel=1e-8)
    _assert_non_increasing(_history(cd))
    # kl-cd gets there much sooner than MU
    assert float(cd.history.objective[99]) < float(mu.history.objective[99])


def test_kl_cd_weights_penalties_and_zeros(rng):
    """A KKT point of the weighted, penalized KL problem, with zeros in V."""
    V, _, _ = low_rank(rng, 15, 12, 2, noise=0.1)
    V[rng.uniform(size=V.shape) < 0.15] = 0.0
    weights = (rng.uniform(size=V.shape) > 0.2).astype(float)
    sol = jnmf.nmf(
        V,
        2,
        beta=1.0,
        solver="kl-cd",
        weights=weights,
        l1_H=0.01,
        l2_W=0.05,
        max_iter=1500,
        every=1,
        tol=0.0,
        kkt_tol=1e-7,
    )
    assert bool(sol.status == Status.CONVERGED)
    assert float(sol.history.kkt[int(sol.n_iter) - 1]) < 1e-6
    _assert_non_increasing(_history(sol), rtol=1e-10)


# ---------------------------------------------------------------- Hoyer sparseness


def test_sparseness_measure():
    assert float(sparseness(jnp.ones(7))) == pytest.approx(0.0, abs=1e-15)
    assert float(sparseness(jnp.array([0.0, 3.0, 0.0, 0.0]))) == pytest.approx(1.0)
    x = jnp.array([1.0, 2.0, 0.0])
    expected = (math.sqrt(3) - 3 / math.sqrt(5)) / (math.sqrt(3) - 1)
    assert float(sparseness(x)) == pytest.approx(expected, rel=1e-14)
    assert np.asarray(sparseness(jnp.ones((3, 5)), axis=0)).shape == (5,)
    with pytest.raises(ValueError, match="length"):
        sparseness(jnp.ones(1))


@pytest.mark.parametrize("n", [2, 3, 10, 64, 300])
def test_projection_reaches_target_sparseness(rng, n):
    X = rng.standard_normal((100, n)) * rng.uniform(0.1, 10.0, (100, 1))
    targets = rng.uniform(0.0, 1.0, 100)
    targets[:3] = [0.0, 1.0, 0.999]
    l2 = rng.uniform(0.5, 3.0, 100)
    Y = np.asarray(jax.jit(jax.vmap(project_sparseness))(X, targets, l2))
    assert np.all(Y >= 0)
    np.testing.assert_allclose(np.asarray(sparseness(Y)), targets, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(Y, axis=1), l2, rtol=1e-12)


def test_projection_is_closest_point(rng):
    """n = 3: the feasible set is arcs of a circle; a fine scan finds nothing closer."""
    center_dir = np.ones(3) / math.sqrt(3)
    u = np.array([1.0, -1.0, 0.0]) / math.sqrt(2)
    v = np.cross(center_dir, u)
    t = np.linspace(0, 2 * np.pi, 200001)
    for _ in range(20):
        x = rng.standard_normal(3)
        l1, l2 = rng.uniform(1.05, 1.7), 1.0
        y = np.asarray(project_norms(jnp.asarray(x), l1, l2))
        radius = math.sqrt(l2**2 - l1**2 / 3)
        circle = (l1 / 3) * np.ones(3) + radius * (np.cos(t)[:, None] * u + np.sin(t)[:, None] * v)
        feasible = circle[np.all(circle >= 0, axis=1)]
        best = np.min(np.linalg.norm(feasible - x, axis=1))
        assert np.linalg.norm(y - x) <= best + 1e-8
        # a feasible point is its own projection
        np.testing.assert_allclose(project_norms(jnp.asarray(y), l1, l2), y, atol=1e-12)
    with pytest.raises(ValueError, match="L1 norm"):
        project_norms(jnp.ones(3), 2.0, 1.0)


@pytest.mark.parametrize("targets", [(0.6, None), (None, 0.5), (0.4, 0.7)])
def test_sparse_hoyer_meets_targets(rng, targets):
    s_W, s_H = targets
    V, _, _ = low_rank(rng, 30, 20, 3, noise=0.02)
    solver = SparseHoyer(sparseness_W=s_W, sparseness_H=s_H)
    sol = jnmf.nmf(V, 3, solver=solver, max_iter=150, every=1, tol=0.0)
    W, H = np.asarray(sol.W), np.asarray(sol.H)
    assert np.all(W >= 0) and np.all(H >= 0)
    np.testing.assert_allclose(np.linalg.norm(H, axis=1), 1.0, rtol=1e-12)
    if s_W is not None:
        np.testing.assert_allclose(np.asarray(sparseness(W, axis=0)), s_W, atol=1e-8)
    if s_H is not None:
        np.testing.assert_allclose(np.asarray(sparseness(H, axis=1)), s_H, atol=1e-8)
    hist = _history(sol)
    # the first step moves the start onto the constraint set; from there f never increases
    _assert_non_increasing(hist)
    assert hist[-1] < 0.9 * hist[0]


# ---------------------------------------------------------------- errors and float32


def test_bad_beta_or_penalty_names_solvers_that_can(rng):
    V, _, _ = low_rank(rng, 8, 6, 2)
    with pytest.raises(ValueError, match="'mu'"):
        jnmf.nmf(V, 2, beta=2.0, solver="kl-cd")
    with pytest.raises(ValueError, match="'mu'"):
        jnmf.nmf(V, 2, beta=0.5, solver="kl-cd")
    with pytest.raises(ValueError, match="projected-gradient"):
        jnmf.nmf(V, 2, beta=1.0, solver="sparse-hoyer")
    with pytest.raises(ValueError, match="projected-gradient"):
        jnmf.nmf(V, 2, solver=SparseHoyer(sparseness_H=0.5), l1_H=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SparseHoyer(sparseness_W=1.5)
    with pytest.raises(ValueError, match="sigma"):
        ProjectedGradient(sigma=2.0)


@pytest.mark.slow
def test_float32_digits_no_nan():
    datasets = pytest.importorskip("sklearn.datasets")
    V = datasets.load_digits().data.T.astype(np.float32)  # 64 × 1797, many zeros
    cases = [
        ("projected-gradient", 2.0),
        ("projected-gradient", 1.0),
        (OptaxProjectedGradient(), 1.0),
        ("kl-cd", 1.0),
        (SparseHoyer(sparseness_W=0.5, sparseness_H=0.3), 2.0),
    ]
    for solver, beta in cases:
        sol = jnmf.nmf(V, 10, beta=beta, solver=solver, max_iter=30, every=1, tol=0.0)
        assert sol.W.dtype == jnp.float32 and sol.H.dtype == jnp.float32
        assert bool(sol.status == Status.MAX_ITER), (solver, beta)
        assert np.all(np.isfinite(sol.W)) and np.all(np.isfinite(sol.H))
        assert float(sol.objective) < 0.9 * float(sol.history.objective0), (solver, beta)
