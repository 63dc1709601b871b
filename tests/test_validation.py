import jax.numpy as jnp
import numpy as np
import pytest

import jnmf

V = np.abs(np.random.default_rng(0).standard_normal((6, 5))) + 0.1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(V=-V), "negative entries"),
        (dict(V=np.where(V > 1, np.nan, V)), "NaN"),
        (dict(V=np.where(V > 1, np.inf, V)), "infinite"),
        (dict(V=V[0]), "2-D"),
        (dict(V=np.zeros((0, 3))), "empty"),
        (dict(rank=0), "rank must be an integer ≥ 1"),
        (dict(rank=2.5), "rank must be an integer"),
        (dict(rank=7, init="nndsvd"), r"rank ≤ min\(n, m\)"),
        (dict(V=np.where(V > 1, 0.0, V), beta="itakura-saito"), "zero entries"),
        (dict(V=np.where(V > 1, 0.0, V), beta=-0.5), "zero entries"),
        (dict(beta="hellinger"), "unknown beta"),
        (dict(solver="newton"), "unknown solver"),
        (dict(init="svd"), "unknown init"),
        (dict(init=(np.ones((6, 3)), np.ones((2, 5)))), "init factors must have shapes"),
        (dict(init=(-np.ones((6, 2)), np.ones((2, 5)))), "W0 has 12 negative"),
        (dict(l1_H=-1.0), "l1_H must be a finite number ≥ 0"),
        (dict(weights=np.ones((5, 6))), "weights must have the shape"),
        (dict(weights=-np.ones((6, 5))), "weights has 30 negative"),
        (dict(max_iter=0), "max_iter"),
        (dict(n_restarts=0), "n_restarts"),
        (dict(tol=-1.0), "tol"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = dict(V=V, rank=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        jnmf.nmf(args.pop("V"), args.pop("rank"), **args)


def test_missing_entries_may_be_nan_when_weight_is_zero():
    Vn = V.copy()
    Vn[0, 0] = np.nan
    M = np.ones_like(V)
    M[0, 0] = 0
    sol = jnmf.nmf(Vn, 2, weights=M, max_iter=20)
    assert np.isfinite(sol.objective)
    with pytest.raises(ValueError, match="NaN"):
        jnmf.nmf(Vn, 2, weights=np.ones_like(V))


def test_zeros_allowed_for_positive_beta():
    Vz = np.where(V > 1, 0.0, V)
    sol = jnmf.nmf(Vz, 2, beta="kullback-leibler", max_iter=20)
    assert np.isfinite(sol.objective)


def test_float64_without_x64_warns():
    import jax

    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.warns(UserWarning, match="jax_enable_x64"):
            sol = jnmf.nmf(V, 2, max_iter=5)
        assert sol.W.dtype == jnp.float32
    finally:
        jax.config.update("jax_enable_x64", True)
