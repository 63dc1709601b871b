import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jnmf.optimality import evaluate, gradient_parts_H, gradient_parts_W, gradients
from jnmf.problem import Factors, make_problem, objective


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_gradients_equal_autodiff(rng, beta, weighted):
    V = rng.uniform(0.1, 2.0, (8, 6))
    M = (rng.uniform(size=V.shape) > 0.3).astype(float) if weighted else None
    problem = make_problem(V, beta, l1_W=0.1, l1_H=0.2, l2_W=0.3, l2_H=0.4, weights=M)
    f = Factors(jnp.asarray(rng.uniform(0.2, 1, (8, 3))), jnp.asarray(rng.uniform(0.2, 1, (3, 6))))
    auto = jax.grad(lambda W, H: objective(problem, Factors(W, H)), argnums=(0, 1))(*f)
    ours = gradients(problem, f)
    np.testing.assert_allclose(ours.W, auto[0], rtol=1e-10)
    np.testing.assert_allclose(ours.H, auto[1], rtol=1e-10)
    # the split parts give the same divergence gradient
    PH, NH = gradient_parts_H(problem, f.W, f.H)
    PW, NW = gradient_parts_W(problem, f.W, f.H)
    np.testing.assert_allclose(PH - NH + 0.2 + 0.4 * f.H, ours.H, rtol=1e-10)
    np.testing.assert_allclose(PW - NW + 0.1 + 0.3 * f.W, ours.W, rtol=1e-10)


def test_kkt_is_zero_at_exact_factorization(rng):
    W = rng.uniform(0.1, 1, (7, 2))
    H = rng.uniform(0.1, 1, (2, 5))
    problem = make_problem(W @ H, 1.0)
    ev = evaluate(problem, Factors(jnp.asarray(W), jnp.asarray(H)))
    assert float(ev.objective) < 1e-24 and float(ev.kkt_sq) < 1e-24 and float(ev.pg_sq) < 1e-24
    # a zero factor entry with a positive gradient still satisfies KKT
    W0 = W.copy()
    W0[0, 0] = 0.0
    ev = evaluate(problem, Factors(jnp.asarray(W0), jnp.asarray(H)))
    assert float(ev.kkt_sq) > 0


@pytest.mark.parametrize("penalties", [{}, {"l1_W": 0.3, "l2_H": 0.2}])
def test_kl_evaluation_shares_one_quotient_and_equals_the_general_path(rng, penalties):
    """The fused unweighted-KL evaluation (one V / WH for objective and gradients) equals the
    general path (divergence + residual) and jax.grad, with zeros in V and a zero row of W."""
    from jnmf.optimality import _evaluate_direct, _evaluate_kl

    V = rng.poisson(1.5, (30, 20)).astype(float)
    W, H = rng.uniform(0.1, 1.0, (30, 4)), rng.uniform(0.1, 1.0, (4, 20))
    W[3] = 0.0
    V[3] = 0.0  # WH = 0 only where V = 0: finite objective
    problem = make_problem(V, 1.0, **penalties)
    fused, general = _evaluate_kl(problem, W, H), _evaluate_direct(problem, W, H)
    for a, b in zip(fused, general, strict=True):
        np.testing.assert_allclose(float(a), float(b), rtol=1e-12)
    assert float(evaluate(problem, Factors(W, H)).objective) == float(fused.objective)
    gW, gH = jax.grad(lambda W, H: objective(problem, Factors(W, H)), argnums=(0, 1))(W, H)
    kkt = np.sum(np.minimum(W, gW) ** 2) + np.sum(np.minimum(H, gH) ** 2)
    np.testing.assert_allclose(float(fused.kkt_sq), kkt, rtol=1e-10)
