"""A scikit-learn-compatible ``NMF`` estimator: a thin shell over ``jnmf.nmf`` and ``jnmf.solve``.

scikit-learn's X is samples × features and X ≈ W H with W samples × r and H = ``components_``
r × features; jnmf's V ≈ W H is the same product, so V = X, W = W and H = ``components_``.

Conventions taken from ``sklearn.decomposition.NMF``:

* penalties scaled by the data size: l1_W = n_features·α_W·ρ, l2_W = n_features·α_W·(1 − ρ),
  l1_H = n_samples·α_H·ρ, l2_H = n_samples·α_H·(1 − ρ) (ρ = ``l1_ratio``; α_H = "same" means
  α_W), in the objective D_β(X | WH) + l1‖·‖₁ + ½ l2‖·‖²;
* ``init=None`` is "nndsvda" when n_components ≤ min(n_samples, n_features), else "random";
  "custom" takes ``W`` and ``H`` from ``fit(X, W=..., H=...)``;
* ``reconstruction_err_`` = √(2·D_β(X | WH)) (penalties excluded);
* ``transform`` solves for W with H = ``components_`` fixed, multiplicative updates from the
  constant W = √(mean X / r), whatever the fitting solver (no other solver here holds a factor
  fixed).

Where it differs: the stopping test is jnmf's (relative decrease of the objective between
checks every 10 iterations, ``solve``), not scikit-learn's (decrease of √(2D) between checks
relative to its initial value), and it is stricter: with the same ``tol`` jnmf runs as many
iterations or more and ends with an error no larger.  With ``tol=0`` both run exactly
``max_iter`` iterations and, for ``solver="mu"`` from the same start, give the same factors
(to rounding) for every β without L2 and for β ≥ 2 with it (for β < 2 with L2, jnmf's step is
an exact majorize-minimize step and scikit-learn's is not).  ``transform`` with
β = 1 and L1 on W also differs: scikit-learn 1.9 adds l1_reg_W in place to a cached row sum
of H, so its penalty grows by l1_reg_W at every iteration; here W converges to the KKT point
of the stated objective.
``random_state`` seeds JAX's generator, so random starts differ from scikit-learn's.  Sparse X
(e.g. from ``TfidfVectorizer``) is densified.  ``solver`` is any name in ``jnmf.SOLVERS``
("cd" is read as "hals").

scikit-learn is never imported here: ``get_params``/``set_params`` follow its convention (the
``__init__`` arguments stored verbatim), so ``sklearn.base.clone`` and ``Pipeline`` work.
"""

from __future__ import annotations

import inspect
import numbers
import warnings

import equinox as eqx
import numpy as np

from jnmf.api import nmf
from jnmf.checks import as_float_array, check_nonneg_scalar, check_positive_int
from jnmf.divergence import BetaDivergence
from jnmf.problem import Factors, make_problem
from jnmf.solve import Budget, Status, solve
from jnmf.solvers import SOLVERS, MultiplicativeUpdate

_SOLVER_ALIASES = {"cd": "hals"}
_CHECK_EVERY = 10


class NMF:
    """Non-negative matrix factorization X ≈ W H with scikit-learn's interface.

    Args:
        n_components: r; None (or "auto" without custom factors) means n_features, "auto"
            with ``init="custom"`` takes r from the given H.
        beta_loss: "frobenius", "kullback-leibler", "itakura-saito" or a real β.
        solver: "mu" (multiplicative updates, every β), "cd" (= "hals") or any name in
            ``jnmf.SOLVERS``.
        init: None, "random", "nndsvd", "nndsvda", "nndsvdar" or "custom".
        alpha_W, alpha_H, l1_ratio: regularization, scaled as scikit-learn does.
        max_iter, tol: iteration budget and stopping tolerance.
        random_state: None, an int or a ``numpy.random.RandomState`` (used to draw the seed
            of JAX's generator).

    Fitted attributes: ``components_`` (r × n_features), ``n_components_``,
    ``reconstruction_err_``, ``n_iter_``, ``n_features_in_``, ``solution_`` (jnmf's
    ``Solution`` with its history and status).
    """

    def __init__(
        self,
        n_components="auto",
        *,
        beta_loss="frobenius",
        solver="mu",
        init=None,
        alpha_W=0.0,
        alpha_H="same",
        l1_ratio=0.0,
        max_iter=200,
        tol=1e-4,
        random_state=None,
    ):
        self.n_components = n_components
        self.beta_loss = beta_loss
        self.solver = solver
        self.init = init
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    # ------------------------------------------------------------------ scikit-learn protocol

    @classmethod
    def _get_param_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in params if p.name != "self")

    def get_params(self, deep: bool = True) -> dict:
        """The constructor arguments, as given (scikit-learn's convention)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params) -> NMF:
        """Set constructor arguments by name; returns self."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for NMF; valid parameters are {valid}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        default = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
        }
        changed = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if not (v is default[k] or (type(v) is type(default[k]) and v == default[k]))
        ]
        return f"NMF({', '.join(changed)})"

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(),
            input_tags=InputTags(sparse=True, positive_only=True),
            requires_fit=True,
        )

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y=None, W=None, H=None) -> NMF:
        """Learn ``components_`` from X (n_samples × n_features); returns self."""
        self.fit_transform(X, W=W, H=H)
        return self

    def fit_transform(self, X, y=None, W=None, H=None) -> np.ndarray:
        """Learn ``components_`` from X and return W (n_samples × n_components)."""
        X = _as_data(X)
        n_samples, n_features = X.shape
        rank = self._rank(X, H)
        beta, solver = self._beta(), self._solver()
        init = self._start(X, rank, W, H)
        l1_W, l2_W, l1_H, l2_H = self._penalties(n_samples, n_features)
        self._check_budget()
        solution = nmf(
            X,
            rank,
            beta=beta,
            solver=solver,
            init=init,
            max_iter=int(self.max_iter),
            tol=float(self.tol),
            key=self._seed(),
            l1_W=l1_W,
            l1_H=l1_H,
            l2_W=l2_W,
            l2_H=l2_H,
            every=_CHECK_EVERY,
        )
        W_fit = np.asarray(solution.W)
        self.components_ = np.asarray(solution.H)
        self.n_components_ = rank
        self.n_features_in_ = n_features
        self.n_iter_ = int(solution.n_iter)
        self.reconstruction_err_ = self._error(X, W_fit, self.components_)
        self.solution_ = solution
        _warn_status(solution, "fit")
        return W_fit

    def transform(self, X) -> np.ndarray:
        """W ≥ 0 minimizing the penalized D_β(X | W · components_), n_samples × n_components."""
        H = self._fitted()
        X = _as_data(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but NMF was fitted with {self.n_features_in_}"
            )
        n_samples, n_features = X.shape
        rank = self.n_components_
        l1_W, l2_W, l1_H, l2_H = self._penalties(n_samples, n_features)
        problem = make_problem(X, self._beta(), l1_W=l1_W, l1_H=l1_H, l2_W=l2_W, l2_H=l2_H)
        H = np.asarray(H, problem.dtype)
        W0 = np.full((n_samples, rank), np.sqrt(np.mean(np.asarray(X)) / rank), problem.dtype)
        budget = Budget(max_iter=int(self.max_iter), tol=float(self.tol), every=_CHECK_EVERY)
        solution = _transform_program(
            problem, MultiplicativeUpdate(update_H=False), Factors(W0, H), budget
        )
        _warn_status(solution, "transform")
        return np.asarray(solution.W)

    def inverse_transform(self, X) -> np.ndarray:
        """The reconstruction W · components_ (n_samples × n_features) of W = ``X``."""
        H = self._fitted()
        W = np.asarray(X)
        if W.ndim != 2 or W.shape[1] != H.shape[0]:
            raise ValueError(
                f"inverse_transform needs W of shape (n_samples, {H.shape[0]}), got {W.shape}"
            )
        return W @ H

    # ------------------------------------------------------------------ helpers

    def _fitted(self) -> np.ndarray:
        if not hasattr(self, "components_"):
            raise _not_fitted_error()
        return self.components_

    def _rank(self, X, H) -> int:
        r = self.n_components
        if r == "auto":
            if self.init == "custom" and H is not None:
                return int(np.shape(H)[0])
            return X.shape[1]
        if r is None:
            return X.shape[1]
        if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 1:
            raise ValueError(f"n_components must be an integer ≥ 1, None or 'auto', got {r!r}")
        return int(r)

    def _beta(self):
        beta = self.beta_loss
        BetaDivergence(beta)  # raises ValueError naming the accepted values
        return beta

    def _solver(self) -> str:
        name = _SOLVER_ALIASES.get(self.solver, self.solver)
        if name not in SOLVERS:
            raise ValueError(
                f"unknown solver {self.solver!r}: use one of {sorted(SOLVERS)} or 'cd' (= hals)"
            )
        return name

    def _start(self, X, rank: int, W, H):
        init = self.init
        n_samples, n_features = X.shape
        if init == "custom":
            if W is None or H is None:
                raise ValueError("init='custom' needs both W and H: fit(X, W=W0, H=H0)")
            return (np.asarray(W), np.asarray(H))
        if W is not None or H is not None:
            raise ValueError("W and H are used only with init='custom'")
        if init is None:
            return "nndsvda" if rank <= min(n_samples, n_features) else "random"
        return init  # validated by jnmf.nmf

    def _penalties(self, n_samples: int, n_features: int) -> tuple[float, float, float, float]:
        alpha_W = self.alpha_W
        alpha_H = (
            alpha_W
            if (isinstance(self.alpha_H, str) and self.alpha_H == "same")
            else (self.alpha_H)
        )
        ratio = self.l1_ratio
        alpha_W = check_nonneg_scalar("alpha_W", alpha_W)
        alpha_H = check_nonneg_scalar("alpha_H", alpha_H)
        ratio = check_nonneg_scalar("l1_ratio", ratio)
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

    def _error(self, X, W: np.ndarray, H: np.ndarray) -> float:
        divergence = BetaDivergence(self._beta())
        d = divergence.value(np.asarray(X), np.asarray(W) @ np.asarray(H), None)
        return float(np.sqrt(2.0 * max(float(d), 0.0)))


_transform_program = eqx.filter_jit(solve)

try:  # scikit-learn's own class when it is installed (it is not a dependency of jnmf)
    from sklearn.exceptions import ConvergenceWarning
except ImportError:  # pragma: no cover

    class ConvergenceWarning(UserWarning):
        """The fit stopped at max_iter before its stopping rule was met."""


def _warn_status(solution, what: str) -> None:
    """scikit-learn's ConvergenceWarning at max_iter; a RuntimeWarning when non-finite."""
    if bool(solution.status == Status.MAX_ITER):
        warnings.warn(
            f"{what}: maximum number of iterations {int(solution.n_iter)} reached before "
            "convergence; increase max_iter or tol",
            ConvergenceWarning,
            stacklevel=3,
        )
    elif bool(solution.status == Status.NONFINITE):
        warnings.warn(f"{what}: {solution.message}", RuntimeWarning, stacklevel=3)


def _as_data(X):
    """X as a dense 2-D float array, as ``jnmf.nmf`` sees it (sparse matrices are densified).

    Normalized by ``jnmf.checks.as_float_array`` (float16 → float32, subnormals → 0), so that
    ``reconstruction_err_`` is computed on the data that were fitted.
    """
    if hasattr(X, "toarray"):
        X = X.toarray()
    X = np.asarray(as_float_array(X, "X"))
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D (n_samples × n_features), got shape {X.shape}; "
            "reshape a single sample with X.reshape(1, -1)"
        )
    return X


def _not_fitted_error() -> Exception:
    """scikit-learn's NotFittedError when it is installed (it subclasses ValueError)."""
    message = "This NMF instance is not fitted yet; call 'fit' first."
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:
        return ValueError(message)
    return NotFittedError(message)
