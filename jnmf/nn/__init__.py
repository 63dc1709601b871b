"""The differentiable NMF layer: ``encode`` (codes on a fixed dictionary), ``factorize``
(a whole factorization), ``NMFLayer`` and hyperparameter gradients; every one is a call of
``jnmf.solve`` whose adjoint (``Unrolled`` or ``Implicit``, from ``jnmf.adjoint``) says how it
is differentiated."""

from jnmf.adjoint import Implicit, Unrolled, kkt_adjoint
from jnmf.nn.encode import ENCODE_SOLVERS, ProjectedGradientH, default_code_init, encode
from jnmf.nn.factorize import factorize
from jnmf.nn.layer import L1Path, NMFLayer, holdout_loss, tune_l1

__all__ = [
    "ENCODE_SOLVERS",
    "Implicit",
    "L1Path",
    "NMFLayer",
    "ProjectedGradientH",
    "Unrolled",
    "default_code_init",
    "encode",
    "factorize",
    "holdout_loss",
    "kkt_adjoint",
    "tune_l1",
]
