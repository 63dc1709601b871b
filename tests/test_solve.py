import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jnmf
from jnmf.batch import restart_keys
from jnmf.init import initialize
from jnmf.problem import Factors, make_problem

from .conftest import low_rank


@pytest.mark.parametrize("batch_size", [None, 1])
def test_restarts_equal_loop_of_single_solves(rng, batch_size):
    V, _, _ = low_rank(rng, 25, 18, 3, noise=0.1)
    args = dict(beta=1.0, n_restarts=5, max_iter=120, every=1, tol=1e-6, key=7)
    every = jnmf.nmf(V, 3, batch_size=batch_size, return_restarts=True, **args)
    best = jnmf.nmf(V, 3, batch_size=batch_size, **args)
    assert every.W.shape == (5, 25, 3)
    assert float(best.objective) == float(jnmf.best_of(every).objective)
    problem = make_problem(V, 1.0)
    singles = []
    for k in restart_keys(7, 5):
        f0 = initialize(k, problem, 3, "random")
        singles.append(
            jnmf.solve(problem, jnmf.MultiplicativeUpdate(), f0, max_iter=120, every=1, tol=1e-6)
        )
    objs = np.array([float(s.objective) for s in singles])
    np.testing.assert_allclose(every.objective, objs, rtol=1e-12)
    i = int(np.argmin(objs))
    np.testing.assert_allclose(best.W, singles[i].W, rtol=1e-10)
    np.testing.assert_allclose(best.H, singles[i].H, rtol=1e-10)
    assert int(best.n_iter) == int(singles[i].n_iter)
    np.testing.assert_allclose(best.history.objective, singles[i].history.objective, rtol=1e-12)


def _count_compiles(fn, caplog):
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jax._src.interpreters.pxla"):
        with caplog.at_level(logging.WARNING, logger="jax._src.dispatch"):
            fn()
    return sum(
        "Finished XLA compilation" in r.getMessage() or "Compiling" in r.getMessage()
        for r in caplog.records
    )


def test_changing_tol_or_penalty_does_not_recompile(rng, caplog):
    V, _, _ = low_rank(rng, 20, 15, 3)
    kw = dict(beta=1.5, max_iter=30, every=1, key=0, n_restarts=2)
    jnmf.nmf(V, 3, tol=1e-4, l1_H=0.1, l2_W=0.2, **kw)  # warm the cache
    jax.config.update("jax_log_compiles", True)
    try:
        first = _count_compiles(lambda: jnmf.nmf(V, 3, tol=1e-4, l1_H=0.1, l2_W=0.2, **kw), caplog)
        again = _count_compiles(lambda: jnmf.nmf(V, 3, tol=1e-2, l1_H=0.5, l2_W=0.9, **kw), caplog)
        other_rank = _count_compiles(lambda: jnmf.nmf(V, 2, tol=1e-2, **kw), caplog)
    finally:
        jax.config.update("jax_log_compiles", False)
    assert first == 0 and again == 0
    assert other_rank > 0  # the counter does see compilations


def test_history_and_status(rng):
    V, _, _ = low_rank(rng, 20, 15, 3, noise=0.1)
    sol = jnmf.nmf(V, 3, max_iter=400, every=1, tol=1e-5)
    n = int(sol.n_iter)
    assert bool(sol.status == jnmf.Status.CONVERGED) and n < 400
    h = sol.history
    assert h.objective.shape == (400,) and h.kkt.shape == (400,)
    assert np.isfinite(h.objective[:n]).all() and np.isnan(h.objective[n:]).all()
    assert np.isnan(h.kkt[n:]).all()
    np.testing.assert_allclose(h.objective[n - 1], sol.objective)
    np.testing.assert_allclose(sol.objective, jnmf.objective(make_problem(V), sol.factors))
    maxed = jnmf.nmf(V, 3, max_iter=20, every=1, tol=0.0)
    assert bool(maxed.status == jnmf.Status.MAX_ITER) and int(maxed.n_iter) == 20


def test_every_records_sparse_history(rng):
    V, _, _ = low_rank(rng, 20, 15, 3, noise=0.1)
    dense = jnmf.nmf(V, 3, max_iter=95, every=1, tol=0.0)
    sparse = jnmf.nmf(V, 3, max_iter=95, tol=0.0, every=10)
    assert sparse.history.objective.shape == (10,)
    np.testing.assert_array_equal(
        sparse.history.iterations(), [10, 20, 30, 40, 50, 60, 70, 80, 90, 95]
    )
    np.testing.assert_allclose(sparse.W, dense.W, rtol=1e-12)
    idx = sparse.history.iterations() - 1
    np.testing.assert_allclose(sparse.history.objective, dense.history.objective[idx], rtol=1e-12)
    assert int(sparse.n_iter) == 95


def test_nonfinite_is_reported_not_returned():
    class Exploding(jnmf.MultiplicativeUpdate):
        pass

    problem = make_problem(np.ones((4, 3)))
    f0 = Factors(jnp.ones((4, 2)), jnp.ones((2, 3)))

    class Blowup(jnmf.AbstractSolver):
        def check(self, problem):
            pass

        def init(self, problem, factors):
            return jnp.asarray(0)

        def step(self, problem, factors, state):
            W = jnp.where(state >= 3, jnp.nan, factors.W * 1.01)
            return Factors(W, factors.H), state + 1

    sol = jnmf.solve(problem, Blowup(), f0, max_iter=50, every=1, tol=0.0)
    assert bool(sol.status == jnmf.Status.NONFINITE)
    assert int(sol.n_iter) == 3
    assert np.isfinite(sol.W).all()
    np.testing.assert_allclose(sol.W, 1.01**3)


def test_float32_stays_float32(rng):
    V, _, _ = low_rank(rng, 20, 15, 3)
    sol = jnmf.nmf(V.astype(np.float32), 3, max_iter=50, every=1)
    assert sol.W.dtype == jnp.float32 and sol.history.objective.dtype == jnp.float32
    sol = jnmf.nmf(np.round(V * 10).astype(np.int64), 3, max_iter=10, every=1)
    assert jnp.issubdtype(sol.W.dtype, jnp.floating)


def test_key_may_be_prng_key(rng):
    V, _, _ = low_rank(rng, 10, 8, 2)
    a = jnmf.nmf(V, 2, key=jax.random.PRNGKey(3), max_iter=10, every=1, n_restarts=2)
    b = jnmf.nmf(V, 2, key=3, max_iter=10, every=1, n_restarts=2)
    np.testing.assert_allclose(a.W, b.W)


@pytest.mark.parametrize("init", ["random", "nndsvd", "nndsvda", "nndsvdar"])
def test_inits_are_valid(rng, init):
    V, _, _ = low_rank(rng, 20, 15, 3)
    f = initialize(jax.random.PRNGKey(0), make_problem(V), 3, init)
    assert f.W.shape == (20, 3) and f.H.shape == (3, 15)
    assert (np.asarray(f.W) >= 0).all() and (np.asarray(f.H) >= 0).all()
    if init != "nndsvd":
        assert (np.asarray(f.W) > 0).all()


@pytest.mark.parametrize("init", ["nndsvd", "nndsvda", "random"])
def test_inits_match_sklearn(rng, init):
    from sklearn.decomposition._nmf import _initialize_nmf

    V, _, _ = low_rank(rng, 30, 20, 4, noise=0.05)
    W_sk, H_sk = _initialize_nmf(V, 4, init=init, random_state=0)
    f = initialize(jax.random.PRNGKey(0), make_problem(V), 4, init)
    if init == "random":  # same distribution and scale, different generator
        np.testing.assert_allclose(np.mean(f.W), np.mean(W_sk), rtol=0.25)
        np.testing.assert_allclose(np.mean(f.H), np.mean(H_sk), rtol=0.25)
    else:
        np.testing.assert_allclose(f.W, W_sk, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(f.H, H_sk, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("init", ["random", "nndsvd", "nndsvda", "nndsvdar"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_host_inits_are_the_device_formulas(rng, init, dtype):
    """``host_initialize`` (NumPy, no compilation) gives the deterministic starts of
    ``initialize`` to rounding, and draws its random ones from the same distribution."""
    from jnmf.init import host_initialize

    V, _, _ = low_rank(rng, 30, 20, 4, noise=0.05)
    V = V.astype(dtype)
    W, H = host_initialize(np.random.default_rng(0), V, 4, init)
    f = initialize(jax.random.PRNGKey(0), make_problem(V), 4, init)
    assert W.dtype == H.dtype == dtype and W.shape == (30, 4) and H.shape == (4, 20)
    assert (W >= 0).all() and (H >= 0).all()
    if init in ("nndsvd", "nndsvda"):
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(W, f.W, rtol=tol, atol=tol)
        np.testing.assert_allclose(H, f.H, rtol=tol, atol=tol)
    else:
        assert (W > 0).all() and (H > 0).all()
        assert not np.allclose(W, f.W)  # another generator
        np.testing.assert_allclose(np.mean(W), np.mean(f.W), rtol=0.25)
        np.testing.assert_allclose(np.mean(H), np.mean(f.H), rtol=0.25)
    again = host_initialize(np.random.default_rng(0), V, 4, init)
    np.testing.assert_array_equal(again[0], W)
    with pytest.raises(ValueError, match="unknown init"):
        host_initialize(np.random.default_rng(0), V, 4, "svd")
    if init != "random":
        with pytest.raises(ValueError):
            host_initialize(np.random.default_rng(0), V, 21, init)


def test_estimator_starts_dense_and_sparse_alike_on_both_sides_of_the_host_limit(
    rng, monkeypatch
):
    """Small starts come from the host, larger ones from a compiled program; either way a
    dense X and its CSR copy get the same start (the choice depends on the shape only)."""
    import scipy.sparse as sp

    from jnmf.estimator import _nmf

    V, _, _ = low_rank(rng, 12, 9, 3, noise=0.05)
    V[V < 0.3] = 0.0
    for limit in (1 << 20, 0):
        monkeypatch.setattr(_nmf, "HOST_START_WORK", limit)
        for init in ("random", "nndsvda"):
            kw = dict(init=init, random_state=5, max_iter=3, tol=0.0)
            dense = jnmf.NMF(3, **kw).fit(V)
            csr = jnmf.NMF(3, **kw).fit(sp.csr_matrix(V))
            np.testing.assert_allclose(dense.components_, csr.components_, rtol=1e-9)


def test_solver_auto_runs_the_picked_solver(rng):
    from jnmf.solvers.auto import pick_solver

    V, _, _ = low_rank(rng, 20, 15, 3, noise=0.05, offset=0.05)
    for beta, name in ((2.0, "accelerated-hals"), (1.0, "kl-dna"), (0.5, "mu")):
        assert pick_solver(make_problem(V, beta)) == name
        args = dict(beta=beta, max_iter=30, tol=0.0, key=1)
        auto, named = jnmf.nmf(V, 3, solver="auto", **args), jnmf.nmf(V, 3, solver=name, **args)
        np.testing.assert_array_equal(np.asarray(auto.W), np.asarray(named.W))
