"""scikit-learn-compatible estimators: ``NMF``, a thin shell over ``jnmf.nmf`` and ``jnmf.solve``,
and ``MiniBatchNMF``, over ``jnmf.minibatch`` (its conventions: ``_minibatch``'s docstring).

scikit-learn's X is samples × features and X ≈ W H with W samples × r and H = ``components_``
r × features; jnmf's V ≈ W H is the same product, so V = X, W = W and H = ``components_``.
scikit-learn's own NMF test module and ``check_estimator`` pass on it
(``tests/test_sklearn_suite.py``, ``tests/test_sklearn_checks.py``).

Conventions taken from ``sklearn.decomposition.NMF``:

* penalties scaled by the data size: l1_W = n_features·α_W·ρ, l2_W = n_features·α_W·(1 − ρ),
  l1_H = n_samples·α_H·ρ, l2_H = n_samples·α_H·(1 − ρ) (ρ = ``l1_ratio``; α_H = "same" means
  α_W), in the objective D_β(X | WH) + l1‖·‖₁ + ½ l2‖·‖²;
* ``init=None`` is "nndsvda" when n_components ≤ min(n_samples, n_features), else "random";
  "custom" takes ``W`` and ``H`` from ``fit(X, W=..., H=...)`` (same dtype as X, else
  ``TypeError``); W or H given without "custom" are ignored with a ``RuntimeWarning``;
* ``reconstruction_err_`` = √(2·D_β(X | WH)) (penalties excluded);
* dtypes: float32 and float64 X are kept (float64 is computed in float64 even when JAX's
  x64 is off: the estimator switches it on around its own calls with ``jax.enable_x64``,
  never globally); integers, bools and float16 become float64; object arrays of numbers
  are converted; complex data are refused;
* messages contain scikit-learn's sentences (``_checks``), the feature-name protocol
  (``n_features_in_``, ``feature_names_in_``, ``get_feature_names_out``, ``set_output``)
  follows scikit-learn's (``_output``);
* a ``ConvergenceWarning`` (scikit-learn's class when installed) when a fit or transform
  stops at ``max_iter`` with ``tol > 0``; a ``RuntimeWarning`` naming the iterations when it
  turned non-finite (the last finite factors are returned);
* β ≤ 0 with zeros in X is refused, as scikit-learn refuses it.

``transform`` solves the convex subproblem min_{W ≥ 0} D_β(X | W·components_) + penalties
from the constant W = √(mean X / r): at β = 2 by HALS with H held fixed (exact coordinate
minimization, linear convergence), otherwise by the fitting solver with H held fixed when it
alternates (``update_H=False`` of ``jnmf.AbstractAlternatingSolver``), else by multiplicative
updates.  ``fit_transform`` returns the W of the fit itself.  So ``transform`` is made to
solve to the point the fit reached (rather than ``fit_transform`` returning ``transform``'s
answer, which would break ``non_negative_factorization``'s iterates): at a fit's convergence
W minimizes the subproblem for the fitted components.  With the default solver at β = 2
(HALS) the two agree within scikit-learn's 1e-2 check; a multiplicative-update fit leaves
entries near 0 that the subproblem's minimizer has positive (on ``check_estimator``'s data
with ``max_iter=500``: up to 0.034 with ``solver="mu"``, 0.0116 when transform also used
MU), which is why "mu" is not the default at β = 2.

``non_negative_factorization`` is scikit-learn's function of the same name over this class,
with ``update_H=False`` (fit W with H fixed) through the same W-subproblem solve.

Where it differs from scikit-learn: the stopping test is jnmf's (relative decrease of the
objective per iteration, checked every 10 iterations, ``solve``), not scikit-learn's
(decrease of √(2D) between checks relative to its initial value), and it is stricter: with
the same ``tol`` jnmf runs as many iterations or more and ends with an error no larger.  With
``tol=0`` both run exactly ``max_iter`` iterations and, for ``solver="mu"`` from the same
start, give the same factors (to rounding) for every β without L2 and for β ≥ 2 with it (for
β < 2 with L2, jnmf's step is an exact majorize-minimize step and scikit-learn's is not).
``transform`` uses HALS at β = 2 whatever the fitting solver (scikit-learn uses the fitting
solver; its "mu" transform stops short of the exact zeros).  ``transform`` with β = 1 and L1
on W also differs: scikit-learn 1.9 adds l1_reg_W in place to a cached row sum of H, so its
penalty grows by l1_reg_W at every iteration; here W converges to the KKT point of the stated
objective.  ``random_state`` seeds JAX's generator, so random starts differ from
scikit-learn's.  Sparse X (e.g. from ``TfidfVectorizer``) is densified.  ``solver`` is any
name in ``jnmf.SOLVERS`` ("cd" is read as "hals") or "auto", the default: "cd" at β = 2 (as
scikit-learn's default, same iterates) and "mu" for other β (where scikit-learn's default
"cd" refuses the loss).  ``transform`` of X whose dtype differs from the fit's casts
``components_`` (scikit-learn raises a ``TypeError``).

scikit-learn is never imported at import time (it is not a dependency of jnmf): its tags, its
``ConvergenceWarning`` and ``NotFittedError`` are imported inside the functions that need
them, with stand-ins when it is absent; ``get_params``/``set_params`` follow its convention
(the ``__init__`` arguments stored verbatim), so ``sklearn.base.clone`` and ``Pipeline`` work.
"""

from __future__ import annotations

from jnmf.estimator import _checks
from jnmf.estimator._minibatch import MiniBatchNMF
from jnmf.estimator._nmf import NMF, _precision, convergence_warning


def non_negative_factorization(
    X,
    W=None,
    H=None,
    n_components="auto",
    *,
    init=None,
    update_H=True,
    solver="auto",
    beta_loss="frobenius",
    tol=1e-4,
    max_iter=200,
    alpha_W=0.0,
    alpha_H="same",
    l1_ratio=0.0,
    random_state=None,
    verbose=0,
    shuffle=False,
):
    """scikit-learn's ``non_negative_factorization`` on ``jnmf.NMF``: returns (W, H, n_iter).

    With ``update_H=True`` it is ``NMF(...).fit_transform(X, W=W, H=H)`` (W and H are used
    with ``init="custom"``); with ``update_H=False`` H is held fixed (shape
    (n_components, n_features), same dtype as X) and W is solved as ``NMF.transform`` does.
    The arguments are ``NMF``'s; the default solver "auto" is scikit-learn's "cd" (HALS) at
    β = 2 and "mu" otherwise.
    """
    est = NMF(
        n_components,
        init=init,
        solver=solver,
        beta_loss=beta_loss,
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        alpha_W=alpha_W,
        alpha_H=alpha_H,
        l1_ratio=l1_ratio,
        verbose=verbose,
        shuffle=shuffle,
    )
    if update_H:
        W = est.fit_transform(X, W=W, H=H)
        return W, est.components_, est.n_iter_
    data = _checks.as_data(X, keep_sparse=True)
    with _precision(data.dtype):
        W, H, solution, _ = est._fit_transform(data, W, H, update_H=False)
    return W, H, int(solution.n_iter)


__all__ = ["MiniBatchNMF", "NMF", "non_negative_factorization", "convergence_warning"]
