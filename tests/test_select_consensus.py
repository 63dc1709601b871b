"""jnmf.select.consensus: linkage, cophenetic correlation, clusters, dispersion, accuracy.

Expected values were computed by the hand-written average linkage and Hungarian algorithm
that SciPy replaced; on distances without ties the two agree to rounding.
"""

import numpy as np
import pytest
import scipy.cluster.hierarchy as hierarchy
from scipy.spatial.distance import pdist, squareform

from jnmf import select

# 7 points in the plane; their 21 distances are distinct, so the tree has no ties
POINTS = np.array(
    [[0.0, 0.0], [1.0, 0.1], [0.2, 1.3], [3.1, 0.4], [2.9, 1.7], [0.7, 2.9], [3.6, 3.3]]
)
LINKAGE = np.array(
    [
        [0.0, 1.0, 1.004987562112089, 2.0],
        [3.0, 4.0, 1.3152946437965904, 2.0],
        [2.0, 7.0, 1.3787575769910934, 3.0],
        [6.0, 8.0, 2.3446063567848654, 3.0],
        [5.0, 9.0, 2.4918726025083417, 4.0],
        [10.0, 11.0, 3.2257326859006743, 7.0],
    ]
)
# 5 restarts' labels of 10 samples; their consensus matrix has tied entries
RESTART_LABELS = np.array(
    [
        [0, 0, 0, 1, 1, 1, 2, 2, 2, 2],
        [1, 1, 1, 0, 0, 0, 2, 2, 2, 0],
        [0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
        [2, 2, 2, 1, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 1, 1, 2, 2, 2, 2, 2],
    ]
)


def _consensus_of(labelings):
    return np.mean([(c[:, None] == c[None, :]).astype(float) for c in labelings], axis=0)


def test_average_linkage_and_cophenetic_distances():
    D = squareform(pdist(POINTS))
    Z = select.average_linkage(D)
    np.testing.assert_array_equal(Z[:, [0, 1, 3]], LINKAGE[:, [0, 1, 3]])
    np.testing.assert_allclose(Z[:, 2], LINKAGE[:, 2], rtol=1e-14)
    coph = select.cophenetic_distances(Z)
    assert coph[0, 1] == Z[0, 2] and coph[3, 4] == Z[1, 2] and coph[0, 6] == Z[5, 2]
    assert coph[2, 0] == Z[2, 2] and np.all(np.diag(coph) == 0) and np.all(coph == coph.T)


def test_cophenetic_correlation_and_clusters_keep_their_values():
    D = squareform(pdist(POINTS))
    C = 1.0 - D / D.max()
    assert select.cophenetic_correlation(C) == pytest.approx(0.7635335468705184, rel=1e-14)
    np.testing.assert_array_equal(select.consensus_clusters(C, 2), [0, 0, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(select.consensus_clusters(C, 3), [0, 0, 0, 1, 1, 2, 1])
    np.testing.assert_array_equal(select.consensus_clusters(C, 4), [0, 0, 0, 1, 1, 2, 3])
    C = _consensus_of(RESTART_LABELS)
    assert select.cophenetic_correlation(C) == pytest.approx(0.976438550828563, rel=1e-14)
    assert select.dispersion(C) == pytest.approx(0.7888, rel=1e-14)
    np.testing.assert_array_equal(select.consensus_clusters(C, 2), [0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(select.consensus_clusters(C, 3), [0, 0, 0, 1, 1, 1, 2, 2, 2, 2])


def test_clusters_cut_into_exactly_k_when_merges_tie():
    blocks = np.kron(np.eye(3), np.ones((4, 4)))  # three groups, every pair of groups at 1
    labels = select.consensus_clusters(blocks, 2)
    np.testing.assert_array_equal(labels, [0] * 8 + [1] * 4)
    # fcluster's maxclust finds no height giving 2 clusters here and returns 1
    Z = hierarchy.linkage(squareform(1.0 - blocks, checks=False), method="average")
    assert len(set(hierarchy.fcluster(Z, 2, criterion="maxclust"))) == 1
    np.testing.assert_array_equal(select.consensus_clusters(blocks, 3), np.repeat([0, 1, 2], 4))
    assert select.cophenetic_correlation(blocks) == pytest.approx(1.0, abs=1e-14)
    with pytest.raises(ValueError, match="k must be"):
        select.consensus_clusters(blocks, 13)
    with pytest.raises(ValueError, match="k must be"):
        select.consensus_clusters(blocks, 2.0)


def test_cophenetic_correlation_of_equal_distances_is_defined_as_one():
    for value in (0.0, 0.5, 1.0):
        C = np.full((5, 5), value)
        np.fill_diagonal(C, 1.0)
        assert select.cophenetic_correlation(C) == 1.0
    assert select.dispersion(np.full((5, 5), 0.5)) == 0.0  # ...which dispersion tells apart
    assert select.cophenetic_correlation(np.array([[1.0, 0.3], [0.3, 1.0]])) == 1.0  # m = 2


def test_cophenetic_correlation_refuses_bad_matrices():
    C = _consensus_of(RESTART_LABELS)
    C[0, 1] = C[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        select.cophenetic_correlation(C)
    with pytest.raises(ValueError, match="NaN"):
        select.dispersion(C)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        select.cophenetic_correlation(2.0 * _consensus_of(RESTART_LABELS))
    with pytest.raises(ValueError, match="square"):
        select.cophenetic_correlation(np.ones((3, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        select.cophenetic_correlation(np.ones((1, 1)))
    asymmetric = np.eye(3)
    asymmetric[0, 1] = 0.5
    with pytest.raises(ValueError, match="symmetric"):
        select.cophenetic_correlation(asymmetric)
    with pytest.raises(ValueError, match="NaN"):
        select.average_linkage(np.full((3, 3), np.inf))


def test_connectivity_consensus_matrix_and_dispersion():
    H = np.array([[1.0, 0.0, 2.0, 0.1], [0.0, 3.0, 1.0, 0.0]])
    C = np.asarray(select.connectivity(H))
    np.testing.assert_array_equal(C, [[1, 0, 1, 1], [0, 1, 0, 0], [1, 0, 1, 1], [1, 0, 1, 1]])
    assert select.dispersion(C) == 1.0
    assert select.dispersion(np.full((4, 4), 0.5)) == 0.0
    Hs = np.stack([H, H[::-1]])  # component order does not matter
    np.testing.assert_array_equal(np.asarray(select.consensus_matrix(Hs)), C)
    np.testing.assert_array_equal(select.consensus_clusters(C, 2), [0, 1, 0, 0])


def test_cluster_accuracy():
    assert select.cluster_accuracy([1, 1, 0, 0, 0], ["a", "a", "b", "b", "a"]) == 0.8
    assert select.cluster_accuracy([0, 1, 2, 2, 3], list("aabbb")) == 0.6  # 4 clusters, 2 classes
    assert select.cluster_accuracy([0, 0, 1, 1, 2, 2], [1, 1, 1, 2, 2, 2]) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(select.cluster_labels(np.array([[1.0, 0.0], [0.0, 2.0]])), [0, 1])


def test_cluster_accuracy_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="one entry per sample"):
        select.cluster_accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="one entry per sample"):
        select.cluster_accuracy([], [])
    with pytest.raises(ValueError, match="one entry per sample"):
        select.cluster_accuracy([[0, 1]], [[0, 1]])
