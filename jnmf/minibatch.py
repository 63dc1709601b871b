"""Online (minibatch) NMF for every β: Lefèvre, Bach & Févotte (2011), scikit-learn's MiniBatchNMF.

V (n×m) has one data point per column; a minibatch is a block of columns V_J (n×b).  The
dictionary W (n×r) is learned from the stream; each block's coefficients H_J (r×b) are
solved with W fixed.  One step on V_J:

1. H_J ← ``inner_iter`` multiplicative (MM) updates of min_{H_J ≥ 0} D_β(V_J | W H_J)
   + l1_H‖H_J‖₁ + ½ l2_H‖H_J‖² (``solvers.mu.mm_update_H`` on the block's ``Problem``),
   from the block's stored H_J (warm start) or from the constant √(mean V_J / r);
2. with (P, N) the positive and negative parts of ∇_W D_β(V_J | W H_J)
   (``optimality.gradient_parts_W``), s = b/m the block's share of W's penalties,
   ρ = forget_factor^(b/m) and γ = γ(β):

       A ← ρ A + W^(1/γ) ⊙ N,    B ← ρ B + P + s l1_W + s l2_W W,    W ← (A / B)^γ

   (entries with B = 0 become 0, as in ``solvers.mu``).

A and B are the running numerator and denominator statistics of Lefèvre et al.: the MM
step of every block seen so far, each discounted by ρ per block (forget_factor per pass over
the m columns, scikit-learn's convention).  They start at A = W₀^(1/γ), B = 1 (scikit-learn
starts from A = W₀, B = 1; the power makes (A/B)^γ = W₀ for every β): a pseudo-observation of
W₀ that keeps W > 0 where a block has a row of zeros.  Started at A = B = 0, such a block sets
that row of W to exactly 0 for good, and a later block with V_ij > 0 there meets WH = 0, an
infinite objective for β ≤ 1 (seen on the digits data).  With forget_factor = 0 nothing is
remembered (the start included; the same zero-row hazard then applies for β ≤ 1)
and W ← W (N / (P + l1 + l2 W))^γ is the full-batch MM step: one block of all m columns with
warm-started H then reproduces ``jnmf.nmf(Vᵀ, solver="mu")`` iterate by iterate (the solver
on Vᵀ ≈ Hᵀ Wᵀ updates Hᵀ first, then Wᵀ, the order of a step here).  With an L2 penalty on
W and β < 2 the W-step adds l2 W to the denominator as scikit-learn does; that is not the
exact MM step ``solvers.mu`` takes there.

Sum over the blocks of ``objective(block problem, (W, H_J))`` is the full objective

    f(W, H) = D_β(V | WH) + l1_W‖W‖₁ + ½ l2_W‖W‖² + l1_H‖H‖₁ + ½ l2_H‖H‖²,

so it is computed block by block in memory bounded by the block size.

``OnlineMU`` holds the hyperparameters (β static for its fast paths; ρ, m and the penalties as
arrays, so changing them does not recompile), ``minibatch_init`` / ``minibatch_step`` are the
pure state-passing pair (one compiled program per block shape), and ``minibatch_nmf`` runs
passes over a NumPy array, a NumPy memmap (read block by block with ``np.asarray(V[:, J])``)
or an iterable of column blocks, never holding more than one block of V on the device.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jnmf.checks import (
    _float_dtype,
    check_key,
    check_matrix,
    check_nonneg_scalar,
    check_positive_int,
    check_rank,
    flush_subnormals,
    refuse_sparse,
)
from jnmf.divergence import BetaDivergence, mm_exponent
from jnmf.optimality import gradient_parts_W
from jnmf.problem import Factors, Problem, objective
from jnmf.solvers.mu import SKLEARN_EPS, mm_update_H

__all__ = [
    "MinibatchResult",
    "MinibatchState",
    "OnlineMU",
    "StepInfo",
    "make_online_mu",
    "minibatch_init",
    "minibatch_nmf",
    "minibatch_objective",
    "minibatch_step",
]


class MinibatchState(NamedTuple):
    """The learned dictionary W (n×r), the running statistics A, B (n×r) and the step count."""

    W: Array
    A: Array
    B: Array
    n_steps: Array


class StepInfo(NamedTuple):
    """Per step: the block's objective at (W before its update, the new H_J), and
    ‖W_new − W‖_F / ‖W_new‖_F."""

    objective: Array
    W_change: Array


def _ratio(num: Array, den: Array) -> Array:
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)


class OnlineMU(eqx.Module):
    """Hyperparameters of online multiplicative updates (module docstring).

    ``n_columns`` is m, the number of columns in one pass: it sets ρ = forget_factor^(b/m)
    and the share b/m of W's penalties each block carries.  The penalties are those of the
    full objective f(W, H).  ``inner_iter`` is the number of MM updates of H_J per step;
    ``eps`` the floor on WH inside the updates for β < 2 (``solvers.mu``).
    """

    divergence: BetaDivergence
    forget_factor: Array
    n_columns: Array
    l1_W: Array
    l2_W: Array
    l1_H: Array
    l2_H: Array
    inner_iter: int = eqx.field(default=1, static=True)
    eps: float = eqx.field(default=SKLEARN_EPS, static=True)
    newton_steps: int = eqx.field(default=30, static=True)

    def block_problem(self, V_J: Array) -> Problem:
        """The block's ``Problem``: H's penalties in full, W's scaled by b/m."""
        share = V_J.shape[1] / self.n_columns
        return Problem(
            V=V_J,
            divergence=self.divergence,
            l1_W=share * self.l1_W,
            l2_W=share * self.l2_W,
            l1_H=self.l1_H,
            l2_H=self.l2_H,
        )

    def start_H(self, V_J: Array, rank: int) -> Array:
        """The constant start √(mean V_J / r) (scikit-learn's start of a held-dictionary solve)."""
        level = jnp.sqrt(jnp.mean(V_J) / rank)
        return jnp.full((rank, V_J.shape[1]), level, V_J.dtype)

    def solve_H(self, problem: Problem, W: Array, H_J: Array) -> Array:
        """``inner_iter`` MM updates of H_J with W fixed."""
        args = (self.eps, 0.0, self.newton_steps)
        return jax.lax.fori_loop(
            0, self.inner_iter, lambda _, H: mm_update_H(problem, W, H, *args), H_J
        )

    def step(self, state: MinibatchState, V_J: Array, H_J: Array | None = None):
        """One online step on the block V_J (n×b): returns (state, H_J, ``StepInfo``)."""
        W = state.W
        problem = self.block_problem(V_J)
        if H_J is None:
            H_J = self.start_H(V_J, W.shape[1])
        H_J = self.solve_H(problem, W, H_J)
        cost = objective(problem, Factors(W, H_J))
        beta = problem.beta
        guard = None if (isinstance(beta, float) and beta >= 2) else self.eps
        P, N = gradient_parts_W(problem, W, H_J, guard)
        gamma = mm_exponent(beta)
        static_one = isinstance(gamma, float) and gamma == 1.0
        rho = self.forget_factor ** (V_J.shape[1] / self.n_columns)
        A = rho * state.A + (W if static_one else W ** (1.0 / gamma)) * N
        B = rho * state.B + P + problem.l1_W + problem.l2_W * W
        W_new = _ratio(A, B)
        if not static_one:
            W_new = W_new**gamma
        norm = jnp.linalg.norm(W_new)
        change = jnp.linalg.norm(W_new - W) / jnp.where(norm > 0, norm, 1.0)
        new_state = MinibatchState(W_new, A, B, state.n_steps + 1)
        return new_state, H_J, StepInfo(cost, change)


def make_online_mu(
    beta=2.0,
    *,
    n_columns: int,
    forget_factor=0.7,
    inner_iter: int = 1,
    l1_W=0.0,
    l2_W=0.0,
    l1_H=0.0,
    l2_H=0.0,
    dtype=None,
) -> OnlineMU:
    """A checked ``OnlineMU``: β a real or a name, forget_factor in [0, 1], m ≥ 1, penalties
    finite and ≥ 0 (``ValueError`` otherwise)."""
    divergence = BetaDivergence(beta)
    forget = check_nonneg_scalar("forget_factor", forget_factor)
    if forget > 1:
        raise ValueError(f"forget_factor must be in [0, 1], got {forget_factor!r}")
    n_columns = check_positive_int("n_columns", n_columns)
    inner_iter = check_positive_int("inner_iter", inner_iter)
    dtype = jnp.result_type(float) if dtype is None else dtype
    pens = {}
    for name, val in (("l1_W", l1_W), ("l2_W", l2_W), ("l1_H", l1_H), ("l2_H", l2_H)):
        pens[name] = jnp.asarray(check_nonneg_scalar(name, val), dtype)
    return OnlineMU(
        divergence=divergence,
        forget_factor=jnp.asarray(forget, dtype),
        n_columns=jnp.asarray(n_columns, dtype),
        inner_iter=inner_iter,
        **pens,
    )


@eqx.filter_jit
def minibatch_init(model: OnlineMU, W0) -> MinibatchState:
    """The state before the first block: W = W0 (n×r, ≥ 0), A = W0^(1/γ), B = 1, no steps.

    (A, B) is a pseudo-observation of W0 (A/B)^γ = W0 that keeps W > 0 where a block's N is
    0 (a row of V zero in the whole block), as scikit-learn's start (A = W0, B = 1) does.
    """
    W0 = jnp.asarray(W0)
    gamma = mm_exponent(model.divergence.beta)
    A = W0 if isinstance(gamma, float) and gamma == 1.0 else W0 ** (1.0 / gamma)
    return MinibatchState(W0, A, jnp.ones_like(W0), jnp.zeros((), jnp.int32))


@eqx.filter_jit
def minibatch_step(model: OnlineMU, state: MinibatchState, V_J: Array, H_J: Array | None = None):
    """``model.step`` compiled (once per block shape and dtype): (state, H_J, ``StepInfo``).

    ``H_J`` (r×b) is the block's previous coefficients, or None for the constant start.
    """
    return model.step(state, V_J, H_J)


@eqx.filter_jit
def _solve_and_evaluate(model: OnlineMU, W: Array, V_J: Array, H_J: Array | None):
    problem = model.block_problem(V_J)
    if H_J is None:
        H_J = model.solve_H(problem, W, model.start_H(V_J, W.shape[1]))
    return objective(problem, Factors(W, H_J))


def minibatch_objective(model: OnlineMU, W, V_J, H_J=None) -> Array:
    """The block's share of f(W, H): D_β(V_J | W H_J) + its penalties (W's scaled by b/m).

    ``H_J`` None solves it from the constant start with ``model.inner_iter`` updates.
    """
    return _solve_and_evaluate(model, W, V_J, H_J)


# ---------------------------------------------------------------------------- data sources


class _Blocks:
    """Column blocks of a source, read and checked one at a time (host NumPy → device)."""

    def __init__(self, source, batch_size, beta: float | None):
        self.beta = beta
        self.array = None
        self.factory = None
        self.iterator = None
        if hasattr(source, "shape") and hasattr(source, "__getitem__"):
            refuse_sparse(source, "V")
            if len(source.shape) != 2:
                raise ValueError(f"V must be a 2-D matrix (n×m), got shape {tuple(source.shape)}")
            if source.shape[0] == 0 or source.shape[1] == 0:
                raise ValueError(f"V is empty (shape {tuple(source.shape)}): nothing to factorize")
            self.array = source
            self.n_rows, self.n_columns = (int(s) for s in source.shape)
            size = 1024 if batch_size is None else check_positive_int("batch_size", batch_size)
            self.batch_size = min(size, self.n_columns)
            self.dtype = self._dtype(np.dtype(source.dtype))
        else:
            if batch_size is not None:
                raise ValueError(
                    "batch_size applies to array sources; the blocks of an iterable are used "
                    "as they come (yield blocks of the size you want)"
                )
            if callable(source):
                self.factory = source
            elif isinstance(source, Iterator):
                self.iterator = source
            elif isinstance(source, Iterable):
                self.factory = lambda: iter(source)
            else:
                raise ValueError(
                    "source must be a 2-D array or memmap (n×m), an iterable of n×b column "
                    f"blocks or a callable returning a fresh iterator, got {type(source).__name__}"
                )
            self.n_rows = None
            self.n_columns = None
            self.dtype = None

    @property
    def keeps_order(self) -> bool:
        """Whether column j is the same column at every pass (so H can be stored)."""
        return self.array is not None

    @staticmethod
    def _dtype(dtype) -> np.dtype:
        if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
            raise ValueError(f"V must be a numeric array, got dtype {dtype}")
        try:
            out = _float_dtype(dtype)
        except ValueError as err:
            raise ValueError(f"V {err}") from None
        if out == np.float64 and not jax.config.jax_enable_x64:
            warnings.warn(
                "V is float64 but jax_enable_x64 is off, so JAX computes in float32. "
                "Call jax.config.update('jax_enable_x64', True) first to keep float64.",
                stacklevel=4,
            )
            out = np.dtype(np.float32)
        return out

    def passes(self, index: int) -> Iterator[tuple[slice | None, np.ndarray]]:
        """The (columns, block) pairs of pass ``index`` (0-based)."""
        if self.array is not None:
            for start in range(0, self.n_columns, self.batch_size):
                J = slice(start, min(start + self.batch_size, self.n_columns))
                yield J, self.check(np.asarray(self.array[:, J]), J.start)
            return
        if self.factory is not None:
            blocks = iter(self.factory())
        elif index == 0:
            blocks = self.iterator
        else:
            raise ValueError(
                "an iterator can be read only once: for more than one pass give a re-iterable "
                "(a list of blocks) or a callable that returns a fresh iterator"
            )
        seen = 0
        for block in blocks:
            block = np.asarray(block) if not hasattr(block, "toarray") else block
            yield None, self.check(block, seen)
            seen += block.shape[1]
        if seen == 0:
            raise ValueError(f"the source gave no columns on pass {index + 1}")
        if self.n_columns is not None and seen != self.n_columns:
            raise ValueError(
                f"pass {index + 1} gave {seen} columns but n_columns is {self.n_columns}: an "
                "iterable must give the same columns at every pass"
            )

    def check(self, block, first: int) -> np.ndarray:
        """The block as a checked float array of the source's dtype."""
        refuse_sparse(block, "V block")
        block = np.asarray(block)
        where = f"V block at column {first}"
        if block.ndim != 2:
            raise ValueError(f"{where} must be 2-D (n×b), got shape {block.shape}")
        if self.n_rows is None:
            self.n_rows = block.shape[0]
        if block.shape[0] != self.n_rows:
            raise ValueError(
                f"{where} has {block.shape[0]} rows, but V has {self.n_rows}: every block "
                "holds columns of the same n rows"
            )
        if block.shape[1] == 0:
            raise ValueError(f"{where} has no columns")
        if self.dtype is None:
            self.dtype = self._dtype(block.dtype)
        elif not (np.issubdtype(block.dtype, np.number) or block.dtype == np.bool_):
            raise ValueError(f"{where} must be numeric, got dtype {block.dtype}")
        if np.iscomplexobj(block):
            raise ValueError(f"{where} must be real, got {block.dtype}")
        block = flush_subnormals(block.astype(self.dtype, copy=False))
        check_matrix(block, where)
        if self.beta is not None and self.beta <= 0 and (block == 0).any():
            raise ValueError(
                f"{where} has {int((block == 0).sum())} zero entries, but the β-divergence "
                f"with β = {self.beta:g} is undefined at V_ij = 0. Add a small constant to V "
                "or use β > 0 (e.g. 'kullback-leibler')"
            )
        return block


# ---------------------------------------------------------------------------- the driver


class MinibatchResult(NamedTuple):
    """Result of ``minibatch_nmf``.

    W: the dictionary, n×r (JAX array).  H: the coefficients r×m (NumPy, on the host) for
    array sources with ``warm_start``, where H_J is stored between passes; else None.
    objective: f(W, H) after each pass, computed block by block (NaN when not evaluated, and
    for a one-shot iterator, which cannot be read again); for iterables H_J is re-solved
    from the constant start with W fixed.  running_objective:
    Σ_J of the steps' block objectives during each pass (W changing within the pass).
    n_passes, n_steps: passes and steps taken; converged: the relative decrease of the
    objective between passes fell to ``tol`` or below.
    """

    W: Array
    H: np.ndarray | None
    objective: np.ndarray
    running_objective: np.ndarray
    n_passes: int
    n_steps: int
    converged: bool


def _static_beta(beta) -> float:
    b = BetaDivergence(beta).beta
    if not isinstance(b, float):
        raise ValueError(f"beta must be a real number or a name, got {beta!r}")
    return b


def _check_start(init, n: int, m: int | None, rank: int, dtype):
    """(W0, H0 or None) from a user's ``init``: an n×r W0 or a pair (W0, H0)."""
    W0, H0 = init if isinstance(init, tuple) else (init, None)
    W0 = np.asarray(W0, dtype)
    if W0.shape != (n, rank):
        raise ValueError(f"init W0 must have shape {(n, rank)}, got {W0.shape}")
    check_matrix(W0, "init W0")
    if H0 is not None:
        if m is None:
            raise ValueError("init H0 needs an array source with warm_start=True (H is stored)")
        H0 = np.asarray(H0, dtype)
        if H0.shape != (rank, m):
            raise ValueError(f"init H0 must have shape {(rank, m)}, got {H0.shape}")
        check_matrix(H0, "init H0")
        H0 = H0.copy()
    return W0, H0


def minibatch_nmf(
    source,
    rank: int,
    *,
    beta=2.0,
    batch_size: int | None = None,
    n_passes: int = 10,
    forget_factor: float = 0.7,
    inner_iter: int | None = None,
    tol: float = 0.0,
    init="random",
    key=0,
    n_columns: int | None = None,
    l1_W: float = 0.0,
    l1_H: float = 0.0,
    l2_W: float = 0.0,
    l2_H: float = 0.0,
    warm_start: bool = True,
    evaluate: bool = True,
    callback: Callable[[int, float], None] | None = None,
) -> MinibatchResult:
    """Online NMF V ≈ W H over passes of column blocks (module docstring for the step).

    Args:
        source: a 2-D NumPy array or memmap V (n×m; blocks of ``batch_size`` columns read
            with ``np.asarray(V[:, J])``; a Fortran-ordered memmap, e.g. the transpose of a
            samples × features file, makes each read contiguous), an iterable of n×b blocks
            (re-iterated at each pass), a one-shot iterator (one pass) or a callable
            returning a fresh iterator of blocks.  Computed in the data's dtype: float32 and
            float64 kept (float64 needs x64, else a warning and float32), integers and
            bools in JAX's default float.
        rank: r ≥ 1.
        beta: a real β or "frobenius", "kullback-leibler", "itakura-saito".
        batch_size: columns per block for array sources (default 1024, at most m); not
            used with iterables, whose blocks come as they are.
        n_passes: the budget: passes over the data (each column visited once per pass).
        forget_factor: in [0, 1]; the statistics decay by this factor per pass.
        inner_iter: MM updates of H_J per step: default 1 when H_J is stored and warm-started
            (array sources), 30 otherwise (constant start at every visit).
        tol: stop after a pass whose relative objective decrease is ≤ tol (0: run all passes).
        init: "random" (W0 = |N(0,1)|·√(mean V_J / r) from the first block's mean, and H_J
            likewise at its first visit), an n×r W0, or a pair (W0, H0) (array sources).
        key: seed or PRNG key of the random start.
        n_columns: m for an iterable (needed: it sets ρ and the penalties' shares; each pass
            must give that many columns); for arrays it is V.shape[1].
        l1_W, l1_H, l2_W, l2_H: the penalties of f(W, H) (module docstring).
        warm_start: for array sources, keep H (r×m, on the host) and start each H_J from its
            previous value (scikit-learn's scheme); False solves every H_J from the constant
            start, as for iterables, and returns H = None.
        evaluate: compute f(W, H) after every pass (one more read of the data per pass).
        callback: called as callback(pass_index, objective) after each pass.

    Returns:
        A ``MinibatchResult``.  Raises ``ValueError`` for bad arguments or a bad block
        (wrong row count, negative, NaN or infinite entries, zeros with β ≤ 0).
    """
    rank = check_rank(rank)
    n_passes = check_positive_int("n_passes", n_passes)
    tol = check_nonneg_scalar("tol", tol)
    beta_value = _static_beta(beta)
    blocks = _Blocks(source, batch_size, beta_value)
    if not isinstance(warm_start, bool):
        raise ValueError(f"warm_start must be True or False, got {warm_start!r}")
    stored = blocks.keeps_order and warm_start
    if blocks.n_columns is not None:
        if n_columns is not None and n_columns != blocks.n_columns:
            raise ValueError(f"n_columns is {n_columns} but V has {blocks.n_columns} columns")
        n_columns = blocks.n_columns
    elif n_columns is None:
        raise ValueError(
            "an iterable source needs n_columns=m, the number of columns in one pass: it sets "
            "the per-block forgetting ρ = forget_factor^(b/m) and W's penalty shares"
        )
    else:
        n_columns = blocks.n_columns = check_positive_int("n_columns", n_columns)
    one_shot = blocks.iterator is not None
    if one_shot and n_passes > 1:
        raise ValueError(
            "an iterator can be read only once: for more than one pass give a re-iterable "
            "(a list of blocks) or a callable that returns a fresh iterator"
        )
    inner_iter = (1 if stored else 30) if inner_iter is None else inner_iter
    key = check_key(key)
    kW, kH = jax.random.split(key)
    H_store = None
    W0 = None
    if not (isinstance(init, str) and init == "random"):
        if isinstance(init, str):
            raise ValueError(f"init must be 'random', an n×r W0 or a pair (W0, H0), got {init!r}")
        if blocks.array is None:
            raise ValueError("init W0 needs an array source; use 'random' with an iterable")
        columns = blocks.n_columns if stored else None
        W0, H_store = _check_start(init, blocks.n_rows, columns, rank, blocks.dtype)
    model = None
    state = None
    objectives = np.full(n_passes, np.nan)
    running = np.full(n_passes, np.nan)
    converged = False
    passes = 0
    for p in range(n_passes):
        total = 0.0
        for J, block in blocks.passes(p):
            V_J = jnp.asarray(block)
            if model is None:
                dtype = block.dtype
                model = make_online_mu(
                    beta,
                    n_columns=n_columns,
                    forget_factor=forget_factor,
                    inner_iter=inner_iter,
                    l1_W=l1_W,
                    l2_W=l2_W,
                    l1_H=l1_H,
                    l2_H=l2_H,
                    dtype=dtype,
                )
                mean = float(block.mean())
                scale = math.sqrt(mean / rank) if mean > 0 else 1.0
                if W0 is None:
                    W0 = scale * jnp.abs(jax.random.normal(kW, (blocks.n_rows, rank), dtype))
                state = minibatch_init(model, jnp.asarray(W0, dtype))
                if stored and H_store is None:
                    H_store = np.empty((rank, n_columns), dtype)
                    for s in range(0, n_columns, blocks.batch_size):
                        width = min(blocks.batch_size, n_columns - s)
                        draw = jax.random.normal(jax.random.fold_in(kH, s), (rank, width), dtype)
                        H_store[:, s : s + width] = scale * np.abs(np.asarray(draw))
            H_J = jnp.asarray(H_store[:, J]) if stored else None
            state, H_J, info = minibatch_step(model, state, V_J, H_J)
            if stored:
                H_store[:, J] = np.asarray(H_J)
            total += float(info.objective)
        running[p] = total
        passes = p + 1
        if (evaluate or tol > 0) and not one_shot:
            objectives[p] = _pass_objective(model, state.W, blocks, H_store, p)
        if callback is not None:
            callback(p, float(objectives[p]))
        if p > 0 and tol > 0:
            prev, cur = objectives[p - 1], objectives[p]
            if (prev - cur) <= tol * abs(prev):
                converged = True
                break
    return MinibatchResult(
        W=state.W,
        H=H_store,
        objective=objectives[:passes],
        running_objective=running[:passes],
        n_passes=passes,
        n_steps=int(state.n_steps),
        converged=converged,
    )


def _pass_objective(model: OnlineMU, W: Array, blocks: _Blocks, H_store, p: int) -> float:
    """f(W, H) block by block: stored H_J for arrays, H_J re-solved for iterables."""
    total = 0.0
    for J, block in blocks.passes(p):
        H_J = None if H_store is None else jnp.asarray(H_store[:, J])
        total += float(minibatch_objective(model, W, jnp.asarray(block), H_J))
    return total
