"""Tests of jnmf.nn: gradients of encode (unrolled and implicit) against finite differences,
memory of the two modes, composition with jit/vmap/grad, NMFLayer, factorize, l1 tuning."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jnmf.nn import (
    Implicit,
    NMFLayer,
    Unrolled,
    encode,
    factorize,
    holdout_loss,
    tune_l1,
)
from jnmf.optimality import gradient_parts_H, penalty_gradient
from jnmf.problem import make_problem

from .conftest import low_rank

L1, L2 = 0.3, 0.1


def coded_problem(rng, beta, n=9, r=3, m=4):
    """V ≈ W H with block-structured W and zeros in H, so that the penalized code has active
    constraints (H_ij = 0 with ∇f_ij > 0).  For β ≤ 1 off-block entries of W are 0 (they
    would make every active constraint barely active under the KL geometry)."""
    off = 0.2 if beta > 1 else 0.0
    W = off * rng.uniform(0.0, 1.0, (n, r))
    for k in range(r):
        W[k * (n // r) : (k + 1) * (n // r), k] += 1.0
    H = rng.uniform(0.5, 1.5, (r, m))
    H[[0, 1, 2, 0], [0, 1, 2, 3]] = 0.0
    V = W @ H
    V = V + 0.02 * rng.uniform(0.0, 1.0, V.shape) * (V > 0)
    return V, W


def complementarity_margins(V, W, H, beta, l1, l2):
    """(min H on the support, min ∇_H f off it, size of the active set) at a code H."""
    problem = make_problem(V, beta, l1_H=l1, l2_H=l2)
    P, N = gradient_parts_H(problem, jnp.asarray(W), H)
    G = P - N + penalty_gradient(l1, l2, H)
    support = H > G
    h_min = float(jnp.min(jnp.where(support, H, jnp.inf)))
    g_min = float(jnp.min(jnp.where(support, jnp.inf, G)))
    return h_min, g_min, int(jnp.sum(~support))


@pytest.mark.parametrize("beta", [1.0, 2.0, 3.0])
def test_gradients_match_finite_differences(rng, beta):
    """Both modes: d/dV, d/dW (directional), d/dl1, d/dl2 against central differences."""
    V, W = coded_problem(rng, beta)
    C = rng.standard_normal((W.shape[1], V.shape[1]))
    dV = rng.standard_normal(V.shape) * (V > 0)
    dW = rng.standard_normal(W.shape) * (W > 0)
    eps = 1e-5
    modes = {
        "implicit": dict(gradient=Implicit(), max_iter=1500, tol=0.0),
        "unrolled": dict(gradient=Unrolled(chunk=7), max_iter=60),
    }

    def loss(mode, V, W, l1, l2):
        return jnp.sum(C * encode(V, W, beta=beta, l1=l1, l2=l2, **modes[mode]))

    # the 8 perturbed points (±eps along dV, dW, l1, l2), evaluated by one vmapped loss
    z, e = np.zeros(8), eps * np.array([1, -1, 0, 0, 0, 0, 0, 0])
    pts = tuple(
        jnp.asarray(p)
        for p in (
            V + np.roll(e, 0)[:, None, None] * dV,
            W + np.roll(e, 2)[:, None, None] * dW,
            L1 + np.roll(e, 4) + z,
            L2 + np.roll(e, 6) + z,
        )
    )

    @jax.jit
    def evaluate(V, W):
        out = {}
        for mode in modes:
            f = lambda *a, mode=mode: loss(mode, *a)  # noqa: E731
            grads = jax.grad(f, argnums=(0, 1, 2, 3))(V, W, L1, L2)
            ad = jnp.stack([jnp.sum(grads[0] * dV), jnp.sum(grads[1] * dW), grads[2], grads[3]])
            vals = jax.vmap(f)(*pts)
            out[mode] = (ad, (vals[0::2] - vals[1::2]) / (2 * eps))
        return out, encode(V, W, beta=beta, l1=L1, l2=L2, **modes["implicit"])

    out, H = evaluate(V, W)
    h_min, g_min, n_active = complementarity_margins(V, W, H, beta, L1, L2)
    assert n_active > 0 and h_min > 1e-2 and g_min > 1e-2  # strict complementarity
    for mode, (ad, fd) in out.items():
        np.testing.assert_allclose(ad, fd, rtol=1e-5, atol=1e-7, err_msg=mode)


def test_implicit_matches_long_unrolled_run(rng):
    beta = 2.0
    V, W, _ = low_rank(rng, 8, 5, 3, noise=0.05, offset=0.05)
    W = W + 0.3 * np.eye(8, 3)

    def grads(gradient):
        f = lambda V, W, l1: jnp.sum(  # noqa: E731
            encode(V, W, beta=beta, l1=l1, max_iter=6000, tol=0.0, gradient=gradient) ** 2
        )
        return jax.jit(jax.grad(f, argnums=(0, 1, 2)))(V, W, 0.05)

    for a, b in zip(grads(Implicit()), grads(Unrolled()), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_memory_flat_for_implicit_growing_for_unrolled(rng):
    V, W, _ = low_rank(rng, 6, 4, 2)

    def temp_bytes(gradient, max_iter):
        f = lambda V, W: jnp.sum(  # noqa: E731
            encode(V, W, max_iter=max_iter, gradient=gradient) ** 2
        )
        compiled = jax.jit(jax.grad(f, argnums=(0, 1))).lower(V, W).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    implicit = [temp_bytes(Implicit(), k) for k in (100, 10_000)]
    plain = [temp_bytes(Unrolled(checkpoint=False), k) for k in (100, 10_000)]
    checkpointed = temp_bytes(Unrolled(), 10_000)
    print(f"temp bytes, implicit {implicit}, unrolled {plain}, checkpointed@10000 {checkpointed}")
    assert implicit[1] == implicit[0]
    assert plain[1] > 50 * plain[0]
    assert checkpointed < plain[1] / 10


@pytest.mark.parametrize("gradient", [Implicit(), Unrolled()], ids=["implicit", "unrolled"])
def test_jit_vmap_grad_compose_in_any_order(rng, gradient):
    """Per-sample encodings under vmap, jit and grad in several orders equal the batch one."""
    V, W, _ = low_rank(rng, 6, 3, 2, noise=0.05, offset=0.05)
    X, W = jnp.asarray(V.T), jnp.asarray(W)  # samples as rows for vmap
    kw = dict(l1=0.05, max_iter=200, tol=0.0, gradient=gradient)

    def one(v, W):
        return jnp.sum(encode(v, W, **kw) ** 2)

    def batch(Vcols, W):
        return jnp.sum(encode(Vcols, W, **kw) ** 2)

    def total(W):
        return jnp.sum(jax.vmap(one, (0, None))(X, W))

    def total_jit(W):
        return jnp.sum(jax.jit(jax.vmap(one, (0, None)))(X, W))

    ref_V, ref_W = jax.jit(jax.grad(batch, argnums=(0, 1)))(X.T, W)
    close = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jax.jit(jax.vmap(jax.grad(one), (0, None)))(X, W).T, ref_V, **close)
    if isinstance(gradient, Implicit):
        np.testing.assert_allclose(jax.jit(jax.grad(total))(W), ref_W, **close)
        np.testing.assert_allclose(jax.grad(total_jit)(W), ref_W, **close)
        np.testing.assert_allclose(
            jax.vmap(jax.jit(jax.grad(one)), (0, None))(X, W).T, ref_V, **close
        )


def test_gradients_finite_with_zeros_in_data(rng):
    """The ε guards and jnp.where branches of MU give finite gradients, with V_ij = 0."""
    V, W, _ = low_rank(rng, 6, 4, 2)
    V[rng.uniform(size=V.shape) < 0.3] = 0.0

    @jax.jit
    def all_grads(V, W):
        out = []
        for beta, l2 in ((1.0, 0.0), (0.5, 0.1)):
            f = lambda V, W, l1, l2, beta=beta: jnp.sum(  # noqa: E731
                encode(V, W, beta=beta, l1=l1, l2=l2, max_iter=30, gradient=Unrolled())
            )
            out.append(jax.grad(f, argnums=(0, 1, 2, 3))(V, W, 0.01, l2))
        return out

    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(all_grads(V, W)))


def test_gradient_in_traced_beta(rng):
    V, W, _ = low_rank(rng, 6, 4, 2, noise=0.05, offset=0.05)

    def f(b):
        return jnp.sum(encode(V, W, beta=b, l1=0.05, max_iter=3000, tol=0.0) ** 2)

    b, eps = 1.5, 1e-5
    ad, vals = jax.jit(lambda b: (jax.grad(f)(b), jax.vmap(f)(b + jnp.array([eps, -eps]))))(b)
    np.testing.assert_allclose(ad, (vals[0] - vals[1]) / (2 * eps), rtol=1e-5)


def test_projected_gradient_solver_matches_mu(rng):
    V, W = coded_problem(rng, 2.0)
    kw = dict(l1=L1, l2=L2, max_iter=3000, tol=0.0)
    both = jax.jit(lambda V: [encode(V, W, solver=s, **kw) for s in ("pg", "mu")])
    np.testing.assert_allclose(*both(V), atol=1e-9)


def test_bad_input_raises():
    V = np.ones((5, 3))
    W = np.ones((5, 2))
    with pytest.raises(ValueError, match="negative"):
        encode(V, -W)
    with pytest.raises(ValueError, match="rows"):
        encode(V, np.ones((4, 2)))
    with pytest.raises(ValueError, match="2-D"):
        encode(V, np.ones(5))
    with pytest.raises(ValueError, match="β = 2"):
        encode(V, W, beta=1.0, solver="pg")
    with pytest.raises(ValueError, match="undefined"):
        encode(np.zeros((5, 3)), W, beta=0.0)
    with pytest.raises(ValueError, match="l1_H"):
        encode(V, W, l1=-1.0)
    with pytest.raises(ValueError, match="Unrolled"):
        encode(V, W, gradient="implicit")
    with pytest.raises(ValueError, match="solver"):
        encode(V, W, solver="hals?")
    with pytest.raises(ValueError, match="penalty on W"):
        factorize(V, 2, l2_H=0.1)
    with pytest.raises(ValueError, match="key"):
        NMFLayer(5, 2)


def test_factorize_gradient_matches_finite_differences(rng):
    n, m, r = 6, 5, 2
    W = 0.1 * rng.uniform(size=(n, r))
    W[:3, 0] += 1.0
    W[3:, 1] += 1.0
    V = W @ rng.uniform(0.5, 1.5, (r, m)) + 0.01 * rng.uniform(size=(n, m))
    kw = dict(l2_W=0.1, l1_H=0.05, l2_H=0.1, max_iter=20_000, tol=0.0)
    C_W, C_H = rng.standard_normal((n, r)), rng.standard_normal((r, m))

    @jax.jit
    def f(V, W0, H0):
        F = factorize(V, r, init=(W0, H0), **kw)
        return jnp.sum(C_W * F.W) + jnp.sum(C_H * F.H), F

    start = (np.full((n, r), 0.5), np.full((r, m), 0.5))
    _, ref = f(V, *start)
    g = jax.grad(lambda V: f(V, ref.W, ref.H)[0])(V)
    dV, eps = rng.standard_normal(V.shape), 1e-5
    fd = (f(V + eps * dV, ref.W, ref.H)[0] - f(V - eps * dV, ref.W, ref.H)[0]) / (2 * eps)
    np.testing.assert_allclose(jnp.sum(g * dV), fd, rtol=1e-5)


def test_nmf_layer_trains_with_optax(rng):
    n, r, batch = 8, 3, 16
    key = jax.random.PRNGKey(0)
    layer = NMFLayer(n, r, key=key, l1=0.01, max_iter=100)
    X = jnp.asarray(rng.uniform(0.0, 1.0, (batch, n)))
    y = jnp.asarray(rng.standard_normal(batch))
    model = (layer, jnp.zeros(r))
    assert jax.vmap(layer)(X).shape == (batch, r)

    def loss(model, X, y):
        layer, w = model
        return jnp.mean((jax.vmap(layer)(X) @ w - y) ** 2)

    opt = optax.adam(0.05)
    state = opt.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(model, state):
        value, grads = eqx.filter_value_and_grad(loss)(model, X, y)
        updates, state = opt.update(grads, state)
        return eqx.apply_updates(model, updates), state, value

    values = []
    for _ in range(30):
        model, state, value = step(model, state)
        values.append(float(value))
    assert values[-1] < 0.5 * values[0]
    W = model[0].W
    assert bool(jnp.all(W > 0)) and np.allclose(jnp.linalg.norm(W, axis=0), 1.0)


def test_l1_hypergradient_and_tuning(rng):
    n, r, m = 24, 4, 30
    V, W, _ = low_rank(rng, n, m, r, noise=0.3)
    obs, held = slice(0, 16), slice(16, n)
    args = (V[obs], W[obs], V[held], W[held])
    kw = dict(max_iter=500, tol=0.0, solver="pg")

    def f(l1):
        return holdout_loss(l1, *args, **kw)

    l1, eps = 2.0, 1e-5
    ad, vals = jax.jit(lambda l: (jax.grad(f)(l), jax.vmap(f)(l + jnp.array([eps, -eps]))))(l1)
    np.testing.assert_allclose(ad, (vals[0] - vals[1]) / (2 * eps), rtol=1e-5)
    path = tune_l1(*args, l1_init=l1, steps=15, learning_rate=0.3, **kw)
    assert path.loss.shape == (16,) and bool(jnp.all(jnp.isfinite(path.loss)))
    assert float(path.loss[-1]) < 0.9 * float(path.loss[0])


@pytest.mark.slow
def test_task_driven_digits_beats_unsupervised_codes():
    from experiments.task_driven_digits import run

    result = run({"steps": 150, "max_iter": 60, "nmf_max_iter": 300, "seed": 0})
    acc = result["test_accuracy"]
    assert acc["end_to_end"] > acc["unsupervised_nmf"]
