"""``MiniBatchNMF``: scikit-learn's online NMF estimator over ``jnmf.minibatch``.

scikit-learn's X is samples × features; ``jnmf.minibatch`` streams the columns of V, so
V = Xᵀ: a minibatch of rows X_J is the column block V_J = X_Jᵀ, the dictionary W (features ×
r) is ``components_``ᵀ and the block's coefficients H_J are the rows W_J of scikit-learn's W.

Conventions taken from ``sklearn.decomposition.MiniBatchNMF``:

* a pass ("iteration") visits the rows in blocks of ``min(batch_size, n_samples)``, cycled;
  the statistics decay by ρ = forget_factor^(b/n_samples) per block;
* penalties scaled per block as scikit-learn does: the block's coefficients carry
  n_features·α_W (l1: ·l1_ratio, l2: ·(1 − l1_ratio)), the components b·α_H (α_H = "same"
  means α_W);
* per step, the block's coefficients get one multiplicative update from their previous value
  (``fresh_restarts=False``) or ``fresh_restarts_max_iter`` updates from the constant
  √(mean X_J / r) (``fresh_restarts=True``, and ``partial_fit``);
* stopping: after a step, ‖ΔH‖_F/‖H‖_F ≤ ``tol`` (H = ``components_``; not after a block of
  zeros, which leaves the components unchanged), or
  ``max_no_improvement`` steps without a new minimum of the exponentially weighted average
  of the per-sample batch cost (weight b/(n_samples + 1)); at most ``max_iter`` passes, with
  scikit-learn's ``ConvergenceWarning`` when they are all used and ``tol > 0``;
* ``fit_transform`` returns the fit's coefficients, or with ``fresh_restarts=True`` the
  ``transform`` of X by the final components (so the two agree exactly);
* ``transform`` solves min_{W ≥ 0} D_β(X | W·components_) + penalties with ``jnmf.NMF``'s
  held-components solve (HALS at β = 2, multiplicative updates otherwise) for at most
  ``transform_max_iter`` iterations (default ``max_iter``);
* ``reconstruction_err_`` = √(2·D_β(X | W·components_)) of the returned W;
* dtypes, input checks, messages, feature names and ``set_output`` as ``jnmf.NMF`` (float64
  computed in float64 with JAX's x64 switched on around the estimator's calls only).

Where it differs: the statistics start from A = H₀^(1/γ), B = 1 (scikit-learn: A = H₀) — the
same for β ∈ [1, 2]; a fresh-restart solve runs its ``fresh_restarts_max_iter`` updates
without scikit-learn's early stop on the change of W; ``transform`` at β = 2 solves the
subproblem exactly by HALS (scikit-learn: multiplicative updates); ``random_state`` seeds JAX's
generator; for β < 1 scikit-learn sets entries below float64's ε to 0 after each step, jnmf
does not (its ε guard on WH keeps the updates finite).
"""

from __future__ import annotations

import math
import numbers
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jnmf.checks import check_nonneg_scalar, check_positive_int
from jnmf.divergence import BetaDivergence
from jnmf.estimator import _checks, _output
from jnmf.estimator._base import ScikitLearnProtocol
from jnmf.estimator._nmf import (
    NMF,
    _draw_start,
    _not_fitted_error,
    _precision,
    _problem,
    convergence_warning,
)
from jnmf.minibatch import make_online_mu, minibatch_init, minibatch_step

_WHOM = "MiniBatchNMF (input X)"


@eqx.filter_jit
def _divergence(divergence: BetaDivergence, X, W, H):
    """D_β(X | W H), compiled (one small program per shape, not an eager op per step)."""
    return divergence.value(X, W @ H)


class MiniBatchNMF(ScikitLearnProtocol):
    """Online NMF X ≈ W H with scikit-learn's ``MiniBatchNMF`` interface (module docstring).

    Args:
        n_components: r; "auto" is n_features, or the number of rows of H with
            ``init="custom"``; None is n_features.
        init: None, "random", "nndsvd", "nndsvda", "nndsvdar" or "custom" (computed on the
            whole X by ``fit``, on the first batch by ``partial_fit``).
        batch_size: samples (rows of X) per minibatch.
        beta_loss: "frobenius", "kullback-leibler", "itakura-saito" or a real β.
        tol: stop when the relative change of ``components_`` in a step is ≤ tol.
        max_no_improvement: stop after this many steps without improvement of the smoothed
            batch cost (None: never).
        max_iter: the most passes over X.
        alpha_W, alpha_H, l1_ratio: regularization, scaled as scikit-learn does.
        forget_factor: in [0, 1], decay of the statistics per pass.
        fresh_restarts, fresh_restarts_max_iter: solve each batch's coefficients afresh with
            that many multiplicative updates (instead of one update from their last value).
        transform_max_iter: iterations of ``transform``'s solve (None: ``max_iter``).
        random_state: None, an int or a ``numpy.random.RandomState``.
        verbose: print the batch cost of every step.

    Fitted attributes: ``components_``, ``n_components_``, ``reconstruction_err_``,
    ``n_iter_`` (passes started), ``n_steps_`` (minibatches processed), ``n_features_in_``,
    ``feature_names_in_``.
    """

    def __init__(
        self,
        n_components="auto",
        *,
        init=None,
        batch_size=1024,
        beta_loss="frobenius",
        tol=1e-4,
        max_no_improvement=10,
        max_iter=200,
        alpha_W=0.0,
        alpha_H="same",
        l1_ratio=0.0,
        forget_factor=0.7,
        fresh_restarts=False,
        fresh_restarts_max_iter=30,
        transform_max_iter=None,
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.init = init
        self.batch_size = batch_size
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.max_iter = max_iter
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.forget_factor = forget_factor
        self.fresh_restarts = fresh_restarts
        self.fresh_restarts_max_iter = fresh_restarts_max_iter
        self.transform_max_iter = transform_max_iter
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y=None, W=None, H=None) -> MiniBatchNMF:
        """Learn ``components_`` from X (n_samples × n_features) in minibatches; returns self."""
        self._fit(X, W, H)
        return self

    def fit_transform(self, X, y=None, W=None, H=None):
        """Learn ``components_`` from X and return W (n_samples × r): the fit's coefficients,
        or ``transform(X)`` with ``fresh_restarts=True``."""
        return _output.wrap(self, self._fit(X, W, H), X)

    def partial_fit(self, X, y=None, W=None, H=None) -> MiniBatchNMF:
        """One online step on the minibatch X (all its rows); returns self.

        The first call (on an unfitted estimator) initializes ``components_`` from X (``W``
        and ``H`` are used with ``init="custom"``).  Each call solves its rows' coefficients
        with ``fresh_restarts_max_iter`` updates from the constant start and updates the
        components; a call of b rows forgets forget_factor^(b/n), n the number of samples of
        the first call (scikit-learn: forget_factor^(min(batch_size, n)/n) per call) or of
        the fit that preceded.
        """
        fitted = hasattr(self, "components_")
        names = _checks.feature_names(X)
        data = _checks.as_data(X, _WHOM)
        _output.check_features(self, X, names, data.shape[1], reset=not fitted)
        with _precision(data.dtype):
            helper = self._helper()
            beta = helper._beta()
            self._check_zeros(data, beta)
            if not fitted:
                _, H_skl = self._start(helper, data, W, H)
                fresh = check_positive_int("fresh_restarts_max_iter", self.fresh_restarts_max_iter)
                self._model = self._make_model(helper, data.shape, data.dtype, beta, fresh)
                self._state = minibatch_init(self._model, jax.device_put(H_skl.T))
                self.n_steps_ = 0
            V_J = jax.device_put(data.T.astype(self._state.W.dtype))
            self._state, _, _ = minibatch_step(self._model, self._state, V_J)
            self.components_ = np.asarray(self._state.W).T
        self.n_components_ = self.components_.shape[0]
        self.n_steps_ += 1
        return self

    def transform(self, X):
        """W ≥ 0 minimizing the penalized D_β(X | W · components_), n_samples × r."""
        H = self._fitted()
        names = _checks.feature_names(X)
        data = _checks.as_data(X, _WHOM)
        _output.check_features(self, X, names, data.shape[1], reset=False)
        with _precision(data.dtype):
            W = self._solve_W(data, H.astype(data.dtype))
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
        data = _checks.as_data(X, _WHOM)
        _output.check_features(self, X, names, data.shape[1], reset=True)
        start = time.perf_counter()
        with _precision(data.dtype):
            W_fit, H_fit, n_iter, n_steps = self._fit_transform(data, W, H)
            divergence = _divergence(BetaDivergence(self._helper()._beta()), data, W_fit, H_fit)
        self.reconstruction_err_ = float(np.sqrt(2.0 * max(float(divergence), 0.0)))
        self.components_ = H_fit
        self.n_components_ = H_fit.shape[0]
        self.n_iter_ = n_iter
        self.n_steps_ = n_steps
        if self.verbose:
            print(
                f"MiniBatchNMF fit: {n_steps} steps ({n_iter} passes) in "
                f"{time.perf_counter() - start:.3f} s, reconstruction error "
                f"{self.reconstruction_err_:.6g}"
            )
        return W_fit

    def _fit_transform(self, X: np.ndarray, W, H):
        """(W, components, passes started, steps) of a fit of the checked data X."""
        helper = self._helper()
        beta = helper._beta()
        self._check_zeros(X, beta)
        max_iter = check_positive_int("max_iter", self.max_iter)
        tol = check_nonneg_scalar("tol", self.tol)
        patience = self._patience()
        n_samples = X.shape[0]
        batch = min(self._batch_size(), n_samples)
        W_skl, H_skl = self._start(helper, X, W, H)
        fresh = check_positive_int("fresh_restarts_max_iter", self.fresh_restarts_max_iter)
        if not isinstance(self.fresh_restarts, (bool, np.bool_)):
            raise ValueError(
                "The 'fresh_restarts' parameter of MiniBatchNMF must be an instance of 'bool'. "
                f"Got {self.fresh_restarts!r} instead."
            )
        inner = fresh if self.fresh_restarts else 1
        model = self._make_model(helper, X.shape, X.dtype, beta, inner)
        state = minibatch_init(model, jax.device_put(H_skl.T))
        coefficients = np.array(W_skl.T)  # H of V = Xᵀ: r × n_samples, on the host
        per_pass = math.ceil(n_samples / batch)
        n_steps = max_iter * per_pass
        ewa, ewa_min, no_improvement = None, None, 0
        step = 0
        for step in range(n_steps):
            first = (step % per_pass) * batch
            J = slice(first, min(first + batch, n_samples))
            V_J = jax.device_put(X[J].T)
            H_J = None if self.fresh_restarts else jax.device_put(coefficients[:, J])
            state, H_J, info = minibatch_step(model, state, V_J, H_J)
            coefficients[:, J] = np.asarray(H_J)
            cost = float(info.objective) / (J.stop - J.start)
            if self.verbose:
                print(f"Minibatch step {step + 1}/{n_steps}: mean batch cost: {cost}")
            if step == 0:
                continue
            if ewa is None:
                ewa = cost
            else:
                alpha = min((J.stop - J.start) / (n_samples + 1), 1.0)
                ewa = ewa * (1.0 - alpha) + cost * alpha
            # an all-zero block leaves the components exactly as they were (its statistics
            # only decay, A/B unchanged): no evidence of convergence, so tol skips it
            if tol > 0 and float(info.W_change) <= tol and np.any(X[J]):
                break
            if ewa_min is None or ewa < ewa_min:
                no_improvement, ewa_min = 0, ewa
            else:
                no_improvement += 1
            if patience is not None and no_improvement >= patience:
                break
        components = np.asarray(state.W).T
        # partial_fit continues from here, solving each batch afresh
        self._model = self._make_model(helper, X.shape, X.dtype, beta, fresh)
        self._state = state
        steps = step + 1
        n_iter = math.ceil(steps / per_pass)
        if n_iter == max_iter and tol > 0:
            warnings.warn(
                f"Maximum number of iterations {max_iter} reached. Increase it to improve "
                f"convergence. (MiniBatchNMF fit: {steps} minibatch steps without meeting "
                f"tol = {tol:g} or max_no_improvement.)",
                convergence_warning(),
                stacklevel=4,
            )
        if self.fresh_restarts:
            W_fit = self._solve_W(X, components)
        else:
            W_fit = coefficients.T.copy()
        return W_fit, components, n_iter, steps

    # ------------------------------------------------------------------ helpers

    def _helper(self, max_iter=None) -> NMF:
        """A ``jnmf.NMF`` with this estimator's loss, init and penalties: its checks, starts
        and held-components solve are shared."""
        return NMF(
            self.n_components,
            init=self.init,
            beta_loss=self.beta_loss,
            tol=self.tol,
            max_iter=self.max_iter if max_iter is None else max_iter,
            random_state=self.random_state,
            alpha_W=self.alpha_W,
            alpha_H=self.alpha_H,
            l1_ratio=self.l1_ratio,
        )

    def _start(self, helper: NMF, X, W, H):
        """(W₀, H₀) in scikit-learn's orientation (samples × r, r × features)."""
        n_features = X.shape[1]
        rank = helper._rank(n_features, H if self.init == "custom" else None)
        start = helper._start(X, rank, W, H)
        if not isinstance(start, str):
            return start
        penalties = helper._penalties(*X.shape)
        problem = _problem(X, helper._beta(), penalties)
        W0, H0 = _draw_start(helper._seed(), problem, rank, start, X)
        return np.asarray(W0), np.asarray(H0)

    def _make_model(self, helper: NMF, shape, dtype, beta: float, inner_iter: int):
        """The online model of V = Xᵀ for X of ``shape`` (the fit's X, or ``partial_fit``'s
        first batch): m = n_samples, so a block of b rows forgets forget_factor^(b/m) and
        carries b·α_H of the components' penalties."""
        n_samples, n_features = shape
        forget = check_nonneg_scalar("forget_factor", self.forget_factor)
        if forget > 1:
            raise ValueError(
                "The 'forget_factor' parameter of MiniBatchNMF must be a float in the range "
                f"[0.0, 1.0]. Got {self.forget_factor!r} instead."
            )
        # (l1_W, l2_W, l1_H, l2_H) of X ≈ W H: W = coefficients, H = components
        l1_c, l2_c, l1_d, l2_d = helper._penalties(n_samples, n_features)
        return make_online_mu(
            beta if beta in (0.0, 1.0, 2.0) else jnp.asarray(beta, dtype),
            n_columns=n_samples,
            forget_factor=forget,
            inner_iter=inner_iter,
            l1_W=l1_d,
            l2_W=l2_d,
            l1_H=l1_c,
            l2_H=l2_c,
            dtype=dtype,
        )

    def _solve_W(self, X, H) -> np.ndarray:
        max_iter = self.max_iter if self.transform_max_iter is None else self.transform_max_iter
        if (
            not (isinstance(max_iter, numbers.Integral) and not isinstance(max_iter, bool))
            or max_iter < 1
        ):
            raise ValueError(
                "The 'transform_max_iter' parameter of MiniBatchNMF must be an int in the range "
                f"[1, inf) or None. Got {self.transform_max_iter!r} instead."
            )
        W, *_ = self._helper(max_iter)._fit_transform(X, None, H, update_H=False)
        return W

    def _batch_size(self) -> int:
        b = self.batch_size
        if isinstance(b, bool) or not isinstance(b, numbers.Integral) or b < 1:
            raise ValueError(
                "The 'batch_size' parameter of MiniBatchNMF must be an int in the range "
                f"[1, inf). Got {b!r} instead."
            )
        return int(b)

    def _patience(self) -> int | None:
        p = self.max_no_improvement
        if p is None:
            return None
        if isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 1:
            raise ValueError(
                "The 'max_no_improvement' parameter of MiniBatchNMF must be an int in the "
                f"range [1, inf) or None. Got {p!r} instead."
            )
        return int(p)

    @staticmethod
    def _check_zeros(X, beta: float) -> None:
        if beta <= 0 and (X == 0).any():
            raise ValueError(
                "When beta_loss <= 0 and X contains zeros, the solver may diverge. Please add "
                f"small values to X, or use a positive beta_loss (β = {beta:g}: d_β(0 | y) is "
                "undefined)."
            )

    def _fitted(self) -> np.ndarray:
        if not hasattr(self, "components_"):
            raise _not_fitted_error(self)
        return self.components_
