"""Products with a sparse V that never form an n×m array.

V (n×m) is a ``SparseMatrix``: index pairs (i_k, j_k) and values v_k, k = 1..nnz, unique,
in bounds and sorted row-major (``jnmf.checks.as_sparse_matrix`` builds one from a
``jax.experimental.sparse.BCOO`` or a SciPy sparse matrix); V is zero off its stored entries.
It is a small equinox module rather than a BCOO because jnmf's compiled programs take the
non-array part of their arguments as static (hashed) jit arguments, and a BCOO's pytree
skeleton is not hashable.  For W (n×r), H (r×m) and a matrix S with V's pattern (values s):

    sampled_product(W, H, V)  y_k = Σ_t W_{i_k t} H_{t j_k}      (WH at the stored entries)
    left_product(W, V, s)     Wᵀ S   (r×m): (Wᵀ S)_{tj} = Σ_{k: j_k = j} W_{i_k t} s_k
    right_product(V, s, H)    S Hᵀ  (n×r): (S Hᵀ)_{it} = Σ_{k: i_k = i} s_k H_{t j_k}

cost O(nnz·r) time: gathers of entries of W and H at the stored indices and (for the
products) a segment sum, with O(nnz·r) temporaries at most.

Divergences whose value at V_ij = 0 is not zero (every β ∉ {1, 2}: d_β(0 | y) = y^β/β) need
WH at every entry.  ``dense_sum`` and ``dense_left`` form it one block of columns at a time
(``lax.map`` over blocks of H's columns, each block n×b with n·b ≈ ``BLOCK_ELEMENTS``), so
memory stays O(n·b + (n + m)·r) while the time is O(n·m·r) per product.

``divergence_value`` is D_β(V‖WH) for a sparse V:

* β = 2: ½ Σ_k (v_k − y_k)² + ½ (⟨WᵀW, HHᵀ⟩ − Σ_k y_k²), the second term being ½‖WH‖² off
  the stored entries (‖WH‖²_F = ⟨WᵀW, HHᵀ⟩ costs O((n + m)·r²));
* β = 1: Σ_k [v_k log(v_k / y_k) − v_k] + Σ_ij (WH)_ij with Σ_ij (WH)_ij = (Σ_i W_i·)·(Σ_j H_·j);
* other β (and a traced β): Σ_ij d_β(0 | (WH)_ij) in column blocks, plus
  Σ_k [d_β(v_k | y_k) − d_β(0 | y_k)] at the stored entries.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

# Column blocks of the dense passes hold about this many entries of WH (8 MiB in float64).
BLOCK_ELEMENTS = 1 << 20
# Ranks up to which the sampled product is written out component by component.
UNROLL = 64


class SparseMatrix(eqx.Module):
    """An n×m matrix by its stored entries: ``data`` (nnz,) at ``indices`` (nnz, 2) = (row,
    column), unique, in bounds and sorted row-major; zero elsewhere.  ``shape`` is static."""

    data: Array
    indices: Array
    shape: tuple[int, int] = eqx.field(static=True)

    @property
    def dtype(self):
        return self.data.dtype

    def __truediv__(self, s) -> SparseMatrix:
        """V / s for a scalar s (the same pattern)."""
        return SparseMatrix(self.data / s, self.indices, self.shape)

    def astype(self, dtype) -> SparseMatrix:
        """The same matrix with values of ``dtype``."""
        return SparseMatrix(self.data.astype(dtype), self.indices, self.shape)


def is_sparse(x) -> bool:
    """x is a ``SparseMatrix``."""
    return isinstance(x, SparseMatrix)


def rows(V: SparseMatrix) -> Array:
    """Row index i_k of each stored entry (nnz,)."""
    return V.indices[:, 0]


def cols(V: SparseMatrix) -> Array:
    """Column index j_k of each stored entry (nnz,)."""
    return V.indices[:, 1]


def _take(x: Array, index: Array) -> Array:
    """x[index] for a vector x and in-bounds indices (``clip`` skips the out-of-bounds fill)."""
    return jnp.take(x, index, mode="clip")


def sampled_product(W: Array, H: Array, V: SparseMatrix) -> Array:
    """(WH)_{i_k j_k} for every stored entry k of V: Σ_t W_{i_k t} H_{t j_k}, shape (nnz,).

    A sum over components of gathers of scalars, written out for r ≤ ``UNROLL`` (XLA's CPU
    backend fuses them into one pass over the stored entries) and a ``fori_loop`` beyond.
    Measured at nnz = 10⁶: r = 8, 16, 32 took 3.2, 6.4, 15 ms written out, 12, 33, 52 ms in
    a ``fori_loop``, and a gather of rows of W and H (nnz×r) then a sum over r ~100 ms.
    """
    i, j = rows(V), cols(V)
    r = W.shape[1]
    if r <= UNROLL:
        return sum(_take(W[:, t], i) * _take(H[t], j) for t in range(r))
    WT = W.T

    def add(t, y):
        return y + _take(WT[t], i) * _take(H[t], j)

    return jax.lax.fori_loop(0, r, add, jnp.zeros(i.shape, W.dtype))


def left_product(W: Array, V: SparseMatrix, s: Array) -> Array:
    """Wᵀ S (r×m) for S with V's pattern and values ``s`` (nnz,); W is n×r.

    One segment sum over columns of the rows W_{i_k ·} s_k (the gather fuses into the
    scatter; measured slightly faster than r scalar segment sums).
    """
    terms = jnp.take(W, rows(V), axis=0, mode="clip") * s[:, None]
    return jax.ops.segment_sum(terms, cols(V), V.shape[1], mode="promise_in_bounds").T


def right_product(V: SparseMatrix, s: Array, H: Array) -> Array:
    """S Hᵀ (n×r) for S with V's pattern and values ``s`` (nnz,); H is r×m."""
    terms = jnp.take(H.T, cols(V), axis=0, mode="clip") * s[:, None]
    return jax.ops.segment_sum(terms, rows(V), V.shape[0], mode="promise_in_bounds")


def transpose(V: SparseMatrix) -> SparseMatrix:
    """Vᵀ (m×n) with its indices sorted row-major, as ``SparseMatrix`` requires."""
    order = jnp.lexsort((rows(V), cols(V)))
    indices = jnp.take(V.indices[:, ::-1], order, axis=0)
    return SparseMatrix(jnp.take(V.data, order), indices, V.shape[::-1])


def block_size(n: int, m: int) -> int:
    """Columns per block of the dense passes: n·b ≈ ``BLOCK_ELEMENTS`` (1 ≤ b ≤ m)."""
    return int(max(1, min(m, BLOCK_ELEMENTS // max(n, 1))))


def _column_blocks(H: Array, b: int) -> tuple[Array, Array]:
    """H (r×m) padded with zero columns to a multiple of b, as (blocks, r, b), and the mask of
    real columns (blocks, b)."""
    r, m = H.shape
    count = -(-m // b)
    pad = count * b - m
    Hp = jnp.pad(H, ((0, 0), (0, pad)))
    blocks = Hp.reshape(r, count, b).transpose(1, 0, 2)
    real = (jnp.arange(count * b) < m).reshape(count, b)
    return blocks, real


def dense_sum(W: Array, H: Array, f, block: int | None = None) -> Array:
    """Σ_ij f((WH)_ij) over all n×m entries, WH formed one n×b block of columns at a time."""
    b = block or block_size(W.shape[0], H.shape[1])
    blocks, real = _column_blocks(H, b)

    def one(args):
        Hb, keep = args
        return jnp.sum(jnp.where(keep[None, :], f(W @ Hb), 0.0))

    return jnp.sum(jax.lax.map(one, (blocks, real)))


def dense_left(W: Array, H: Array, g, block: int | None = None) -> Array:
    """Wᵀ g(WH) (r×m) for an elementwise g, WH formed one n×b block of columns at a time."""
    r, m = H.shape
    b = block or block_size(W.shape[0], m)
    blocks, real = _column_blocks(H, b)

    def one(args):
        Hb, keep = args
        return jnp.where(keep[None, :], W.T @ g(W @ Hb), 0.0)

    out = jax.lax.map(one, (blocks, real))  # (blocks, r, b)
    return out.transpose(1, 0, 2).reshape(r, -1)[:, :m]


def divergence_value(divergence, V: SparseMatrix, W: Array, H: Array) -> Array:
    """D_β(V‖WH) = Σ_ij d_β(V_ij | (WH)_ij) without an n×m array (module docstring)."""
    v = V.data
    y = sampled_product(W, H, V)
    if divergence.is_beta(2.0):
        off_support = jnp.sum((W.T @ W) * (H @ H.T)) - jnp.sum(y * y)
        return 0.5 * jnp.sum((v - y) ** 2) + 0.5 * off_support
    if divergence.is_beta(1.0):
        on_support = jnp.where(v > 0, divergence.elementwise(v, y) - y, 0.0)
        return jnp.sum(on_support) + jnp.sum(W, axis=0) @ jnp.sum(H, axis=1)
    zero = jnp.zeros((), y.dtype)
    everywhere = dense_sum(W, H, lambda Y: divergence.elementwise(zero, Y))
    correction = jnp.where(
        v > 0, divergence.elementwise(v, y) - divergence.elementwise(zero, y), 0.0
    )
    return everywhere + jnp.sum(correction)


__all__ = [
    "BLOCK_ELEMENTS",
    "SparseMatrix",
    "dense_left",
    "dense_sum",
    "divergence_value",
    "is_sparse",
    "left_product",
    "right_product",
    "sampled_product",
    "transpose",
]
