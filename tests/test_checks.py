"""jnmf.checks: each argument check alone, and the input bugs it fixes at the public entries."""

import warnings

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax.experimental import sparse as jsparse
from scipy import sparse as ssparse

import jnmf
from jnmf.checks import (
    as_float_array,
    check_beta,
    check_factors,
    check_key,
    check_nonneg_scalar,
    check_positive_int,
    check_rank,
    refuse_sparse,
)

V = np.abs(np.random.default_rng(0).standard_normal((8, 6))) + 0.1
KEY = jax.random.PRNGKey(0)


# ---------------------------------------------------------------- the checks one by one


@pytest.mark.parametrize("v", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_positive_int_accepts_python_and_numpy_integers(v):
    out = check_positive_int("max_iter", v)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("v", [True, np.bool_(True), 0, -2, 2.0, "3", None, np.array([3])])
def test_positive_int_refuses(v):
    with pytest.raises(ValueError, match="max_iter must be an integer ≥ 1"):
        check_positive_int("max_iter", v)


@pytest.mark.parametrize(
    "v", [0, 1e-4, np.float32(1e-4), np.int64(0), np.array(1e-4), jnp.asarray(1e-4)]
)
def test_nonneg_scalar_accepts(v):
    assert float(check_nonneg_scalar("tol", v)) == pytest.approx(float(v))


@pytest.mark.parametrize(
    "v, match",
    [
        ("1e-4", "real number"),
        (True, "real number"),
        (np.bool_(False), "real number"),
        (None, "real number"),
        (1j, "real number"),
        (float("nan"), "finite number ≥ 0"),
        (np.inf, "finite number ≥ 0"),
        (-1.0, "finite number ≥ 0"),
        (jnp.asarray(-1.0), "finite number ≥ 0"),
        (np.ones(2), "scalar"),
        (jnp.ones(2), "scalar"),
        (np.array("0.1"), "real number"),
    ],
)
def test_nonneg_scalar_refuses(v, match):
    with pytest.raises(ValueError, match=match):
        check_nonneg_scalar("tol", v)


def test_nonneg_scalar_passes_tracers_unread():
    out = jax.jit(lambda t: check_nonneg_scalar("tol", t) * 2)(jnp.asarray(1.5))
    assert float(out) == 3.0


def test_rank_checks_integer_and_nndsvd_limit():
    assert check_rank(np.int64(3), (8, 6), "nndsvd") == 3
    assert check_rank(50, (8, 6), "random") == 50
    with pytest.raises(ValueError, match=r"rank ≤ min\(n, m\) = 6"):
        check_rank(7, (8, 6), "nndsvda")
    for bad in (0, -1, 2.5, 3.0, True, "3"):
        with pytest.raises(ValueError, match="rank must be an integer ≥ 1"):
            check_rank(bad)


def test_key_from_seeds_and_keys():
    np.testing.assert_array_equal(check_key(np.int64(3)), jax.random.PRNGKey(3))
    np.testing.assert_array_equal(check_key(None), jax.random.PRNGKey(0))
    np.testing.assert_array_equal(check_key(2**63 - 1), jax.random.PRNGKey(2**63 - 1))
    typed = jax.random.key(1)
    assert check_key(typed) is typed
    np.testing.assert_array_equal(check_key(np.asarray(KEY)), KEY)


@pytest.mark.parametrize(
    "key, match",
    [
        (1.5, "integer seed or a JAX PRNG key"),
        ("0", "integer seed or a JAX PRNG key"),
        (True, "integer seed or a JAX PRNG key"),
        (2**70, "out of range"),
        (-(2**63) - 1, "out of range"),
        (jax.random.split(KEY, 3), "integer seed or a JAX PRNG key"),
        (jax.random.split(jax.random.key(0), 3), "one PRNG key"),
        (np.zeros(2, np.float32), "integer seed or a JAX PRNG key"),
    ],
)
def test_key_refuses(key, match):
    with pytest.raises(ValueError, match=match):
        check_key(key)


@pytest.mark.parametrize("beta", [1, np.float32(1.0), np.int64(1), np.array(1.0)])
def test_beta_numpy_numbers_become_static_floats(beta):
    out = check_beta(beta)
    assert out == 1.0 and type(out) is float


@pytest.mark.parametrize(
    "beta, match",
    [
        (jnp.asarray([1.0, 2.0]), "shape"),
        (np.array([1.0, 2.0]), "shape"),
        (True, "real number"),
        (None, "real number"),
        (float("nan"), "finite"),
        (jnp.asarray(np.inf), "finite"),
    ],
)
def test_beta_refuses(beta, match):
    with pytest.raises(ValueError, match=match):
        check_beta(beta)


def test_beta_traced_scalar_is_kept_so_vmap_over_beta_works():
    values = jax.vmap(lambda b: jnmf.BetaDivergence(b).value(jnp.ones(3), jnp.full(3, 2.0)))(
        jnp.asarray([1.0, 2.0])
    )
    assert values.shape == (2,) and float(values[1]) == pytest.approx(1.5)


def test_factors_checked_and_rank_inferred():
    W, H = check_factors(np.ones((8, 2)), np.ones((2, 6)), (8, 6))
    assert W.shape == (8, 2) and H.shape == (2, 6)
    cases = [
        ((np.ones((8, 3)), np.ones((2, 6))), "shapes"),
        ((-np.ones((8, 2)), np.ones((2, 6))), "W0 has 16 negative"),
        ((np.ones((8, 2)), np.full((2, 6), np.nan)), "H0 has 12 NaN"),
        ((np.zeros((8, 2)), np.ones((2, 6))), "all zero"),
        ((np.ones(8), np.ones((1, 6))), "2-D"),
    ]
    for (W0, H0), match in cases:
        with pytest.raises(ValueError, match=match):
            check_factors(W0, H0, (8, 6))


def test_as_float_array_dtypes():
    assert as_float_array(V.astype(np.float16), "V").dtype == jnp.float32
    assert as_float_array(jnp.asarray(V, jnp.bfloat16), "V").dtype == jnp.float32
    assert as_float_array(V.astype(ml_dtypes.bfloat16), "V").dtype == jnp.float32
    assert as_float_array(np.ones((2, 2), int), "V").dtype == jnp.float64
    assert as_float_array(V.astype(np.float32), "V").dtype == jnp.float32
    x = jnp.asarray(V)
    assert as_float_array(x, "V") is x  # nothing to change: the array is passed through
    for bad, match in ((V.astype(str), "numeric array"), (V + 1j, "real")):
        with pytest.raises(ValueError, match=match):
            as_float_array(bad, "V")


def test_as_float_array_flushes_subnormals_in_the_target_dtype():
    x = V.copy()
    x[0, 0], x[1, 1] = 1e-323, 1e-310
    out = np.asarray(as_float_array(x, "V"))
    assert out[0, 0] == 0 and out[1, 1] == 0 and out[2, 2] == V[2, 2]
    y = V.astype(np.float32)
    y[0, 0] = 1e-40  # subnormal in float32, normal in float64
    assert np.asarray(as_float_array(y, "V"))[0, 0] == 0


@pytest.mark.parametrize(
    "make",
    [lambda: jsparse.BCOO.fromdense(V), lambda: ssparse.csr_matrix(V), lambda: ssparse.eye(3)],
)
def test_refuse_sparse(make):
    with pytest.raises(ValueError, match="sparse input is not supported yet"):
        refuse_sparse(make())
    refuse_sparse(V)


# ---------------------------------------------------------------- the bugs, at the public entries


@pytest.mark.parametrize("rank", [50, 0, -1])
def test_initialize_refuses_bad_rank(rank):
    problem = jnmf.make_problem(V)
    with pytest.raises(ValueError, match="rank"):
        jnmf.initialize(KEY, problem, rank, "nndsvd")


def test_numpy_scalars_accepted_everywhere():
    problem = jnmf.make_problem(V, np.float32(1.0), l1_H=np.float64(0.1))
    assert problem.beta == 1.0 and isinstance(problem.beta, float)
    W, H = jnmf.initialize(np.int64(3), problem, np.int64(3), "random")
    assert W.shape == (8, 3) and H.shape == (3, 6)
    np.testing.assert_array_equal(W, jnmf.initialize(jax.random.PRNGKey(3), problem, 3, "random").W)
    sol = jnmf.nmf(V, np.int64(3), beta=np.float32(1.0), key=np.int64(3), max_iter=np.int64(5))
    assert sol.W.shape == (8, 3) and np.isfinite(float(sol.objective))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(key=1.5), "key must be an integer seed"),
        (dict(key=2**70), "out of range"),
        (dict(tol="1e-4"), "tol must be a real number"),
        (dict(kkt_tol=float("nan")), "kkt_tol must be a finite number"),
        (dict(l1_H="0.1"), "l1_H must be a real number"),
        (dict(max_iter=True), "max_iter must be an integer"),
        (dict(every=2.0), "every must be an integer"),
        (dict(n_restarts=np.bool_(True)), "n_restarts must be an integer"),
        (dict(beta=np.array([1.0, 2.0])), "beta must be a scalar"),
        (dict(V=V.astype(str)), "V must be a numeric array"),
        (dict(weights=jsparse.BCOO.fromdense(V)), "not supported yet for weights"),
        (dict(weights=ssparse.csr_matrix(V)), "not supported yet for weights"),
        (dict(V=ssparse.csr_matrix(-V)), "negative"),
    ],
)
def test_nmf_refuses_bad_arguments_before_compiling(kwargs, match):
    args = dict(V=V, rank=2, max_iter=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        jnmf.nmf(args.pop("V"), args.pop("rank"), **args)


def test_make_problem_refuses_beta_vector_and_sparse_weights():
    with pytest.raises(ValueError, match="beta must be a scalar"):
        jnmf.make_problem(V, jnp.asarray([1.0, 2.0]))
    assert jnmf.make_problem(jsparse.BCOO.fromdense(V)).is_sparse  # sparse V is kept sparse
    with pytest.raises(ValueError, match=r"weights.todense\(\)"):
        jnmf.make_problem(V, weights=jsparse.BCOO.fromdense(V))


def test_float16_is_computed_in_float32():
    big = (300 * V).astype(np.float16)  # ‖V − WH‖² and the MU products overflow float16
    sol = jnmf.nmf(big, 2, max_iter=20)
    assert sol.W.dtype == jnp.float32 and np.isfinite(float(sol.objective))
    assert float(sol.objective) < 0.5 * float(jnp.sum(jnp.asarray(big, jnp.float32) ** 2))


def test_subnormal_entries_are_zero_for_the_checks_and_the_program():
    Vs = V.copy()
    Vs[0, 0] = 1e-323
    assert float(jnmf.make_problem(Vs).V[0, 0]) == 0.0
    with pytest.raises(ValueError, match="1 zero entries"):
        jnmf.make_problem(Vs, "itakura-saito")
    fit = jnmf.NMF(2, beta_loss="kullback-leibler", max_iter=20, random_state=0).fit(Vs)
    assert np.isfinite(fit.reconstruction_err_)


def test_given_factors_with_restarts_warn():
    init = (np.ones((8, 2)), np.ones((2, 6)))
    with pytest.warns(UserWarning, match=r"init=\(W0, H0\) is deterministic"):
        jnmf.nmf(V, 2, init=init, n_restarts=2, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jnmf.nmf(V, 2, init=init, n_restarts=1, max_iter=3)


def test_estimator_argument_checks():
    for params, match in (
        (dict(max_iter=True), "max_iter"),
        (dict(tol="0.1"), "tol"),
        (dict(alpha_W=float("nan")), "alpha_W"),
        (dict(alpha_H=np.inf), "alpha_H"),
    ):
        with pytest.raises(ValueError, match=match):
            jnmf.NMF(2, **params).fit(V)
    fit = jnmf.NMF(np.int64(2), max_iter=np.int64(5), alpha_W=np.float32(0.01)).fit(V)
    assert fit.components_.shape == (2, 6)
