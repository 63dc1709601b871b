"""The ``NMF`` class (see the package docstring for its conventions)."""

from __future__ import annotations

import contextlib
import numbers
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jnmf.batch import restart_keys
from jnmf.checks import check_nonneg_scalar, check_positive_int
from jnmf.divergence import BetaDivergence
from jnmf.estimator import _checks, _output
from jnmf.estimator._base import ScikitLearnProtocol
from jnmf.init import host_initialize, initialize
from jnmf.problem import Factors, Problem, divergence_value, make_problem
from jnmf.program import Program, solve_work
from jnmf.solve import Budget, Status, check_scale, solve
from jnmf.solvers import (
    HALS,
    SOLVERS,
    AbstractAlternatingSolver,
    MultiplicativeUpdate,
    get_solver,
)

_SOLVER_ALIASES = {"cd": "hals"}
_CHECK_EVERY = 10
_STATIC_BETAS = (0.0, 1.0, 2.0)
_INITS = (None, "random", "nndsvd", "nndsvda", "nndsvdar", "custom")
HOST_START_WORK = 1 << 20


def _init_work(key, problem, rank, method) -> int:
    return solve_work(problem.shape, rank, 1)


_init_program = Program(initialize, _init_work)


def _solve_and_divergence(problem, solver, factors: Factors, budget: Budget):
    """``solve`` and D_β(X | WH) of its result, in one compiled program."""
    solution = solve(problem, solver, factors, budget)
    return solution, divergence_value(problem, solution.W, solution.H)


def _solve_work(problem, solver, factors: Factors, budget: Budget) -> int:
    return solve_work(problem.shape, factors.W.shape[1], budget.max_iter)


_solve_program = Program(_solve_and_divergence, _solve_work)


def _precision(dtype):
    """float64 data are computed in float64: JAX's x64 switched on for this call only."""
    if np.dtype(dtype) == np.float64 and not jax.config.jax_enable_x64:
        return jax.enable_x64(True)
    return contextlib.nullcontext()


class NMF(ScikitLearnProtocol):
    """Non-negative matrix factorization X ≈ W H with scikit-learn's interface.

    Args:
        n_components: r; "auto" is n_features, or the number of rows of H with
            ``init="custom"``; None is n_features.
        init: None, "random", "nndsvd", "nndsvda", "nndsvdar" or "custom".
        solver: "auto" (HALS at β = 2, else "mu"), "mu" (multiplicative updates, every
            β), "cd" (= "hals", β = 2) or any name in ``jnmf.SOLVERS``.
        beta_loss: "frobenius", "kullback-leibler", "itakura-saito" or a real β.
        tol, max_iter: stopping tolerance and iteration budget.
        random_state: None, an int or a ``numpy.random.RandomState`` (it draws the seed of
            JAX's generator).
        alpha_W, alpha_H, l1_ratio: regularization, scaled as scikit-learn does.
        verbose: print the objective and KKT residual of every evaluation after a fit.
        shuffle: accepted for scikit-learn's signature; jnmf's HALS sweeps the components
            in order, so ``shuffle=True`` warns and changes nothing.

    Fitted attributes: ``components_`` (r × n_features), ``n_components_``,
    ``reconstruction_err_``, ``n_iter_``, ``n_features_in_``, ``feature_names_in_`` (data
    frames with string column names), ``solution_`` (jnmf's ``Solution`` of the fit).

    Sparse X (SciPy sparse or JAX BCOO) stays sparse: it is factorized without an
    n_samples × n_features array (``jnmf.sparse``), in ``fit`` and ``transform`` alike; the
    solvers that keep a dense model (``kl-cd``, ``kl-dna``) refuse it, and so does
    ``beta_loss`` ≤ 0 (X is zero off its stored entries).
    """

    def __init__(
        self,
        n_components="auto",
        *,
        init=None,
        solver="auto",
        beta_loss="frobenius",
        tol=1e-4,
        max_iter=200,
        random_state=None,
        alpha_W=0.0,
        alpha_H="same",
        l1_ratio=0.0,
        verbose=0,
        shuffle=False,
    ):
        self.n_components = n_components
        self.init = init
        self.solver = solver
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.verbose = verbose
        self.shuffle = shuffle

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y=None, W=None, H=None) -> NMF:
        """Learn ``components_`` from X (n_samples × n_features); returns self."""
        self._fit(X, W, H)
        return self

    def fit_transform(self, X, y=None, W=None, H=None):
        """Learn ``components_`` from X and return the W of that fit (n_samples × r)."""
        return _output.wrap(self, self._fit(X, W, H), X)

    def transform(self, X):
        """W ≥ 0 minimizing the penalized D_β(X | W · components_), n_samples × r."""
        H = self._fitted()
        names = _checks.feature_names(X)
        data = _checks.as_data(X, keep_sparse=True)
        _output.check_features(self, X, names, data.shape[1], reset=False)
        with _precision(data.dtype):
            W, *_ = self._fit_transform(data, None, H.astype(data.dtype), update_H=False)
        return _output.wrap(self, W, X)

    def inverse_transform(self, X) -> np.ndarray:
        """The reconstruction W · components_ (n_samples × n_features) of W = ``X``."""
        H = self._fitted()
        W = np.asarray(X)
        if W.ndim != 2 or W.shape[1] != H.shape[0]:
            raise ValueError(
                f"inverse_transform needs W of shape (n_samples, {H.shape[0]}), got {W.shape}"
            )
        return W @ H

    def _fit(self, X, W, H) -> np.ndarray:
        names = _checks.feature_names(X)
        data = _checks.as_data(X, keep_sparse=True)
        _output.check_features(self, X, names, data.shape[1], reset=True)
        start = time.perf_counter()
        with _precision(data.dtype):
            W_fit, H_fit, solution, divergence = self._fit_transform(data, W, H, update_H=True)
        self.reconstruction_err_ = float(np.sqrt(2.0 * max(float(divergence), 0.0)))
        self.components_ = H_fit
        self.n_components_ = H_fit.shape[0]
        self.n_iter_ = int(solution.n_iter)
        self.solution_ = solution
        if self.verbose:
            self._report(solution, time.perf_counter() - start)
        return W_fit

    def _fit_transform(self, X, W, H, update_H: bool):
        """(W, H, Solution, D_β(X | WH)) of a fit of X (checked data: NumPy or SciPy CSR), or
        of W alone with H fixed."""
        n_samples, n_features = X.shape
        beta = self._beta()
        solver = self._solver_name(beta)
        penalties = self._penalties(n_samples, n_features)
        self._check_budget()
        if self.shuffle and solver == "hals":
            warnings.warn(
                "shuffle=True has no effect: jnmf's HALS updates the components in order",
                UserWarning,
                stacklevel=4,
            )
        if beta <= 0 and _checks.zero_count(X) > 0:
            raise ValueError(
                "When beta_loss <= 0 and X contains zeros, the solver may diverge. Please add "
                f"small values to X, or use a positive beta_loss (β = {beta:g}: d_β(0 | y) is "
                "undefined)."
            )
        if not update_H:
            if W is not None:
                warnings.warn(
                    "When update_H=False, the provided initial W is not used.",
                    RuntimeWarning,
                    stacklevel=4,
                )
            if H is None:
                raise ValueError("update_H=False needs H (the fixed components)")
            H = _checks.custom_factor(
                H, (self._rank(n_features, H), n_features), "NMF (input H)", X.dtype
            )
            solution, divergence = self._solve_W(X, H, beta, solver, penalties)
            return np.asarray(solution.W), H, solution, divergence
        rank = self._rank(n_features, H if self.init == "custom" else None)
        init = self._start(X, rank, W, H)
        problem = _problem(X, beta, penalties)
        if isinstance(init, str):  # its own small program: the fit's is shared by every init
            init = _draw_start(self._seed(), problem, rank, init, X)
        solution, divergence = _run(problem, get_solver(solver), Factors(*init), self._budget())
        self._warn_status(solution, "fit")
        return np.asarray(solution.W), np.asarray(solution.H), solution, divergence

    def _solve_W(self, X, H, beta, solver: str, penalties):
        """W ≥ 0 minimizing the penalized D_β(X | W H) with H fixed, from W = √(mean X / r)."""
        rank = H.shape[0]
        some = _checks.zero_count(X) < X.shape[0] * X.shape[1]
        level = np.sqrt(X.mean() / rank) if some else 1.0
        W0 = np.full((X.shape[0], rank), level, X.dtype)
        problem = _problem(X, beta, penalties)
        solver = _held_H_solver(solver, beta)
        solution, divergence = _run(problem, solver, Factors(W0, H), self._budget())
        self._warn_status(solution, "transform")
        return solution, divergence

    def _budget(self) -> Budget:
        return Budget(max_iter=int(self.max_iter), tol=float(self.tol), every=_CHECK_EVERY)

    # ------------------------------------------------------------------ helpers

    def _fitted(self) -> np.ndarray:
        if not hasattr(self, "components_"):
            raise _not_fitted_error(self)
        return self.components_

    def _rank(self, n_features: int, H) -> int:
        r = self.n_components
        if isinstance(r, str) and r == "auto":
            return int(np.shape(H)[0]) if H is not None and np.ndim(H) == 2 else n_features
        if r is None:
            return n_features
        if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 1:
            raise ValueError(
                f"The 'n_components' parameter of NMF must be an int in the range [1, inf), "
                f"None or 'auto'. Got {r!r} instead."
            )
        return int(r)

    def _beta(self) -> float:
        beta = BetaDivergence(self.beta_loss).beta  # raises ValueError naming the names
        if not isinstance(beta, float):
            raise ValueError(f"beta_loss must be a real number or a name, got {self.beta_loss!r}")
        return beta

    def _solver_name(self, beta: float) -> str:
        if not isinstance(self.solver, str):
            raise ValueError(f"solver must be a name, got {self.solver!r}")
        if self.solver == "auto":
            return "hals" if beta == 2.0 else "mu"
        name = _SOLVER_ALIASES.get(self.solver, self.solver)
        if name not in SOLVERS:
            raise ValueError(
                f"unknown solver {self.solver!r}: use 'auto', one of {sorted(SOLVERS)} or 'cd' "
                "(= hals)"
            )
        betas = SOLVERS[name].betas
        if betas is not None and beta not in betas:
            handled = " or ".join(f"{b:g}" for b in betas)
            raise ValueError(
                f"Invalid beta_loss parameter: solver {self.solver!r} does not handle "
                f"beta_loss = {beta!r}; it handles only β = {handled}; solver='mu' handles "
                "every β"
            )
        return name

    def _start(self, X, rank: int, W, H):
        init = self.init
        n_samples, n_features = X.shape
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}")
        if init == "custom":
            if W is None or H is None:
                raise ValueError("init='custom' needs both W and H: fit(X, W=W0, H=H0)")
            H = _checks.custom_factor(H, (rank, n_features), "NMF (input H)", X.dtype)
            W = _checks.custom_factor(W, (n_samples, rank), "NMF (input W)", X.dtype)
            return (W, H)
        if W is not None or H is not None:
            warnings.warn(
                "When init!='custom', provided W or H are ignored. Set init='custom' to use "
                "them as initialization.",
                RuntimeWarning,
                stacklevel=5,
            )
        if init is None:
            return "nndsvda" if rank <= min(n_samples, n_features) else "random"
        if init.startswith("nndsvd") and rank > min(n_samples, n_features):
            raise ValueError(
                f"init = '{init}' can only be used when n_components <= min(n_samples, "
                f"n_features); here n_components = {rank} and X is {n_samples} × "
                f"{n_features}. Use init='random' for more components."
            )
        return init

    def _penalties(self, n_samples: int, n_features: int) -> tuple[float, float, float, float]:
        alpha_H = self.alpha_H
        same = isinstance(alpha_H, str) and alpha_H == "same"
        alpha_W = check_nonneg_scalar("alpha_W", self.alpha_W)
        alpha_H = alpha_W if same else check_nonneg_scalar("alpha_H", alpha_H)
        ratio = check_nonneg_scalar("l1_ratio", self.l1_ratio)
        if ratio > 1:
            raise ValueError(f"l1_ratio must be in [0, 1], got {ratio!r}")
        return (
            n_features * alpha_W * ratio,
            n_features * alpha_W * (1.0 - ratio),
            n_samples * alpha_H * ratio,
            n_samples * alpha_H * (1.0 - ratio),
        )

    def _check_budget(self) -> None:
        check_positive_int("max_iter", self.max_iter)
        check_nonneg_scalar("tol", self.tol)

    def _seed(self) -> int:
        rs = self.random_state
        if rs is None:
            return int(np.random.randint(2**31 - 1))
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(2**31 - 1))
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool):
            return int(rs)
        raise ValueError(f"random_state must be None, an int or a RandomState, got {rs!r}")

    def _warn_status(self, solution, what: str) -> None:
        """scikit-learn's ConvergenceWarning (n_iter = max_iter with tol > 0, or a stall); a
        RuntimeWarning naming the iterations when the solve turned non-finite."""
        n_iter = int(solution.n_iter)
        if bool(solution.status == Status.NONFINITE):
            warnings.warn(
                f"NMF {what}: a non-finite value (NaN or ±inf in W, H or the β-divergence) "
                f"appeared between iterations {n_iter + 1} and {n_iter + _CHECK_EVERY}; the "
                f"factors of iteration {n_iter}, the last finite ones, are returned. "
                "Check the data's scale, beta_loss and the penalties, or use solver='mu'.",
                RuntimeWarning,
                stacklevel=5,
            )
        elif bool(solution.status == Status.STALLED):
            warnings.warn(
                f"NMF {what} stalled at iteration {n_iter}: the factors stopped changing while "
                f"the KKT residual stayed large ({solution.message}). Try another solver or "
                "init.",
                convergence_warning(),
                stacklevel=5,
            )
        elif n_iter == int(self.max_iter) and float(self.tol) > 0:
            warnings.warn(
                f"Maximum number of iterations {n_iter} reached. Increase it to improve "
                f"convergence. (NMF {what}: the relative decrease of the objective per "
                f"iteration was still above tol = {float(self.tol):g}.)",
                convergence_warning(),
                stacklevel=5,
            )

    def _report(self, solution, seconds: float) -> None:
        history = solution.history
        objective = np.asarray(history.objective)
        kkt = np.asarray(history.kkt)
        for it, f, k in zip(history.iterations(), objective, kkt, strict=True):
            if np.isnan(f):
                break
            print(f"iteration {int(it):5d}: objective {f:.6g}, relative KKT residual {k:.3g}")
        print(
            f"NMF fit: {int(solution.n_iter)} iterations in {seconds:.3f} s, "
            f"reconstruction error {self.reconstruction_err_:.6g}; {solution.message}"
        )


def _problem(X, beta: float, penalties):
    """The ``Problem``; β other than 0, 1, 2 (the static fast paths) goes in as a 0-d array,
    so every such β shares one compiled program (same iterates to rounding)."""
    l1_W, l2_W, l1_H, l2_H = penalties
    if beta not in _STATIC_BETAS:
        beta = jnp.asarray(beta, X.dtype)
    return make_problem(X, beta, l1_W=l1_W, l1_H=l1_H, l2_W=l2_W, l2_H=l2_H)


def _draw_start(seed, problem: Problem, rank: int, method: str, X) -> Factors:
    """The start named ``method`` from ``seed`` for the checked data X (NumPy or SciPy).

    Up to ``HOST_START_WORK`` = n·m·r the start comes from NumPy on the host
    (``jnmf.init.host_initialize``, a sparse X densified): nothing to compile, and compiling
    was nearly all that a small start cost (0.1–0.25 s).  The choice depends on the shape
    only, so dense and sparse X of one shape start alike.  Larger starts are their own
    compiled program reading only V, shared by every β and penalty on data of one shape.
    """
    if solve_work(problem.shape, rank, 1) <= HOST_START_WORK:
        dense = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        rng = np.random.default_rng(seed)
        return Factors(*host_initialize(rng, dense.astype(problem.dtype), rank, method))
    zero = jnp.zeros((), problem.dtype)
    data_only = problem.replace(
        divergence=BetaDivergence(2.0), l1_W=zero, l1_H=zero, l2_W=zero, l2_H=zero
    )
    return _init_program(restart_keys(seed, 1)[0], data_only, rank, method)


def _run(problem, solver, factors: Factors, budget: Budget):
    """(Solution, D_β(X | WH)): ``solve`` compiled once per shape, dtype and solver; its
    Python-side checks of the problem first (inside the compiled program they see only
    shapes)."""
    solver.check(problem)
    check_scale(problem)
    return _solve_program(problem, solver, factors, budget)


def _held_H_solver(solver: str, beta: float) -> AbstractAlternatingSolver:
    """The solver of the W-subproblem: HALS at β = 2 (exact coordinate minimization), else
    the fitting solver with H held fixed when it alternates, else multiplicative updates."""
    if beta == 2.0:
        return HALS(update_H=False)
    cls = SOLVERS[solver]
    if issubclass(cls, AbstractAlternatingSolver):
        return cls(update_H=False)
    return MultiplicativeUpdate(update_H=False)


class _ConvergenceWarning(UserWarning):
    """The fit stopped at max_iter before its stopping rule was met (used without sklearn)."""


def convergence_warning() -> type[Warning]:
    """scikit-learn's ConvergenceWarning when it is installed, else jnmf's stand-in."""
    try:
        from sklearn.exceptions import ConvergenceWarning
    except ImportError:
        return _ConvergenceWarning
    return ConvergenceWarning


def _not_fitted_error(estimator) -> Exception:
    """scikit-learn's NotFittedError when it is installed (it subclasses ValueError)."""
    message = (
        f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
        "appropriate arguments before using this estimator."
    )
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:
        return ValueError(message)
    return NotFittedError(message)
