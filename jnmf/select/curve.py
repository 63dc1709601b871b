"""The error curve: the final objective of a rank sweep versus rank, with its spread."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jnmf.sweep import RankSweep


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
