"""Sparse V end to end: the same numbers as the dense path, and no n×m array.

A sparse V (BCOO or SciPy) becomes a ``jnmf.sparse.SparseMatrix``; every solver that declares
``sparse`` must give the factors of the dense solve from the same start (float64, 1e-10),
with the same objective and KKT history.  V has a zero row and a zero column throughout.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import sparse as jsparse
from scipy import sparse as ssparse

import jnmf
from jnmf import sparse
from jnmf.init import initialize, sparse_svd
from jnmf.optimality import evaluate, gradient_parts_H, gradient_parts_W, gradients
from jnmf.problem import Factors, make_problem, objective
from jnmf.solve import Budget, solve
from jnmf.solvers import SOLVERS, MultiplicativeUpdate

N, M, R = 24, 17, 3


@pytest.fixture
def data(rng):
    """Poisson counts (about half zeros) with a zero row and a zero column, and a start."""
    V = rng.poisson(0.8, (N, M)).astype(float)
    V[5] = 0.0
    V[:, 7] = 0.0
    W0 = rng.uniform(0.1, 1.0, (N, R))
    H0 = rng.uniform(0.1, 1.0, (R, M))
    return V, Factors(jnp.asarray(W0), jnp.asarray(H0))


def _close(a, b, rtol=1e-10):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(np.max(np.abs(a)), np.finfo(float).tiny)
    assert np.max(np.abs(a - b)) <= rtol * scale


def test_boundary_canonicalizes_bcoo_and_scipy(data):
    V, _ = data
    ref = make_problem(V)
    # duplicates (summed), an entry outside the shape (BCOO padding, dropped), unsorted
    rows, cols = np.nonzero(V)
    vals = V[rows, cols]
    order = np.random.default_rng(1).permutation(rows.size)
    rows2 = np.concatenate([rows[order], [rows[0], N]])
    cols2 = np.concatenate([cols[order], [cols[0], 0]])
    half = vals[0] / 2
    vals2 = np.concatenate([vals[order], [half, 5.0]])
    vals2[np.flatnonzero(order == 0)[0]] = half
    bcoo = jsparse.BCOO(
        (jnp.asarray(vals2), jnp.asarray(np.stack([rows2, cols2], 1))), shape=V.shape
    )
    for given in (bcoo, ssparse.csr_matrix(V), ssparse.coo_array(V), jsparse.BCOO.fromdense(V)):
        problem = make_problem(given)
        assert problem.is_sparse and problem.shape == V.shape
        idx = np.asarray(problem.V.indices)
        assert np.all(np.diff(idx[:, 0] * M + idx[:, 1]) > 0)  # unique, sorted row-major
        dense = np.zeros(V.shape)
        dense[idx[:, 0], idx[:, 1]] = np.asarray(problem.V.data)
        np.testing.assert_array_equal(dense, V)
    assert float(ref.data_max()) == float(make_problem(bcoo).data_max())
    assert float(ref.data_mean()) == pytest.approx(float(make_problem(bcoo).data_mean()), 1e-15)


@pytest.mark.parametrize("beta", [2.0, 1.0, 1.5, 0.5, 3.0, "traced"])
def test_objective_gradients_and_kkt_match_dense(data, beta):
    V, start = data
    beta = jnp.asarray(1.5) if beta == "traced" else beta
    dense = make_problem(V, beta, l1_H=0.1, l2_W=0.2).with_caches()
    sp = make_problem(ssparse.csr_matrix(V), beta, l1_H=0.1, l2_W=0.2).with_caches()
    for a, b in zip(evaluate(dense, start), evaluate(sp, start), strict=True):
        _close(a, b, 1e-12)
    _close(objective(dense, start), objective(sp, start), 1e-12)
    for a, b in zip(gradients(dense, start), gradients(sp, start), strict=True):
        _close(a, b, 1e-12)
    for parts in (gradient_parts_H, gradient_parts_W):
        for a, b in zip(parts(dense, *start, 1e-3), parts(sp, *start, 1e-3), strict=True):
            _close(jnp.broadcast_to(a, b.shape), b, 1e-12)


def test_dense_passes_in_blocks_match(rng):
    W = jnp.asarray(rng.random((9, 3)))
    H = jnp.asarray(rng.random((3, 11)))
    WH = W @ H
    for block in (1, 4, 11):  # 11 = 4 + 4 + 3: the last block padded
        _close(sparse.dense_sum(W, H, jnp.sqrt, block), jnp.sum(jnp.sqrt(WH)), 1e-14)
        _close(sparse.dense_left(W, H, jnp.sqrt, block), W.T @ jnp.sqrt(WH), 1e-14)


CASES = [
    ("mu", 2.0),
    ("mu", 1.0),
    ("mu", 1.5),
    ("hals", 2.0),
    ("accelerated-hals", 2.0),
    ("anls-bpp", 2.0),
    ("projected-gradient", 2.0),
    ("projected-gradient", 1.0),
    ("nesterov", 2.0),
    ("optax-pg", 1.0),
    ("sparse-hoyer", 2.0),
]
OPTIONS = {"sparse-hoyer": {"sparseness_H": 0.5}}


@pytest.mark.parametrize(("name", "beta"), CASES)
def test_solvers_give_the_dense_factors(data, name, beta):
    V, start = data
    solver = SOLVERS[name](**OPTIONS.get(name, {}))
    budget = Budget(max_iter=30, tol=0.0, every=10)
    l1 = 0.0 if name == "sparse-hoyer" else 0.01  # Hoyer takes no penalties
    a = solve(make_problem(V, beta, l1_W=l1), solver, start, budget)
    b = solve(make_problem(jsparse.BCOO.fromdense(V), beta, l1_W=l1), solver, start, budget)
    _close(a.W, b.W)
    _close(a.H, b.H)
    _close(a.history.objective, b.history.objective)
    np.testing.assert_allclose(b.history.kkt, a.history.kkt, rtol=1e-9, atol=1e-12)
    assert int(a.status._value) == int(b.status._value)


@pytest.mark.parametrize("name", ["kl-cd", "kl-dna"])
def test_dense_model_solvers_refuse_sparse(data, name):
    V, start = data
    problem = make_problem(ssparse.csr_matrix(V), 1.0)
    with pytest.raises(ValueError, match="does not support a sparse V"):
        solve(problem, SOLVERS[name](), start, max_iter=5)
    assert SOLVERS["mu"].supports(problem) is None


@pytest.mark.parametrize("value", [-1.0, np.nan, np.inf, "empty"])
def test_bad_sparse_input_gets_the_dense_error(data, value):
    V, _ = data
    bad = V[:0] if value == "empty" else V.copy()
    if value != "empty":
        bad[0, 0] = value
    with pytest.raises(ValueError) as dense_err:
        make_problem(bad)
    for given in (ssparse.csr_matrix(bad), jsparse.BCOO.fromdense(bad)):
        with pytest.raises(ValueError) as sparse_err:
            make_problem(given)
        assert str(sparse_err.value) == str(dense_err.value)


def test_wrong_ndim_and_unsupported_options_are_refused(data):
    V, _ = data
    with pytest.raises(ValueError, match="must be a 2-D matrix"):
        make_problem(ssparse.coo_array(V[0]))
    with pytest.raises(ValueError, match="must be a 2-D matrix"):
        make_problem(jsparse.BCOO.fromdense(V[None]))
    S = ssparse.csr_matrix(V)
    with pytest.raises(ValueError, match="zero entries .*sparse V is zero off"):
        make_problem(S, 0.0)
    with pytest.raises(ValueError, match="zero entries"):
        make_problem(S, -1.0)
    with pytest.raises(ValueError, match="weights= with a sparse V is not supported"):
        make_problem(S, weights=np.ones(V.shape))
    with pytest.raises(ValueError, match="only the data V may be sparse"):
        jnmf.checks.as_float_array(S, "weights")
    with pytest.raises(ValueError, match="sparse V does not take"):
        jnmf.select.imputation_cv(S, [2, 3])


@pytest.mark.parametrize("method", ["random", "nndsvd", "nndsvda", "nndsvdar"])
def test_inits_match_dense(data, method):
    V, _ = data
    key = jax.random.PRNGKey(3)
    a = initialize(key, make_problem(V), R, method)
    b = initialize(key, make_problem(ssparse.csr_matrix(V)), R, method)
    _close(a.W, b.W, 1e-12)
    _close(a.H, b.H, 1e-12)


def test_subspace_svd_of_a_large_sparse_matrix(rng):
    # 300 × 200 (beyond the exact full-range size): rank 3 from sparse factors (each row of W
    # in one cluster, H 30% stored), plus noise on the stored entries: a clear spectral gap
    n, m = 300, 200
    W = np.eye(3)[rng.integers(0, 3, n)] * rng.uniform(1, 2, (n, 1))
    H = np.where(rng.random((3, m)) < 0.3, rng.uniform(1, 2, (3, m)), 0.0)
    V = W @ H
    V = np.where(V > 0, V + 1e-3 * rng.random(V.shape), 0.0)
    U, S, Vt = sparse_svd(make_problem(ssparse.csr_matrix(V)).V, 3)
    S_ref = np.linalg.svd(V, compute_uv=False)[:3]
    np.testing.assert_allclose(S, S_ref, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(U.T @ U), np.eye(3), atol=1e-12)


def test_nmf_takes_sparse_v(data):
    V, _ = data
    a = jnmf.nmf(V, R, beta=1.0, n_restarts=2, max_iter=20, tol=0.0)
    b = jnmf.nmf(ssparse.csr_matrix(V), R, beta=1.0, n_restarts=2, max_iter=20, tol=0.0)
    _close(a.W, b.W)
    _close(a.objective, b.objective)


def test_rank_sweep_takes_sparse_v(data):
    V, _ = data
    a = jnmf.rank_sweep(V, [2, 3], n_restarts=1, max_iter=15, tol=0.0)
    b = jnmf.rank_sweep(jsparse.BCOO.fromdense(V), [2, 3], n_restarts=1, max_iter=15, tol=0.0)
    _close(a.W, b.W)
    _close(a.objective, b.objective)


def test_encode_and_its_gradient_take_sparse_v(data, rng):
    V, _ = data
    S = ssparse.csr_matrix(V)
    D = jnp.asarray(rng.uniform(0.1, 1.0, (N, R)))
    _close(jnmf.nn.encode(V, D, beta=1.0, max_iter=40), jnmf.nn.encode(S, D, beta=1.0, max_iter=40))

    def loss(D, X):
        return jnp.sum(jnmf.nn.encode(X, D, beta=1.0, max_iter=40, tol=0.0) ** 2)

    with pytest.warns(RuntimeWarning, match="did not converge"):
        _close(jax.grad(loss)(D, V), jax.grad(loss)(D, S), 1e-9)


def test_estimator_keeps_scipy_sparse(data):
    from jnmf import NMF

    V, _ = data
    S = ssparse.csr_matrix(V)
    dense = NMF(R, beta_loss="kullback-leibler", max_iter=30, tol=0.0, random_state=0)
    sp = NMF(R, beta_loss="kullback-leibler", max_iter=30, tol=0.0, random_state=0)
    _close(dense.fit_transform(V), sp.fit_transform(S))
    _close(dense.components_, sp.components_)
    assert sp.reconstruction_err_ == pytest.approx(dense.reconstruction_err_, rel=1e-10)
    _close(dense.transform(V[:6]), sp.transform(S[:6]))
    with pytest.raises(ValueError, match="Negative values in data passed to NMF"):
        NMF(R).fit(ssparse.csr_matrix(-V))
    with pytest.raises(ValueError, match="When beta_loss <= 0 and X contains zeros"):
        NMF(R, beta_loss="itakura-saito").fit(S)


def test_compiled_kl_mu_never_holds_an_n_by_m_buffer():
    """Lower and compile one KL-MU solve of a 1 000 000 × 100 000 matrix with 10⁷ stored
    entries at rank 10 from shapes alone; its buffers stay far below one n×m array."""
    n, m, nnz, r = 1_000_000, 100_000, 10_000_000, 10
    dtype = jnp.float32

    def run(values, indices, W0, H0):
        V = jsparse.BCOO((values, indices), shape=(n, m), indices_sorted=True)
        problem = make_problem(V, "kullback-leibler")
        return solve(problem, MultiplicativeUpdate(), Factors(W0, H0), max_iter=50, every=10)

    shapes = (
        jax.ShapeDtypeStruct((nnz,), dtype),
        jax.ShapeDtypeStruct((nnz, 2), jnp.int32),
        jax.ShapeDtypeStruct((n, r), dtype),
        jax.ShapeDtypeStruct((r, m), dtype),
    )
    stats = jax.jit(run).lower(*shapes).compile().memory_analysis()
    total = stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes
    dense_bytes = n * m * jnp.dtype(dtype).itemsize
    assert total < dense_bytes / 100  # measured: 1.6 GB against 400 GB
    assert total < 40 * (nnz + (n + m) * r) * jnp.dtype(dtype).itemsize  # O(nnz·r + (n+m)r)


@pytest.mark.slow
def test_reuters_kl_mu_sparse_reaches_the_dense_objective():
    reuters = jnmf.data.load("reuters")
    V = np.asarray(reuters.V, dtype=float)
    S = ssparse.csr_matrix(V)
    assert S.nnz < 0.1 * V.size
    a = jnmf.nmf(V, 10, beta=1.0, max_iter=200, tol=0.0, every=50, key=1)
    b = jnmf.nmf(S, 10, beta=1.0, max_iter=200, tol=0.0, every=50, key=1)
    np.testing.assert_allclose(b.objective, a.objective, rtol=1e-10)
    _close(a.W, b.W, 1e-8)


@pytest.mark.parametrize("beta", [0.0, -1.2, "array"])
def test_fully_stored_sparse_v_at_beta_at_most_zero_equals_dense(beta):
    """β ≤ 0 is defined only where V > 0: a sparse V with every entry stored (positive) is
    fitted as the dense V (the sparse path's terms for unstored zeros are undefined there),
    also when β comes as an array (the estimator's traced β); stored zeros are refused."""
    rng = np.random.default_rng(4)
    V = np.abs(rng.standard_normal((12, 9))) + 0.1
    b = jnp.asarray(-0.5) if beta == "array" else beta
    W0, H0 = rng.random((12, 3)) + 0.1, rng.random((3, 9)) + 0.1
    dense = jnmf.nmf(V, 3, beta=b, init=(W0, H0), max_iter=15, tol=0.0)
    stored = jnmf.nmf(ssparse.csr_matrix(V), 3, beta=b, init=(W0, H0), max_iter=15, tol=0.0)
    assert np.isfinite(float(stored.objective))
    np.testing.assert_allclose(np.asarray(stored.W), np.asarray(dense.W), rtol=1e-12)
    holes = V.copy()
    holes[0, 0] = 0.0
    with pytest.raises(ValueError, match="zero entries"):
        jnmf.make_problem(ssparse.csr_matrix(holes), b)
