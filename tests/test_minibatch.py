"""Online (minibatch) NMF, ``jnmf.minibatch``: exact reduction to full-batch MU, objective
against the full-batch solver on the same budget of passes, memmap and iterator sources, and
the errors for bad input."""

import logging

import jax
import numpy as np
import pytest

import jnmf
from jnmf.minibatch import (
    make_online_mu,
    minibatch_init,
    minibatch_nmf,
    minibatch_objective,
    minibatch_step,
)
from tests.conftest import low_rank


def _starts(rng, n, m, r):
    return rng.uniform(0.1, 1.0, (n, r)), rng.uniform(0.1, 1.0, (r, m))


@pytest.mark.parametrize(
    "beta, penalties",
    [
        (2.0, {}),
        (2.0, {"l1_W": 0.3, "l1_H": 0.2, "l2_W": 0.5, "l2_H": 0.1}),
        (1.0, {"l1_W": 0.3, "l1_H": 0.2}),
        (0.5, {}),
        (0.0, {}),
        (3.0, {"l2_W": 0.2}),
        (1.5, {}),
    ],
)
def test_one_block_without_memory_is_full_batch_mu(rng, beta, penalties):
    """One block of all columns, forget_factor 0, warm H: jnmf.nmf's MU on Vᵀ ≈ Hᵀ Wᵀ (which
    updates Hᵀ then Wᵀ, the order of an online step), iterate for iterate."""
    n, m, r = 12, 30, 3
    V, _, _ = low_rank(rng, n, m, r, noise=0.05, offset=0.01)
    W0, H0 = _starts(rng, n, m, r)
    res = minibatch_nmf(
        V, r, beta=beta, batch_size=m, n_passes=7, forget_factor=0.0, init=(W0, H0), **penalties
    )
    swapped = {"l1_W": "l1_H", "l1_H": "l1_W", "l2_W": "l2_H", "l2_H": "l2_W"}
    full = jnmf.nmf(
        V.T,
        r,
        beta=beta,
        solver="mu",
        init=(H0.T, W0.T),
        max_iter=7,
        tol=0.0,
        **{swapped[k]: v for k, v in penalties.items()},
    )
    np.testing.assert_allclose(np.asarray(res.W), np.asarray(full.H).T, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(res.H, np.asarray(full.W).T, rtol=1e-10, atol=1e-13)
    assert res.objective[-1] == pytest.approx(float(full.objective), rel=1e-10)
    assert res.n_steps == 7 and res.n_passes == 7


def test_pass_objective_is_the_full_objective(rng):
    """f(W, H) summed block by block (uneven last block, penalties) equals jnmf.objective."""
    n, m, r = 10, 47, 3
    V, _, _ = low_rank(rng, n, m, r, noise=0.05)
    pens = {"l1_W": 0.1, "l2_W": 0.2, "l1_H": 0.3, "l2_H": 0.4}
    res = minibatch_nmf(V, r, beta=1.0, batch_size=10, n_passes=3, **pens)
    problem = jnmf.make_problem(V, 1.0, **pens)
    direct = float(jnmf.objective(problem, jnmf.Factors(res.W, res.H)))
    assert res.objective[-1] == pytest.approx(direct, rel=1e-12)
    assert res.n_steps == 15
    assert np.all(np.isfinite(res.running_objective))


# Budget: 30 passes over the columns; online: blocks of 200 of 2000 columns (10 steps per pass),
# forget_factor 0.3, 5 MM updates of H_J per visit; full batch: 30 MU iterations from the same
# (W0, H0).  Measured ratio online / full (float64): β = 2: 0.64, β = 1: 0.60, β = 0.5: 0.75.
@pytest.mark.parametrize("beta", [2.0, 1.0, 0.5])
def test_online_within_one_percent_of_full_batch_synthetic(rng, beta):
    n, m, r, passes = 60, 2000, 5, 30
    V, _, _ = low_rank(rng, n, m, r, noise=0.01)
    W0, H0 = _starts(rng, n, m, r)
    full = jnmf.nmf(V, r, beta=beta, solver="mu", init=(W0, H0), max_iter=passes, tol=0.0)
    res = minibatch_nmf(
        V,
        r,
        beta=beta,
        batch_size=200,
        n_passes=passes,
        forget_factor=0.3,
        inner_iter=5,
        init=(W0, H0),
    )
    assert res.objective[-1] <= 1.01 * float(full.objective)


# Budget: 50 passes; digits (V = Xᵀ, 64 × 1797, zero rows included), rank 10, blocks of 256,
# forget_factor 0.3, 5 updates of H_J per visit, same random (W0, H0) as the full-batch MU.
# Measured ratio online / full: β = 2: 0.94, β = 1: 0.97, β = 0.5: 0.96.
@pytest.mark.slow
@pytest.mark.parametrize("beta", [2.0, 1.0, 0.5])
def test_online_within_one_percent_of_full_batch_digits(beta):
    datasets = pytest.importorskip("sklearn.datasets")
    V = datasets.load_digits().data.T.copy()
    n, m = V.shape
    r, passes = 10, 50
    rng = np.random.default_rng(0)
    scale = np.sqrt(V.mean() / r)
    W0 = scale * np.abs(rng.standard_normal((n, r)))
    H0 = scale * np.abs(rng.standard_normal((r, m)))
    full = jnmf.nmf(V, r, beta=beta, solver="mu", init=(W0, H0), max_iter=passes, tol=0.0)
    res = minibatch_nmf(
        V,
        r,
        beta=beta,
        batch_size=256,
        n_passes=passes,
        forget_factor=0.3,
        inner_iter=5,
        init=(W0, H0),
    )
    assert np.isfinite(res.objective[-1])
    assert res.objective[-1] <= 1.01 * float(full.objective)


def test_memmap_source_equals_array(rng, tmp_path):
    """A float32 memmap of X = Vᵀ (samples as rows), passed as X.T: same result as the array."""
    n, m, r = 15, 90, 3
    V, _, _ = low_rank(rng, n, m, r, noise=0.05)
    V = V.astype(np.float32)
    path = tmp_path / "x.f32"
    X = np.memmap(path, dtype=np.float32, mode="w+", shape=(m, n))
    X[:] = V.T
    X.flush()
    del X
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(m, n))
    kw = dict(beta=1.0, batch_size=32, n_passes=4, key=3)
    from_memmap = minibatch_nmf(X.T, r, **kw)
    from_array = minibatch_nmf(V, r, **kw)
    assert from_memmap.W.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(from_memmap.W), np.asarray(from_array.W))
    np.testing.assert_array_equal(from_memmap.objective, from_array.objective)
    assert from_memmap.objective[-1] < from_memmap.objective[0]


def test_iterable_sources_agree_with_array_without_warm_start(rng):
    """A list (re-iterated), a callable, and the array with warm_start=False give the same
    steps; a one-shot iterator gives the same first pass."""
    n, m, r = 10, 40, 2
    V, _, _ = low_rank(rng, n, m, r, noise=0.05)
    W0 = rng.uniform(0.1, 1.0, (n, r))
    blocks = [V[:, s : s + 16] for s in range(0, m, 16)]
    kw = dict(beta=0.5, n_passes=3, inner_iter=4, forget_factor=0.5)
    array = minibatch_nmf(V, r, batch_size=16, warm_start=False, init=W0, **kw)
    assert array.H is None
    # an iterable's random start is drawn from the key; give the array's W0 through a list
    # whose first block fixes the scale: compare the two iterable forms with each other
    listed = minibatch_nmf(blocks, r, n_columns=m, key=5, **kw)
    called = minibatch_nmf(lambda: iter(blocks), r, n_columns=m, key=5, **kw)
    np.testing.assert_array_equal(np.asarray(listed.W), np.asarray(called.W))
    np.testing.assert_array_equal(listed.objective, called.objective)
    assert listed.H is None and listed.n_steps == 9
    once = minibatch_nmf(iter(blocks), r, n_columns=m, key=5, **{**kw, "n_passes": 1})
    assert once.running_objective[0] == pytest.approx(listed.running_objective[0], rel=1e-12)
    assert np.isnan(once.objective[0])
    # the iterable and the array without warm start take the same steps from the same W0
    model = make_online_mu(0.5, n_columns=m, forget_factor=0.5, inner_iter=4)
    state = minibatch_init(model, W0)
    for _ in range(3):
        for block in blocks:
            state, _, _ = minibatch_step(model, state, block)
    np.testing.assert_allclose(np.asarray(array.W), np.asarray(state.W), rtol=1e-12)
    total = sum(float(minibatch_objective(model, state.W, b)) for b in blocks)
    assert array.objective[-1] == pytest.approx(total, rel=1e-12)


def test_tol_stops_early(rng):
    V, _, _ = low_rank(rng, 10, 40, 2, noise=0.2)
    res = minibatch_nmf(V, 2, batch_size=20, n_passes=200, tol=1e-3, forget_factor=0.3)
    assert res.converged and res.n_passes < 200
    assert len(res.objective) == res.n_passes


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda V: np.where(np.arange(V.shape[1]) == 30, -1.0, V), "negative"),
        (lambda V: np.where(np.arange(V.shape[1]) == 30, np.nan, V), "NaN"),
        (lambda V: np.where(np.arange(V.shape[1]) == 30, np.inf, V), "infinite"),
    ],
)
def test_bad_entries_in_a_later_block(rng, bad, message):
    V, _, _ = low_rank(rng, 6, 40, 2)
    V = bad(V)
    with pytest.raises(ValueError, match=message):
        minibatch_nmf(V, 2, batch_size=10, n_passes=1)
    blocks = [V[:, s : s + 10] for s in range(0, 40, 10)]
    with pytest.raises(ValueError, match=rf"column 30.*{message}|{message}"):
        minibatch_nmf(blocks, 2, n_columns=40, n_passes=1)


def test_bad_input_errors(rng):
    V, _, _ = low_rank(rng, 6, 40, 2)
    blocks = [V[:, :20], V[:5, 20:]]
    with pytest.raises(ValueError, match="has 5 rows, but V has 6"):
        minibatch_nmf(blocks, 2, n_columns=40)
    Z = V.copy()
    Z[0, 25] = 0.0
    with pytest.raises(ValueError, match="zero entries.*β = 0"):
        minibatch_nmf(Z, 2, beta="itakura-saito", batch_size=10)
    with pytest.raises(ValueError, match="batch_size must be an integer ≥ 1"):
        minibatch_nmf(V, 2, batch_size=0)
    with pytest.raises(ValueError, match="batch_size applies to array sources"):
        minibatch_nmf([V], 2, batch_size=10, n_columns=40)
    with pytest.raises(ValueError, match="needs n_columns"):
        minibatch_nmf([V], 2)
    with pytest.raises(ValueError, match="read only once"):
        minibatch_nmf(iter([V]), 2, n_columns=40, n_passes=2)
    with pytest.raises(ValueError, match="gave 40 columns but n_columns is 50"):
        minibatch_nmf([V], 2, n_columns=50)
    with pytest.raises(ValueError, match="forget_factor must be in"):
        minibatch_nmf(V, 2, forget_factor=1.5)
    with pytest.raises(ValueError, match="2-D"):
        minibatch_nmf(V[0], 2)
    with pytest.raises(ValueError, match="must be 2-D"):
        minibatch_nmf([V[0]], 2, n_columns=40)
    with pytest.raises(ValueError, match="init W0 must have shape"):
        minibatch_nmf(V, 2, init=np.ones((5, 2)))
    with pytest.raises(ValueError, match="source must be"):
        minibatch_nmf(3.0, 2)
    with pytest.raises(ValueError, match="rank"):
        minibatch_nmf(V, 0)


def test_one_program_per_block_shape(rng):
    """Blocks of 10 columns and a last block of 7: two compilations of the step, whatever
    the number of passes, the forgetting or the penalties (arrays in the model)."""
    V, _, _ = low_rank(rng, 7, 47, 2, noise=0.05)
    jax.clear_caches()
    compiled = []

    class Count(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("Compiling jit(minibatch_step)"):
                compiled.append(record.getMessage())

    handler = Count()
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles():
            minibatch_nmf(V, 2, batch_size=10, n_passes=3, evaluate=False, l1_W=0.1)
            minibatch_nmf(V, 2, batch_size=10, n_passes=2, evaluate=False, forget_factor=0.2)
    finally:
        logger.removeHandler(handler)
    assert len(compiled) == 2


def test_float64_without_x64_warns_and_computes_in_float32(rng):
    V, _, _ = low_rank(rng, 6, 20, 2)
    jax.config.update("jax_enable_x64", False)  # the conftest fixture restores it
    with pytest.warns(UserWarning, match="jax_enable_x64 is off"):
        res = minibatch_nmf(V, 2, batch_size=10, n_passes=2)
    assert res.W.dtype == np.float32 and res.H.dtype == np.float32
