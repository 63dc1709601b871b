"""jnmf: non-negative matrix factorization in JAX, V ≈ W H with W, H ≥ 0."""

from jnmf import data, nn, select, shard, sparse
from jnmf.adjoint import Implicit, Unrolled
from jnmf.api import nmf
from jnmf.batch import best_of, restart_keys, solve_batch, solve_restarts
from jnmf.divergence import BetaDivergence, mm_exponent
from jnmf.estimator import NMF, MiniBatchNMF
from jnmf.init import initialize
from jnmf.minibatch import (
    MinibatchResult,
    MinibatchState,
    OnlineMU,
    minibatch_init,
    minibatch_nmf,
    minibatch_objective,
    minibatch_step,
)
from jnmf.nn import NMFLayer, encode
from jnmf.optimality import evaluate, gradients, kkt_residual
from jnmf.problem import Factors, Problem, make_problem, objective
from jnmf.solve import Budget, History, Solution, Status, solve
from jnmf.solvers import (
    ANLSBPP,
    HALS,
    SOLVERS,
    AbstractAlternatingSolver,
    AbstractSolver,
    AcceleratedHALS,
    KLCoordinateDescent,
    KLDiagonalNewton,
    MultiplicativeUpdate,
    Nesterov,
    OptaxProjectedGradient,
    ProjectedGradient,
    SparseHoyer,
)
from jnmf.solvers.hoyer import project_sparseness, sparseness
from jnmf.sweep import RankSweep, rank_sweep

__version__ = "0.1.0"

__all__ = [
    "shard",
    "sparse",
    "AbstractAlternatingSolver",
    "Budget",
    "solve_batch",
    "RankSweep",
    "rank_sweep",
    "select",
    "Implicit",
    "NMFLayer",
    "Unrolled",
    "encode",
    "nn",
    "ANLSBPP",
    "HALS",
    "AcceleratedHALS",
    "KLCoordinateDescent",
    "KLDiagonalNewton",
    "Nesterov",
    "OptaxProjectedGradient",
    "ProjectedGradient",
    "SparseHoyer",
    "project_sparseness",
    "sparseness",
    "AbstractSolver",
    "BetaDivergence",
    "Factors",
    "History",
    "MiniBatchNMF",
    "MinibatchResult",
    "MinibatchState",
    "MultiplicativeUpdate",
    "NMF",
    "OnlineMU",
    "minibatch_init",
    "minibatch_nmf",
    "minibatch_objective",
    "minibatch_step",
    "Problem",
    "SOLVERS",
    "Solution",
    "Status",
    "best_of",
    "data",
    "evaluate",
    "gradients",
    "initialize",
    "kkt_residual",
    "make_problem",
    "mm_exponent",
    "nmf",
    "objective",
    "restart_keys",
    "solve",
    "solve_restarts",
]
