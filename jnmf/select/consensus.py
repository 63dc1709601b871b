"""Consensus clustering over restarts (Brunet et al., PNAS 2004; Kim & Park, 2007).

Per rank, the connectivity matrix of each restart (samples i, j joined when
argmax_k H_ki = argmax_k H_kj) averaged over restarts is the consensus matrix C (m×m).
Its cophenetic correlation is the Pearson correlation, over pairs i < j, between 1 − C_ij
and the cophenetic distances of an average-linkage (UPGMA) tree of 1 − C; its dispersion
is (1/m²) Σ_ij 4 (C_ij − ½)².  Cutting the tree gives consensus clusters; argmax labels
are scored against known classes by the best one-to-one cluster-to-class map.

The tree comes from ``scipy.cluster.hierarchy`` and the map from
``scipy.optimize.linear_sum_assignment``.  Average linkage merges the closest pair of
clusters; when several pairs are equally close (frequent in consensus matrices, whose
entries are multiples of 1/R) the tree depends on which merges first.  SciPy's rule
(nearest-neighbour chains) is the one used here; on distances without ties every rule
gives the same tree.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.cluster.hierarchy as hierarchy
from jax import Array
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import squareform

from jnmf.sweep import RankSweep


def connectivity(H: Array) -> Array:
    """(m×m) 0/1 matrix: 1 where samples i and j have the same argmax_k H_k· (H is r×m)."""
    labels = jnp.argmax(H, axis=0)
    return (labels[:, None] == labels[None, :]).astype(H.dtype)


def consensus_matrix(Hs: Array) -> Array:
    """Mean connectivity over restarts; ``Hs`` is (R, r, m); returns (m, m) in [0, 1]."""
    return jnp.mean(jax.vmap(connectivity)(Hs), axis=0)


def _square(name: str, X) -> np.ndarray:
    """``X`` as a finite, symmetric float matrix with at least 2 rows, or a ValueError."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] != X.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {X.shape}")
    if X.shape[0] < 2:
        raise ValueError(f"{name} must have at least 2 samples (rows), got {X.shape[0]}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} has NaN or infinite entries: drop the failed fits first")
    if not np.allclose(X, X.T):
        raise ValueError(f"{name} must be symmetric")
    return X


def _consensus_distances(C) -> np.ndarray:
    """The condensed distances 1 − C_ij, i < j, of a consensus matrix (entries in [0, 1])."""
    C = _square("the consensus matrix C", C)
    if C.min() < 0.0 or C.max() > 1.0:
        raise ValueError(
            f"a consensus matrix has entries in [0, 1], got [{C.min():.3g}, {C.max():.3g}]"
        )
    return squareform(1.0 - C, checks=False)


def average_linkage(D: np.ndarray) -> np.ndarray:
    """Average-linkage (UPGMA) agglomerative clustering of a symmetric distance matrix.

    Returns SciPy's linkage matrix Z ((m−1)×4): row t merges clusters Z[t,0] and Z[t,1]
    (ids < m are samples, m + s is the cluster made at row s) at height Z[t,2] into a
    cluster of Z[t,3] samples.  The distance between clusters A and B is the mean of D over
    A × B.  ``scipy.cluster.hierarchy.linkage(..., method="average")`` on D's upper
    triangle (the diagonal is ignored).
    """
    D = _square("D", D)
    return hierarchy.linkage(squareform(D, checks=False), method="average")


def cophenetic_distances(Z: np.ndarray) -> np.ndarray:
    """(m×m) cophenetic distance: the height at which samples i and j first share a cluster."""
    Z = np.asarray(Z, dtype=float)
    hierarchy.is_valid_linkage(Z, throw=True, name="Z")
    return squareform(hierarchy.cophenet(Z))


def cophenetic_correlation(C: np.ndarray) -> float:
    """Brunet et al.'s cophenetic correlation of a consensus matrix C (m×m, entries in [0,1]).

    Pearson correlation, over pairs i < j, between 1 − C_ij and the cophenetic distances of
    the average-linkage tree of 1 − C.  1 for a perfectly block-structured C.

    When every pair is at the same distance (C constant off the diagonal, or m = 2) the
    correlation is 0/0; the tree then merges all samples at that one height, its cophenetic
    distances equal 1 − C exactly, and the value is defined as 1.  Such a C may still be
    uninformative (C = ½ everywhere: restarts disagree on every pair); its ``dispersion``
    tells (0 there, 1 when C is 0/1).  NaN or infinite entries (a failed fit) are refused.
    """
    x = _consensus_distances(C)
    if np.ptp(x) == 0.0:
        return 1.0
    corr, _ = hierarchy.cophenet(hierarchy.linkage(x, method="average"), x)
    return float(corr)


def _by_first_sample(labels: np.ndarray) -> np.ndarray:
    """Relabel clusters 0, 1, … in the order of their first sample."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse]


def consensus_clusters(C: np.ndarray, k: int) -> np.ndarray:
    """Labels 0…k−1 from cutting the average-linkage tree of 1 − C into ``k`` clusters.

    The cut undoes the last k − 1 merges (``scipy.cluster.hierarchy.cut_tree``), so there
    are exactly k clusters even when merges tie in height (where ``fcluster``'s
    ``maxclust`` would return fewer).  Clusters are numbered by their first sample.
    """
    x = _consensus_distances(C)
    m = np.asarray(C).shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= m:
        raise ValueError(f"k must be an integer in [1, {m}], got {k!r}")
    cut = hierarchy.cut_tree(hierarchy.linkage(x, method="average"), n_clusters=int(k))
    return _by_first_sample(cut[:, 0])


def dispersion(C: np.ndarray) -> float:
    """Kim & Park's dispersion (1/m²) Σ_ij 4 (C_ij − ½)²: 1 for a 0/1 consensus matrix."""
    _consensus_distances(C)
    C = np.asarray(C, dtype=float)
    return float(np.mean(4.0 * (C - 0.5) ** 2))


class Consensus(NamedTuple):
    """Per rank (K): consensus matrices (K, m, m), cophenetic correlation, dispersion."""

    ranks: np.ndarray
    matrices: np.ndarray
    cophenetic: np.ndarray
    dispersion: np.ndarray


def finite_restarts(sweep: RankSweep, rank: int, what: str):
    """The restarts at ``rank`` with a finite objective; a ValueError when fewer than 2.

    A measure of agreement between restarts (``what``) says nothing with one: a single
    connectivity matrix is 0/1, a single restart matches itself.
    """
    sols = sweep.restarts(rank)
    ok = np.isfinite(np.asarray(sols.objective))
    if ok.sum() < 2:
        raise ValueError(
            f"{what} compares restarts and needs at least 2 with a finite objective at each "
            f"rank; rank {rank} has {int(ok.sum())} of {ok.size}: run rank_sweep with "
            "n_restarts ≥ 2 (Brunet et al. use 50), and check the failed fits' status"
        )
    return sols, ok


def consensus(sweep: RankSweep) -> Consensus:
    """Consensus matrix, cophenetic correlation and dispersion at every rank of ``sweep``.

    Restarts whose objective is not finite are left out; every rank needs at least 2 others.
    """
    mats, coph, disp = [], [], []
    for r in sweep.ranks:
        sols, ok = finite_restarts(sweep, r, "consensus")
        C = np.asarray(consensus_matrix(sols.H[ok]))
        mats.append(C)
        coph.append(cophenetic_correlation(C))
        disp.append(dispersion(C))
    return Consensus(np.asarray(sweep.ranks), np.stack(mats), np.asarray(coph), np.asarray(disp))


def cluster_labels(H: Array) -> np.ndarray:
    """Sample labels argmax_k H_kj (H is r×m)."""
    return np.asarray(jnp.argmax(jnp.asarray(H), axis=0))


def cluster_accuracy(labels, truth) -> float:
    """Fraction of samples whose cluster, mapped one-to-one onto classes, is their class.

    ``labels`` and ``truth`` are 1-D, one entry per sample.  The cluster-to-class map
    maximizes the agreement (``linear_sum_assignment`` on the contingency table).
    """
    labels, truth = np.asarray(labels), np.asarray(truth)
    if labels.ndim != 1 or truth.ndim != 1 or labels.size != truth.size or labels.size == 0:
        raise ValueError(
            "labels and truth must be 1-D with one entry per sample each, got shapes "
            f"{labels.shape} and {truth.shape}"
        )
    _, li = np.unique(labels, return_inverse=True)
    _, ti = np.unique(truth, return_inverse=True)
    table = np.zeros((li.max() + 1, ti.max() + 1))
    np.add.at(table, (li, ti), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / labels.size)
