"""What is minimised: ``Problem`` and the objective.

    f(W, H) = Σ_ij M_ij d_β(V_ij | (WH)_ij)
              + l1_W ‖W‖₁ + l1_H ‖H‖₁ + ½ l2_W ‖W‖_F² + ½ l2_H ‖H‖_F²

with V (n×m) ≥ 0, W (n×r) ≥ 0, H (r×m) ≥ 0 and optional entry weights M ≥ 0 (a 0/1 mask
for missing data; M = 1 when absent).  Penalty weights are stored as JAX scalars so that
changing them never recompiles a solve.

``make_problem`` is the checked constructor: it validates V, β and the weights in Python
(before anything is compiled) and raises ``ValueError`` with a message saying what to do.

V may be sparse: a ``jax.experimental.sparse.BCOO`` or a SciPy sparse matrix, which
``make_problem`` converts to a ``jnmf.sparse.SparseMatrix``.  Then no n×m array is ever
formed: the data term and every product with V go through ``jnmf.sparse`` (WH only at the
stored entries; sums of WH from the factors' row and column sums or Grams), called from here
and from ``jnmf.optimality`` only.  Sparse V
takes no entry weights, and β > 0 (V is zero off its stored entries, where d_β(0 | y) is
undefined for β ≤ 0).  β = 1 and β = 2 cost O(nnz·r) per product; any other β also needs
Σ_ij d_β(0 | (WH)_ij) and Wᵀ (WH)^(β−1), formed one block of columns at a time
(``jnmf.sparse.dense_sum``: memory O(n·b), time O(n·m·r)).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jnmf import sparse
from jnmf.checks import (
    as_float_array,
    as_sparse_matrix,
    check_matrix,
    check_nonneg_scalar,
    is_sparse_input,
)
from jnmf.divergence import BetaDivergence

__all__ = [
    "Factors",
    "Problem",
    "as_float_array",
    "check_matrix",
    "divergence_value",
    "make_problem",
    "model_covers_data",
    "objective",
]


class Factors(NamedTuple):
    """A pair of non-negative factors, V ≈ W @ H: W is n×r, H is r×m."""

    W: Array
    H: Array


class Problem(eqx.Module):
    """Data, divergence, penalties and optional entry weights of one NMF problem.

    ``V_T``, ``weights_T`` and ``V_sq`` are caches (Vᵀ, Mᵀ and ‖V‖²) that ``with_caches``
    fills once per solve; every product with V goes through this module and
    ``optimality``, never through a solver's own indexing.  V (and V_T) may be a
    ``SparseMatrix`` (module docstring); its V_T has sorted indices, so W-updates never
    re-sort.
    """

    V: Array | sparse.SparseMatrix
    divergence: BetaDivergence
    l1_W: Array
    l1_H: Array
    l2_W: Array
    l2_H: Array
    weights: Array | None = None
    V_T: Array | sparse.SparseMatrix | None = None
    weights_T: Array | None = None
    V_sq: Array | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.V.shape

    @property
    def dtype(self):
        return self.V.dtype

    @property
    def is_sparse(self) -> bool:
        """V is sparse (a ``jnmf.sparse.SparseMatrix``)."""
        return sparse.is_sparse(self.V)

    @property
    def is_concrete(self) -> bool:
        """V's values are known in Python (not traced under jit/vmap/grad)."""
        leaves = jax.tree_util.tree_leaves(self.V)
        return not any(isinstance(x, jax.core.Tracer) for x in leaves)

    @property
    def beta(self):
        return self.divergence.beta

    @property
    def is_frobenius(self) -> bool:
        """β is the Python number 2 (the static Frobenius objective)."""
        return self.divergence.is_beta(2.0)

    @property
    def is_quadratic(self) -> bool:
        """Unweighted Frobenius: every block subproblem is least squares in Gram form."""
        return self.is_frobenius and self.weights is None

    def replace(self, **changes) -> Problem:
        """A copy with some fields replaced (the one way a Problem is rebuilt)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.update(changes)
        return Problem(**fields)

    def transpose(self) -> Problem:
        """The same problem for Vᵀ ≈ Hᵀ Wᵀ (the roles of W and H swap)."""
        V_T = self.V_T
        if V_T is None:
            V_T = sparse.transpose(self.V) if self.is_sparse else self.V.T
        weights_T = self.weights_T
        if weights_T is None and self.weights is not None:
            weights_T = self.weights.T
        return self.replace(
            V=V_T,
            l1_W=self.l1_H,
            l1_H=self.l1_W,
            l2_W=self.l2_H,
            l2_H=self.l2_W,
            weights=weights_T,
            V_T=self.V,
            weights_T=self.weights,
        )

    def with_caches(self) -> Problem:
        """The same problem holding Vᵀ (and Mᵀ) when a W-update needs them, and ‖V‖².

        Elementwise work on Vᵀ in a W-update (β ≠ 2 or weights) otherwise transposes V at
        every iteration: XLA does not hoist that copy out of a loop when V is an argument
        (measured 1.4× per KL-MU iteration at 2000×1000).  Unweighted Frobenius only takes
        products with V, which need no copy; it caches ‖V‖² for the Gram-form objective.
        A sparse V always caches its sorted transpose (every W-update takes products with it).
        """
        if self.is_sparse:
            return self if self.V_T is not None else self.replace(V_T=sparse.transpose(self.V))
        if self.is_quadratic:
            return self if self.V_sq is not None else self.replace(V_sq=jnp.sum(self.V**2))
        if self.V_T is not None:
            return self
        weights_T = None if self.weights is None else self.weights.T
        return self.replace(V_T=self.V.T, weights_T=weights_T)

    def without_caches(self) -> Problem:
        """The problem with its caches dropped (what a differentiable solve closes over)."""
        return self.replace(V_T=None, weights_T=None, V_sq=None)

    def data(self) -> Array:
        """V with zero-weight entries set to 0 (they may hold NaN for missing data); a sparse V
        as it is (it has no weights)."""
        if self.weights is None:
            return self.V
        return jnp.where(self.weights > 0, self.V, 0.0)

    def data_max(self) -> Array:
        """max_ij V_ij over the observed entries (0 for a sparse V without stored entries)."""
        if self.is_sparse:
            return jnp.max(self.V.data, initial=0.0)
        return jnp.max(self.data())

    def data_mean(self) -> Array:
        """Mean of V over all n·m entries (the weighted mean over observed ones with weights)."""
        if self.is_sparse:
            n, m = self.shape
            return jnp.sum(self.V.data) / (n * m)
        if self.weights is None:
            return jnp.mean(self.V)
        M = self.weights
        return jnp.sum(M * self.data()) / jnp.sum(M)


def penalty(problem: Problem, W: Array, H: Array) -> Array:
    """l1_W‖W‖₁ + l1_H‖H‖₁ + ½ l2_W‖W‖² + ½ l2_H‖H‖² (factors are non-negative)."""
    return (
        problem.l1_W * jnp.sum(W)
        + problem.l1_H * jnp.sum(H)
        + 0.5 * problem.l2_W * jnp.sum(W * W)
        + 0.5 * problem.l2_H * jnp.sum(H * H)
    )


def divergence_value(problem: Problem, W: Array, H: Array) -> Array:
    """D = Σ_ij M_ij d_β(V_ij | (WH)_ij), the data term (without WH for a sparse V)."""
    if problem.is_sparse:
        return sparse.divergence_value(problem.divergence, problem.V, W, H)
    return problem.divergence.value(problem.data(), W @ H, problem.weights)


def objective(problem: Problem, factors: Factors) -> Array:
    """f(W, H): weighted β-divergence between V and WH plus the penalties."""
    W, H = factors
    return divergence_value(problem, W, H) + penalty(problem, W, H)


def model_covers_data(problem: Problem, W: Array, H: Array) -> Array:
    """True when (WH)_ij > 0 wherever V_ij > 0 is observed (else D_β = ∞ for β ≤ 1)."""
    if problem.is_sparse:
        V = problem.V
        return jnp.all((sparse.sampled_product(W, H, V) > 0) | (V.data <= 0))
    X = problem.data()
    observed = X > 0 if problem.weights is None else (X > 0) & (problem.weights > 0)
    return jnp.all((W @ H > 0) | ~observed)


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def make_problem(
    V,
    beta=2.0,
    *,
    l1_W=0.0,
    l1_H=0.0,
    l2_W=0.0,
    l2_H=0.0,
    weights=None,
) -> Problem:
    """Validate the inputs and build a ``Problem``.

    V and the weights are normalized as ``jnmf.checks`` says: float16/bfloat16 are computed
    in float32, integers in JAX's default float, and subnormal entries become exactly 0 (XLA
    flushes them to 0, so the zero checks below see what the compiled program sees).

    A sparse V (BCOO or SciPy sparse) becomes a ``jnmf.sparse.SparseMatrix``
    (``checks.as_sparse_matrix``: duplicates summed, indices sorted, values checked as a
    dense V's are).

    Raises ``ValueError`` for: V not 2-D, empty, non-numeric, with negative, NaN or infinite
    entries (NaN is allowed where ``weights`` is 0); zeros in V (with positive weight) when
    β ≤ 0, where d_β(0 | y) is undefined (a sparse V is zero off its stored entries); β not a
    finite real scalar or a known name; penalties that are not finite real numbers ≥ 0;
    weights of the wrong shape or negative; weights with a sparse V.
    """
    divergence = BetaDivergence(beta)
    if is_sparse_input(V):
        return _make_sparse_problem(V, divergence, weights, (l1_W, l1_H, l2_W, l2_H))
    V = as_float_array(V, "V")
    W_mask = None
    if weights is not None:
        weights = as_float_array(weights, "weights").astype(V.dtype)
        if weights.shape != V.shape:
            raise ValueError(
                f"weights must have the shape of V {tuple(V.shape)}, got {tuple(weights.shape)}"
            )
        check_matrix(weights, "weights")
        if _is_concrete(weights):
            W_mask = np.asarray(weights) == 0
            if W_mask.all():
                raise ValueError("every weight is 0: there is no data to fit")
    check_matrix(V, "V", allow_nan_where=W_mask)
    if _is_concrete(V):
        vals = np.asarray(V)
        zero = vals == 0 if W_mask is None else (vals == 0) & ~W_mask
        _refuse_zeros(divergence, int(zero.sum()), "")
    pens = _penalties((l1_W, l1_H, l2_W, l2_H), V.dtype)
    return Problem(V=V, divergence=divergence, weights=weights, **pens)


def _refuse_zeros(divergence: BetaDivergence, zeros: int, where: str) -> None:
    b = divergence.beta
    if isinstance(b, float) and b <= 0 and zeros:
        raise ValueError(
            f"V has {zeros} zero entries{where}, but the β-divergence with β = {b:g} is "
            "undefined at V_ij = 0 (log 0 / division by 0). Add a small constant to V, give "
            "those entries weight 0, or use β > 0 (e.g. 'kullback-leibler')"
        )


def _penalties(values, dtype) -> dict:
    names = ("l1_W", "l1_H", "l2_W", "l2_H")
    return {
        name: jnp.asarray(check_nonneg_scalar(name, val), dtype=dtype)
        for name, val in zip(names, values, strict=True)
    }


def _make_sparse_problem(V, divergence: BetaDivergence, weights, penalties) -> Problem:
    """The ``Problem`` of a sparse V (``make_problem``'s sparse branch)."""
    if weights is not None:
        raise ValueError(
            "weights= with a sparse V is not supported: pass V dense (V.toarray() or "
            "V.todense()) to weight or mask entries"
        )
    V = as_sparse_matrix(V, "V")
    if _is_concrete(V.data):
        n, m = V.shape
        positive = int(np.count_nonzero(np.asarray(V.data) > 0))
        beta = divergence.beta
        if _is_concrete(beta) and float(beta) <= 0:  # a Python number or a concrete array
            where = " (a sparse V is zero off its stored entries)"
            _refuse_zeros(BetaDivergence(float(beta)), n * m - positive, where)
            # every entry is stored and positive: V is dense in all but its type, and the
            # sparse path's terms for the zeros off the stored entries are undefined at β ≤ 0
            dense = jnp.zeros((n, m), V.dtype).at[sparse.rows(V), sparse.cols(V)].set(V.data)
            return Problem(V=dense, divergence=divergence, **_penalties(penalties, V.dtype))
    return Problem(V=V, divergence=divergence, **_penalties(penalties, V.dtype))
