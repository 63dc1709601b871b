"""Rank selection: linkage, cophenetic correlation, Hungarian matching, consensus, CV."""

import numpy as np
import pytest
import scipy.cluster.hierarchy as sch
from scipy.optimize import linear_sum_assignment as scipy_lsa
from scipy.spatial.distance import pdist, squareform

from jnmf import select
from jnmf.sweep import rank_sweep


def _random_distances(rng, m):
    X = rng.standard_normal((m, 3))
    return squareform(pdist(X))


@pytest.mark.parametrize("m", [2, 5, 38])
def test_average_linkage_matches_scipy(rng, m):
    D = _random_distances(rng, m)
    Z = select.average_linkage(D)
    Z_ref = sch.linkage(squareform(D, checks=False), method="average")
    np.testing.assert_allclose(Z[:, 2], Z_ref[:, 2], rtol=1e-12)
    np.testing.assert_array_equal(Z[:, 3], Z_ref[:, 3])
    coph_ref = squareform(sch.cophenet(Z_ref))
    np.testing.assert_allclose(select.cophenetic_distances(Z), coph_ref, rtol=1e-12)


def test_cophenetic_correlation_matches_scipy(rng):
    # a consensus-like matrix: a noisy block structure, averaged 0/1 connectivities
    labels = rng.integers(0, 3, 30)
    conn = [
        (np.where(rng.uniform(size=30) < 0.15, rng.integers(0, 3, 30), labels)) for _ in range(20)
    ]
    C = np.mean([(c[:, None] == c[None, :]).astype(float) for c in conn], axis=0)
    D = 1.0 - C
    Z_ref = sch.linkage(squareform(D, checks=False), method="average")
    ref, _ = sch.cophenet(Z_ref, squareform(D, checks=False))
    np.testing.assert_allclose(select.cophenetic_correlation(C), ref, rtol=1e-10)
    assert select.cophenetic_correlation(np.kron(np.eye(3), np.ones((4, 4)))) == pytest.approx(1.0)


def test_dispersion_connectivity_and_accuracy():
    H = np.array([[1.0, 0.0, 2.0, 0.1], [0.0, 3.0, 1.0, 0.0]])
    C = np.asarray(select.connectivity(H))
    np.testing.assert_array_equal(C, [[1, 0, 1, 1], [0, 1, 0, 0], [1, 0, 1, 1], [1, 0, 1, 1]])
    assert select.dispersion(C) == 1.0
    assert select.dispersion(np.full((4, 4), 0.5)) == 0.0
    Hs = np.stack([H, H[::-1]])  # component order does not matter
    np.testing.assert_array_equal(np.asarray(select.consensus_matrix(Hs)), C)
    assert select.cluster_accuracy([1, 1, 0, 0, 0], ["a", "a", "b", "b", "a"]) == 0.8
    np.testing.assert_array_equal(select.consensus_clusters(C, 2), [0, 1, 0, 0])


@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (7, 7), (3, 6), (6, 3)])
def test_hungarian_matches_scipy(rng, shape):
    for trial in range(20):
        cost = rng.standard_normal(shape) if trial % 2 else rng.integers(0, 4, shape) * 1.0
        rows, cols = select.linear_sum_assignment(cost)
        r_ref, c_ref = scipy_lsa(cost)
        assert len(rows) == min(shape)
        assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        np.testing.assert_allclose(cost[rows, cols].sum(), cost[r_ref, c_ref].sum(), atol=1e-12)
        assert np.all(np.diff(rows) > 0)


def test_align_components_undoes_permutations(rng):
    W = rng.uniform(size=(3, 10, 4))
    H = rng.uniform(size=(3, 4, 6))
    W[1:] = W[0]
    H[1:] = H[0]
    perms = [np.arange(4), np.array([2, 0, 3, 1]), np.array([3, 2, 1, 0])]
    Wp = np.stack([W[i][:, p] for i, p in enumerate(perms)])
    Hp = np.stack([H[i][p] for i, p in enumerate(perms)])
    Wa, Ha, sims = select.align_components(Wp, Hp, reference=0)
    np.testing.assert_allclose(Wa, W)
    np.testing.assert_allclose(Ha, H)
    np.testing.assert_allclose(sims, 1.0)


@pytest.fixture(scope="module")
def planted_sweep():
    """30 samples in 3 planted groups; KL sweep at ranks 2, 3, 5."""
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(3), 10)
    W = rng.uniform(0.0, 1.0, (40, 3)) ** 3
    H = 0.05 + np.eye(3)[groups].T * rng.uniform(1.0, 2.0, 30)
    V = rng.poisson(50 * W @ H).astype(float) + 0.5
    sweep = rank_sweep(V, (2, 3, 5), n_restarts=8, beta=1.0, max_iter=300, tol=1e-6, key=1)
    return V, groups, sweep


def test_consensus_and_stability_find_planted_rank(planted_sweep):
    V, groups, sweep = planted_sweep
    curve = select.error_curve(sweep)
    np.testing.assert_allclose(curve.best, np.min(np.asarray(sweep.objective), axis=1))
    assert np.all(curve.best <= curve.median) and np.all(curve.median <= curve.worst)
    assert curve.best[1] < 0.5 * curve.best[0]  # the elbow: rank 3 explains far more than 2
    cons = select.consensus(sweep)
    assert cons.matrices.shape == (3, 30, 30)
    assert cons.cophenetic[1] > 0.99 and cons.dispersion[1] > 0.99
    assert cons.cophenetic[1] > cons.cophenetic[2]
    labels = select.consensus_clusters(cons.matrices[1], 3)
    assert select.cluster_accuracy(labels, groups) == 1.0
    stab = select.stability(sweep)
    assert stab.score[1] > 0.99 and stab.score[1] > stab.score[2]
    Wc, Hc = stab.W[3], stab.H[3]
    assert Wc.shape == (40, 3) and Hc.shape == (3, 30)
    np.testing.assert_allclose(Wc.sum(axis=0), 1.0)
    assert select.cluster_accuracy(select.cluster_labels(Hc), groups) == 1.0


def test_imputation_cv_picks_the_true_rank():
    """Held-out imputation on a noisy rank-5 matrix (60×40, 10% noise, 30% held out)."""
    rng = np.random.default_rng(0)
    W = rng.uniform(0, 1, (60, 5)) ** 2
    H = rng.uniform(0, 1, (5, 40)) ** 2
    V0 = W @ H
    V = np.abs(V0 + 0.1 * V0.std() * rng.standard_normal(V0.shape))
    cv = select.imputation_cv(
        V,
        range(3, 9),
        n_folds=3,
        fraction=0.3,
        n_restarts=2,
        beta=2.0,
        max_iter=1000,
        tol=1e-6,
        key=0,
    )
    assert cv.heldout.shape == (3, 6) and cv.masks.shape == (3, 60, 40)
    assert 0.2 < cv.masks.mean() < 0.4
    assert cv.best_rank == 5, cv.heldout.mean(axis=0)
    # training error keeps falling with rank while held-out error turns up after 5
    mean = cv.heldout.mean(axis=0)
    assert mean[4] > mean[2] and mean[5] > mean[2]


def test_bad_cv_arguments():
    with pytest.raises(ValueError, match="fraction"):
        select.imputation_cv(np.ones((5, 4)), (2,), fraction=1.5)
    with pytest.raises(ValueError, match="n_folds"):
        select.imputation_cv(np.ones((5, 4)), (2,), n_folds=0)


def _all_aml():
    from jnmf.data import load_all_aml

    ds = load_all_aml()
    return ds.V, np.asarray(ds.meta["labels"]), ds.meta["subtypes"]


@pytest.mark.slow
def test_brunet_all_aml():
    """Brunet et al. (PNAS 2004), ALL/AML, KL-NMF, k = 2…5, 50 restarts, one padded program.

    Brunet et al.: cophenetic correlation high at k = 2 and 3, lower at k = 4 and 5; k = 2
    separates ALL from AML, k = 3 also splits ALL into B and T.
    Here (float32, ≤ 500 iterations, tol 1e-5 every 10, key 0; about 1.5 min on 2 cores):
    cophenetic 0.99995, 0.9952, 0.9857, 0.9866 at k = 2…5; ALL/AML accuracy of the best
    fit's argmax labels at k = 2: 36/38 = 0.947; at k = 3 against B-ALL/T-ALL/AML: 0.947.
    """
    V, labels, subtypes = _all_aml()
    sweep = rank_sweep(
        V.astype(np.float32),
        range(2, 6),
        n_restarts=50,
        beta="kullback-leibler",
        max_iter=500,
        tol=1e-5,
        key=0,
        plan="padded",
    )
    assert sweep.plan == "padded"
    cons = select.consensus(sweep)
    coph = dict(zip(sweep.ranks, cons.cophenetic, strict=True))
    print("cophenetic by k:", coph, "dispersion:", cons.dispersion)
    assert min(coph[2], coph[3]) > max(coph[4], coph[5])
    assert coph[2] > 0.99
    acc2 = select.cluster_accuracy(select.cluster_labels(sweep.best(2).H), labels)
    acc2_consensus = select.cluster_accuracy(select.consensus_clusters(cons.matrices[0], 2), labels)
    sub = np.where(labels == 1, "AML", np.asarray(subtypes))
    acc3 = select.cluster_accuracy(select.cluster_labels(sweep.best(3).H), sub)
    print(f"ALL/AML accuracy k=2: {acc2:.3f} (consensus {acc2_consensus:.3f}); k=3: {acc3:.3f}")
    assert acc2 >= 0.9 and acc2_consensus >= 0.9
    assert acc3 >= 0.85
