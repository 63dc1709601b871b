"""Restart stability: do restarts at a rank find the same components?

The components of every restart are aligned to the best restart by a maximum-weight
matching (``scipy.optimize.linear_sum_assignment``) on the cosine similarity of W's
columns; the score is the mean matched similarity, and the aligned, scale-normalized,
averaged factors are the consensus factors.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from jnmf.select.consensus import finite_restarts
from jnmf.sweep import RankSweep


def _unit_columns(W: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(W, axis=0)
    return W / np.where(norms > 0, norms, 1.0)


def align_components(
    Ws: np.ndarray, Hs: np.ndarray, reference: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Permute every restart's components to match restart ``reference``.

    Ws (R, n, r), Hs (R, r, m).  For restart i the permutation π maximizes
    Σ_k cos(W_ref[:, k], W_i[:, π(k)]) (``linear_sum_assignment``).  Returns the permuted
    Ws, Hs and the matched cosine similarities (R, r).
    """
    Ws, Hs = np.asarray(Ws), np.asarray(Hs)
    if Ws.ndim != 3 or Hs.ndim != 3 or Ws.shape[0] != Hs.shape[0] or Ws.shape[2] != Hs.shape[1]:
        raise ValueError(
            f"Ws must be (R, n, r) and Hs (R, r, m) with the same R and r, got {Ws.shape} "
            f"and {Hs.shape}"
        )
    if not -Ws.shape[0] <= reference < Ws.shape[0]:
        raise ValueError(f"reference must index one of the {Ws.shape[0]} restarts, got {reference}")
    ref = _unit_columns(Ws[reference])
    Wa, Ha, sims = np.empty_like(Ws), np.empty_like(Hs), np.empty(Ws.shape[::2])
    for i in range(Ws.shape[0]):
        S = ref.T @ _unit_columns(Ws[i])
        _, perm = linear_sum_assignment(S, maximize=True)
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

    Restarts with a non-finite objective are left out, and every rank needs at least 2
    others (a ValueError otherwise: one restart matches itself, score 1 whatever the data).
    The best restart is the reference; its own similarity, 1, is excluded from the score.
    """
    scores, sims, Wc, Hc = [], {}, {}, {}
    for r in sweep.ranks:
        sols, ok = finite_restarts(sweep, r, "stability")
        obj = np.asarray(sols.objective)
        Ws, Hs = np.asarray(sols.W)[ok], np.asarray(sols.H)[ok]
        ref = int(np.argmin(obj[ok]))
        Wa, Ha, s = align_components(Ws, Hs, ref)
        scores.append(float(np.delete(s, ref, axis=0).mean()))
        sums = Wa.sum(axis=1, keepdims=True)
        scale = np.where(sums > 0, sums, 1.0)
        Wc[r] = (Wa / scale).mean(axis=0)
        Hc[r] = (Ha * np.swapaxes(scale, 1, 2)).mean(axis=0)
        sims[r] = s
    return Stability(np.asarray(sweep.ranks), np.asarray(scores), sims, Wc, Hc)
