"""Choosing the rank: error curves, held-out imputation, consensus and restart stability.

* ``error_curve(sweep)`` (``curve.py``): the final objective versus rank (the elbow) with
  its spread over restarts.
* ``imputation_cv(V, ranks, ...)`` (``cv.py``): k random masks of entries; each fold fits
  on the other entries and measures the mean β-divergence over its held-out entries; the
  rank with the smallest mean held-out error is picked.
* ``consensus(sweep)`` (``consensus.py``): per rank, the consensus matrix C (m×m) of the
  restarts' argmax clusterings, its cophenetic correlation (Brunet et al., PNAS 2004) and
  dispersion (Kim & Park, Bioinformatics 2007); consensus clusters; cluster accuracy.
* ``stability(sweep)`` (``stability.py``): components of every restart matched to the best
  restart on the cosine similarity of W's columns; mean matched similarity and consensus
  factors.

Linkage, cophenetic distances and matching are SciPy's (``scipy.cluster.hierarchy``,
``scipy.optimize.linear_sum_assignment``).
"""

from scipy.optimize import linear_sum_assignment

from jnmf.select.consensus import (
    Consensus,
    average_linkage,
    cluster_accuracy,
    cluster_labels,
    connectivity,
    consensus,
    consensus_clusters,
    consensus_matrix,
    cophenetic_correlation,
    cophenetic_distances,
    dispersion,
)
from jnmf.select.curve import ErrorCurve, error_curve
from jnmf.select.cv import ImputationCV, holdout_masks, imputation_cv
from jnmf.select.stability import Stability, align_components, stability

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
