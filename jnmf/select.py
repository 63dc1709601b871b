"""Choosing the rank: error curves, held-out imputation, consensus and restart stability.

* ``error_curve(sweep)``: the final objective versus rank (the elbow) with its spread over
  restarts.
* ``imputation_cv(V, ranks, ...)``: k random masks of entries; each fold fits on the other
  entries (weights 0 on the held-out ones) and measures the mean β-divergence
  d_β(V_ij | (WH)_ij) over its held-out entries.  All folds × ranks × restarts run in one
  compiled program.  The rank with the smallest mean held-out error is picked.
* ``consensus(sweep)``: per rank, the connectivity matrix of each restart (samples i, j
  joined when argmax_k H_ki = argmax_k H_kj) averaged over restarts, C (m×m); its
  cophenetic correlation (Brunet et al., PNAS 2004): the Pearson correlation between
  1 − C_ij and the cophenetic distances of an average-linkage clustering of 1 − C; and its
  dispersion (Kim & Park, Bioinformatics 2007): (1/m²) Σ_ij 4 (C_ij − ½)².
* ``stability(sweep)``: components of every restart aligned to the best restart by a
  maximum-weight matching (Hungarian algorithm) on the cosine similarity of W's columns;
  the score is the mean matched similarity, and the aligned, scale-normalized, averaged
  factors are the consensus factors.

Average linkage, cophenetic distances and the Hungarian algorithm are written here in
NumPy (the sample count m is small), so that SciPy stays an optional dependency; the tests
compare them with ``scipy.cluster.hierarchy`` and ``scipy.optimize.linear_sum_assignment``.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jnmf.batch import map_batched, restart_keys
from jnmf.problem import Factors, Problem, make_problem
from jnmf.solve import solve
from jnmf.solvers import AbstractSolver, get_solver
from jnmf.sweep import (
    RankSweep,
    check_plan,
    check_ranks,
    default_plan,
    initial_factors,
    masked_solver,
)

# ----------------------------------------------------------------------------- error curve


class ErrorCurve(NamedTuple):
    """Final objectives versus rank: ``objectives`` (K, R) and their summaries (K,)."""

    ranks: np.ndarray
    objectives: np.ndarray
    best: np.ndarray
    median: np.ndarray
    worst: np.ndarray
    std: np.ndarray


def error_curve(sweep: RankSweep) -> ErrorCurve:
    """Best, median, worst and standard deviation of the final objective at each rank.

    Non-finite objectives (failed restarts) are left out of the summaries.
    """
    obj = np.asarray(sweep.objective, dtype=float)
    f = np.where(np.isfinite(obj), obj, np.nan)
    return ErrorCurve(
        ranks=np.asarray(sweep.ranks),
        objectives=obj,
        best=np.nanmin(f, axis=1),
        median=np.nanmedian(f, axis=1),
        worst=np.nanmax(f, axis=1),
        std=np.nanstd(f, axis=1),
    )


# ----------------------------------------------------------------- held-out imputation CV


class ImputationCV(NamedTuple):
    """Held-out imputation cross-validation.

    ``heldout``: (F, K) mean divergence over each fold's held-out entries, for the restart
    with the smallest training objective; ``train``: (F, K) that restart's training
    objective divided by the number of training entries; ``masks``: (F, n, m) boolean,
    True where held out; ``best_rank``: the rank minimizing the mean of ``heldout`` over folds.
    """

    ranks: np.ndarray
    heldout: np.ndarray
    train: np.ndarray
    masks: np.ndarray
    best_rank: int


def holdout_masks(key, shape: tuple[int, int], n_folds: int, fraction: float, observed=None):
    """``n_folds`` independent random masks, each entry held out with probability ``fraction``.

    Only observed entries (``observed`` True, default all) are held out.  (F, n, m) bool.
    """
    u = jax.random.uniform(key, (n_folds,) + tuple(shape))
    masks = u < fraction
    if observed is not None:
        masks = masks & observed
    return masks


def _with_weights(problem: Problem, weights: Array) -> Problem:
    return Problem(
        V=problem.V,
        divergence=problem.divergence,
        l1_W=problem.l1_W,
        l1_H=problem.l1_H,
        l2_W=problem.l2_W,
        l2_H=problem.l2_H,
        weights=weights,
    )


@eqx.filter_jit
def _cv_program(
    problem: Problem,
    solver: AbstractSolver,
    ranks: tuple[int, ...],
    keys: Array,
    init: str,
    holdout: Array,
    *,
    max_iter: int,
    tol,
    kkt_tol,
    every: int,
    batch_size: int | None,
):
    base = jnp.ones(problem.shape, problem.dtype) if problem.weights is None else problem.weights
    fold_w = jnp.where(holdout, 0.0, base)
    F, K, R, r_max = holdout.shape[0], len(ranks), keys.shape[0], max(ranks)

    def starts(w):
        return initial_factors(_with_weights(problem, w), ranks, keys, init, r_max)

    W0, H0, mask = jax.vmap(starts)(fold_w)
    P = K * R
    W0, H0, mask = (x.reshape((F * P,) + x.shape[2:]) for x in (W0, H0, mask))
    fold = jnp.repeat(jnp.arange(F), P)

    def one(args):
        W, H, m, f = args
        sol = solve(
            _with_weights(problem, fold_w[f]),
            masked_solver(solver, m, len(ranks) > 1),
            Factors(W, H),
            max_iter=max_iter,
            tol=tol,
            kkt_tol=kkt_tol,
            every=every,
        )
        WH = sol.W @ sol.H
        held = holdout[f] & (base > 0)
        x = jnp.where(held, problem.data(), WH)
        d = problem.divergence.elementwise(x, WH)
        err = jnp.sum(jnp.where(held, base * d, 0.0)) / jnp.maximum(jnp.sum(held), 1)
        n_train = jnp.maximum(jnp.sum(fold_w[f] > 0), 1)
        return sol.objective / n_train, err

    train, err = map_batched(one, (W0, H0, mask, fold), batch_size)
    train, err = train.reshape(F, K, R), err.reshape(F, K, R)
    pick = jnp.argmin(jnp.where(jnp.isnan(train), jnp.inf, train), axis=-1)
    take = lambda x: jnp.take_along_axis(x, pick[..., None], axis=-1)[..., 0]  # noqa: E731
    return take(train), take(err)


def imputation_cv(
    V,
    ranks=range(2, 11),
    *,
    n_folds: int = 5,
    fraction: float = 0.1,
    n_restarts: int = 1,
    beta=2.0,
    solver: str | AbstractSolver = "mu",
    init: str = "random",
    max_iter: int = 500,
    tol: float = 1e-5,
    key=0,
    weights=None,
    every: int = 10,
    batch_size="auto",
) -> ImputationCV:
    """Pick the rank whose fits best predict held-out entries.

    For each of ``n_folds`` folds a random ``fraction`` of the observed entries is held out
    (weight 0); every (fold, rank, restart) fit minimizes Σ M_ij d_β(V_ij | (WH)_ij) on the
    rest.  The held-out error of a (fold, rank) is (1/|held|) Σ_held M_ij d_β(V_ij |
    (WH)_ij) for the restart with the smallest training objective.  All fits run as one
    compiled program (``batch_size`` as in ``rank_sweep``: None vmaps every fit, an integer
    runs that many at a time; "auto" is 1 on CPU, None on accelerators).

    The fold masks come from ``key`` folded with 1; restart starts from ``restart_keys(key,
    n_restarts)`` and the fold's weighted data mean.

    Returns an ``ImputationCV`` with ``best_rank``.
    """
    problem = make_problem(V, beta, weights=weights)
    if not (0.0 < fraction < 1.0):
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 1:
        raise ValueError(f"n_folds must be an integer ≥ 1, got {n_folds!r}")
    if isinstance(n_restarts, bool) or not isinstance(n_restarts, int) or n_restarts < 1:
        raise ValueError(f"n_restarts must be an integer ≥ 1, got {n_restarts!r}")
    if not isinstance(init, str):
        raise ValueError("imputation_cv needs an initializer name for init, e.g. 'random'")
    check_plan("auto", batch_size)
    ranks = check_ranks(ranks, problem.shape, init)
    solver_obj = get_solver(solver)
    solver_obj.check(problem)
    if batch_size == "auto":
        batch_size = default_plan()[1]
    keys = restart_keys(key, n_restarts)
    observed = None if problem.weights is None else problem.weights > 0
    fold_key = jax.random.fold_in(keys[0], 1)
    masks = holdout_masks(fold_key, problem.shape, n_folds, fraction, observed)
    if not bool(jnp.all(jnp.any(masks, axis=(1, 2)))):
        raise ValueError(f"fraction={fraction} holds out no entry in some fold: raise it")
    train, err = _cv_program(
        problem,
        solver_obj,
        ranks,
        keys,
        init,
        masks,
        max_iter=max_iter,
        tol=jnp.asarray(tol, problem.dtype),
        kkt_tol=jnp.asarray(0.0, problem.dtype),
        every=every,
        batch_size=batch_size,
    )
    err = np.asarray(err)
    mean = np.where(np.isfinite(err), err, np.inf).mean(axis=0)
    return ImputationCV(
        ranks=np.asarray(ranks),
        heldout=err,
        train=np.asarray(train),
        masks=np.asarray(masks),
        best_rank=int(ranks[int(np.argmin(mean))]),
    )


# ------------------------------------------------------------------------------ consensus


def connectivity(H: Array) -> Array:
    """(m×m) 0/1 matrix: 1 where samples i and j have the same argmax_k H_k· (H is r×m)."""
    labels = jnp.argmax(H, axis=0)
    return (labels[:, None] == labels[None, :]).astype(H.dtype)


def consensus_matrix(Hs: Array) -> Array:
    """Mean connectivity over restarts; ``Hs`` is (R, r, m); returns (m, m) in [0, 1]."""
    return jnp.mean(jax.vmap(connectivity)(Hs), axis=0)


def average_linkage(D) -> np.ndarray:
    """Average-linkage (UPGMA) agglomerative clustering of a symmetric distance matrix.

    Returns a SciPy-style linkage matrix Z ((m−1)×4): row t merges clusters Z[t,0] and
    Z[t,1] (ids < m are samples, m + s is the cluster made at row s) at height Z[t,2]
    into a cluster of Z[t,3] samples.  The distance between clusters A and B is the mean
    of D over A × B (updated by the Lance-Williams rule); at each step the closest pair
    merges (ties: the first in row-major order).
    """
    D = np.array(D, dtype=float)
    m = D.shape[0]
    if D.ndim != 2 or D.shape[1] != m:
        raise ValueError(f"D must be a square matrix, got shape {D.shape}")
    dist = D.copy()
    np.fill_diagonal(dist, np.inf)
    active = np.ones(m, dtype=bool)
    ids = np.arange(m)
    sizes = np.ones(m)
    Z = np.zeros((max(m - 1, 0), 4))
    for t in range(m - 1):
        masked = np.where(active[:, None] & active[None, :], dist, np.inf)
        a, b = np.unravel_index(np.argmin(masked), masked.shape)
        a, b = min(a, b), max(a, b)
        h = dist[a, b]
        na, nb = sizes[a], sizes[b]
        Z[t] = (min(ids[a], ids[b]), max(ids[a], ids[b]), h, na + nb)
        new = (na * dist[a] + nb * dist[b]) / (na + nb)
        dist[a, :], dist[:, a] = new, new
        dist[a, a] = np.inf
        active[b] = False
        sizes[a] = na + nb
        ids[a] = m + t
    return Z


def cophenetic_distances(Z: np.ndarray) -> np.ndarray:
    """(m×m) cophenetic distance: the height at which samples i and j first share a cluster."""
    m = Z.shape[0] + 1
    members = {i: [i] for i in range(m)}
    C = np.zeros((m, m))
    for t, (a, b, h, _) in enumerate(Z):
        A, B = members.pop(int(a)), members.pop(int(b))
        C[np.ix_(A, B)] = h
        C[np.ix_(B, A)] = h
        members[m + t] = A + B
    return C


def cophenetic_correlation(C) -> float:
    """Brunet et al.'s cophenetic correlation of a consensus matrix C (m×m, entries in [0,1]).

    Pearson correlation, over pairs i < j, between 1 − C_ij and the cophenetic distances of
    the average-linkage clustering of 1 − C.  1 for a perfectly block-structured C.
    """
    D = 1.0 - np.asarray(C, dtype=float)
    np.fill_diagonal(D, 0.0)
    coph = cophenetic_distances(average_linkage(D))
    iu = np.triu_indices(D.shape[0], 1)
    x, y = D[iu], coph[iu]
    if np.std(x) == 0 or np.std(y) == 0:
        return 1.0 if np.allclose(x, y) else float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def consensus_clusters(C, k: int) -> np.ndarray:
    """Labels 0…k−1 from cutting the average-linkage tree of 1 − C into ``k`` clusters."""
    D = 1.0 - np.asarray(C, dtype=float)
    np.fill_diagonal(D, 0.0)
    m = D.shape[0]
    if not 1 <= k <= m:
        raise ValueError(f"k must be in [1, {m}], got {k}")
    Z = average_linkage(D)
    members = {i: [i] for i in range(m)}
    for t in range(m - k):
        a, b = int(Z[t, 0]), int(Z[t, 1])
        members[m + t] = members.pop(a) + members.pop(b)
    labels = np.empty(m, dtype=int)
    for label, idx in enumerate(sorted(members.values(), key=min)):
        labels[idx] = label
    return labels


def dispersion(C) -> float:
    """Kim & Park's dispersion (1/m²) Σ_ij 4 (C_ij − ½)²: 1 for a 0/1 consensus matrix."""
    C = np.asarray(C, dtype=float)
    return float(np.mean(4.0 * (C - 0.5) ** 2))


class Consensus(NamedTuple):
    """Per rank (K): consensus matrices (K, m, m), cophenetic correlation, dispersion."""

    ranks: np.ndarray
    matrices: np.ndarray
    cophenetic: np.ndarray
    dispersion: np.ndarray


def consensus(sweep: RankSweep) -> Consensus:
    """Consensus matrix, cophenetic correlation and dispersion at every rank of ``sweep``.

    Restarts whose objective is not finite are left out.
    """
    mats, coph, disp = [], [], []
    for r in sweep.ranks:
        sols = sweep.restarts(r)
        ok = np.isfinite(np.asarray(sols.objective))
        C = np.asarray(consensus_matrix(sols.H[ok]))
        mats.append(C)
        coph.append(cophenetic_correlation(C))
        disp.append(dispersion(C))
    return Consensus(np.asarray(sweep.ranks), np.stack(mats), np.asarray(coph), np.asarray(disp))


def cluster_labels(H) -> np.ndarray:
    """Sample labels argmax_k H_kj (H is r×m)."""
    return np.asarray(jnp.argmax(jnp.asarray(H), axis=0))


def cluster_accuracy(labels, truth) -> float:
    """Fraction of samples whose cluster, mapped one-to-one onto classes, is their class.

    The cluster-to-class map maximizes the agreement (Hungarian algorithm on the
    contingency table).
    """
    labels, truth = np.asarray(labels), np.asarray(truth)
    _, li = np.unique(labels, return_inverse=True)
    _, ti = np.unique(truth, return_inverse=True)
    table = np.zeros((li.max() + 1, ti.max() + 1))
    np.add.at(table, (li, ti), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / labels.size)


# ------------------------------------------------------------------------------ stability


def linear_sum_assignment(cost) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment of rows to columns (Hungarian algorithm, O(n² m)).

    For an n×m cost matrix, returns (rows, cols) with min(n, m) pairs, rows increasing,
    minimizing Σ cost[rows, cols] — the contract of ``scipy.optimize.linear_sum_assignment``.
    Shortest augmenting paths with row/column potentials (Kuhn-Munkres as refined by
    Jonker & Volgenant), one row at a time.
    """
    cost = np.asarray(cost, dtype=float)
    if cost.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {cost.shape}")
    if not np.isfinite(cost).all():
        raise ValueError("cost has non-finite entries")
    transposed = cost.shape[0] > cost.shape[1]
    a = cost.T if transposed else cost
    n, m = a.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=int)  # owner[j] = row (1-based) matched to column j; 0 = free
    way = np.zeros(m + 1, dtype=int)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            cur = a[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:] = np.where(better, cur, minv[1:])
            way[1:] = np.where(better, j0, way[1:])
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            minv[~used] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = np.nonzero(owner[1:])[0]
    rows = owner[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order], cols[order]


def _unit_columns(W: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(W, axis=0)
    return W / np.where(norms > 0, norms, 1.0)


def align_components(Ws, Hs, reference: int = 0):
    """Permute every restart's components to match restart ``reference``.

    Ws (R, n, r), Hs (R, r, m).  For restart i the permutation π maximizes
    Σ_k cos(W_ref[:, k], W_i[:, π(k)]) (Hungarian algorithm).  Returns the permuted
    Ws, Hs and the matched cosine similarities (R, r).
    """
    Ws, Hs = np.asarray(Ws), np.asarray(Hs)
    ref = _unit_columns(Ws[reference])
    Wa, Ha, sims = np.empty_like(Ws), np.empty_like(Hs), np.empty(Ws.shape[::2])
    for i in range(Ws.shape[0]):
        S = ref.T @ _unit_columns(Ws[i])
        _, perm = linear_sum_assignment(-S)
        Wa[i], Ha[i] = Ws[i][:, perm], Hs[i][perm]
        sims[i] = S[np.arange(S.shape[0]), perm]
    return Wa, Ha, sims


class Stability(NamedTuple):
    """Per rank: ``score`` (K,) = mean matched cosine similarity of W's columns between each
    restart and the best one (1 = every restart finds the same components); ``similarities``
    {rank: (R, r)}; ``W``, ``H`` {rank: consensus factors}: the aligned restarts, each
    column of W scaled to unit sum (H's rows scaled inversely, WH unchanged), averaged."""

    ranks: np.ndarray
    score: np.ndarray
    similarities: dict
    W: dict
    H: dict


def stability(sweep: RankSweep) -> Stability:
    """Align components across restarts at each rank; stability score and consensus factors.

    Restarts with a non-finite objective are left out; the best restart is the reference
    (its own similarity, 1, is excluded from the score when there are other restarts).
    """
    scores, sims, Wc, Hc = [], {}, {}, {}
    for r in sweep.ranks:
        sols = sweep.restarts(r)
        obj = np.asarray(sols.objective)
        ok = np.isfinite(obj)
        Ws, Hs = np.asarray(sols.W)[ok], np.asarray(sols.H)[ok]
        ref = int(np.argmin(obj[ok]))
        Wa, Ha, s = align_components(Ws, Hs, ref)
        others = np.delete(s, ref, axis=0) if s.shape[0] > 1 else s
        scores.append(float(others.mean()))
        sums = Wa.sum(axis=1, keepdims=True)
        scale = np.where(sums > 0, sums, 1.0)
        Wc[r] = (Wa / scale).mean(axis=0)
        Hc[r] = (Ha * np.swapaxes(scale, 1, 2)).mean(axis=0)
        sims[r] = s
    return Stability(np.asarray(sweep.ranks), np.asarray(scores), sims, Wc, Hc)


__all__ = [
    "Consensus",
    "ErrorCurve",
    "ImputationCV",
    "Stability",
    "align_components",
    "average_linkage",
    "cluster_accuracy",
    "cluster_labels",
    "connectivity",
    "consensus",
    "consensus_clusters",
    "consensus_matrix",
    "cophenetic_correlation",
    "cophenetic_distances",
    "dispersion",
    "error_curve",
    "holdout_masks",
    "imputation_cv",
    "linear_sum_assignment",
    "stability",
]
