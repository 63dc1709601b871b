"""The solver protocol, and the alternating base most solvers build on.

A solver is an ``equinox.Module`` holding only its hyperparameters.  ``solve`` owns the loop,
the history and the stopping rule; a solver only says how to start and how to take one step:

    state = solver.init(problem, factors)
    factors, state = solver.step(problem, factors, state)

What a solver supports is declared on its class and read by ``check`` (before anything is
compiled), by the rank sweep and by ``encode``:

* ``betas``: None for every β (traced too), else the static β values it handles;
* ``penalties``, ``weights``: whether it handles L1/L2 penalties and entry weights;
* ``sparse``: whether it handles a sparse V (``jax.experimental.sparse.BCOO``) without an
  n×m array (its products with V go through ``optimality``);
* ``padding_exact``: whether zero-padded extra components leave its iterates unchanged
  (a padded rank sweep then reproduces separate solves);
* ``monotone``: whether the objective never increases (tested for every solver that says so);
* ``scale_equivariant``: whether its iterates on (V/s, W/√s, H/√s) are those on (V, W, H)
  scaled, so that ``solve`` may normalize V (false for solvers with norm constraints).

``AbstractAlternatingSolver`` is the W/H alternation written once: a subclass writes the
H-update with W fixed, ``update_block(problem, W, H, state, model)``, and W's update is the
same function on the transposed problem Vᵀ ≈ Hᵀ Wᵀ (as scikit-learn and TensorLy do).
``update_W=False`` (encode, transform) or ``update_H=False`` holds a factor fixed.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
from jax import Array

from jnmf.problem import Factors, Problem


class AbstractSolver(eqx.Module):
    """One NMF algorithm: ``init`` and ``step``, plus the capabilities ``check`` reads."""

    betas: ClassVar[tuple[float, ...] | None] = None
    penalties: ClassVar[bool] = True
    weights: ClassVar[bool] = True
    sparse: ClassVar[bool] = True
    padding_exact: ClassVar[bool] = True
    monotone: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True

    @property
    def name(self) -> str:
        """The solver's name in ``jnmf.SOLVERS`` (its class name if it is not listed)."""
        from jnmf.solvers.registry import name_of

        return name_of(type(self))

    @classmethod
    def supports(cls, problem: Problem) -> str | None:
        """None when the declared capabilities cover ``problem``, else what is missing."""
        if cls.betas is not None and not any(problem.divergence.is_beta(b) for b in cls.betas):
            beta = problem.beta
            shown = f"{beta:g}" if isinstance(beta, float) else "a traced β"
            wanted = " or ".join(f"{b:g}" for b in cls.betas)
            return f"handles only β = {wanted} given as a Python number, got β = {shown}"
        if problem.weights is not None and not cls.weights:
            return "does not support entry weights"
        if problem.is_sparse and not cls.sparse:
            return "does not support a sparse V (it forms WH at every entry); pass V dense"
        if not cls.penalties and _has_penalty(problem):
            return "takes no L1/L2 penalties"
        return None

    def check(self, problem: Problem) -> None:
        """Raise ``ValueError`` if this solver cannot handle ``problem`` (before compiling)."""
        from jnmf.solvers.registry import able

        missing = self.supports(problem)
        if missing is not None:
            raise ValueError(
                f"solver {self.name!r} {missing}; solvers for this problem: {able(problem)}"
            )
        self.check_problem(problem)

    def check_problem(self, problem: Problem) -> None:
        """Further checks of a particular solver (none by default)."""

    @abc.abstractmethod
    def init(self, problem: Problem, factors: Factors) -> Any:
        """The solver's state before the first step."""

    @abc.abstractmethod
    def step(self, problem: Problem, factors: Factors, state: Any) -> tuple[Factors, Any]:
        """One iteration: new factors and state."""

    @property
    def free(self) -> tuple[bool, bool]:
        """Which of (W, H) the solver updates."""
        return True, True


def _has_penalty(problem: Problem) -> bool:
    import jax

    # traced penalties are checked where they were concrete (before jit), not here
    for value in (problem.l1_W, problem.l1_H, problem.l2_W, problem.l2_H):
        if not isinstance(value, jax.core.Tracer) and float(value) != 0.0:
            return True
    return False


class AbstractAlternatingSolver(AbstractSolver):
    """W then H, each by ``update_block`` (written once, for H with W fixed).

    ``update_block(problem, W, H, state, model)`` returns ``(H_new, state, model_new)``;
    ``model`` is W H when the previous half-step kept it (else None) and ``model_new`` is
    W H_new for solvers that form it anyway (else None): KL coordinate descent and
    diagonalized Newton pass it on instead of forming WH again.  ``init_block`` gives the
    per-block state (None by default); the solver state is the pair (W-block, H-block).
    """

    update_W: bool = eqx.field(default=True, static=True, kw_only=True)
    update_H: bool = eqx.field(default=True, static=True, kw_only=True)

    def __check_init__(self):
        if not (self.update_W or self.update_H):
            raise ValueError(
                f"{type(self).__name__} with update_W=False and update_H=False does nothing"
            )

    @property
    def free(self) -> tuple[bool, bool]:
        return self.update_W, self.update_H

    @abc.abstractmethod
    def update_block(
        self, problem: Problem, W: Array, H: Array, state: Any, model: Array | None
    ) -> tuple[Array, Any, Array | None]:
        """One update of H with W fixed: (H_new, state, W H_new or None)."""

    def init_block(self, problem: Problem, W: Array, H: Array) -> Any:
        """State of the H-block before the first step (None by default)."""
        return None

    def init(self, problem: Problem, factors: Factors) -> tuple[Any, Any]:
        W, H = factors
        state_W = self.init_block(problem.transpose(), H.T, W.T) if self.update_W else None
        state_H = self.init_block(problem, W, H) if self.update_H else None
        return state_W, state_H

    def step(self, problem: Problem, factors: Factors, state) -> tuple[Factors, Any]:
        W, H = factors
        state_W, state_H = state
        model = None
        if self.update_W:
            Wt, state_W, model_t = self.update_block(problem.transpose(), H.T, W.T, state_W, None)
            W = Wt.T
            model = None if model_t is None else model_t.T
        if self.update_H:
            H, state_H, _ = self.update_block(problem, W, H, state_H, model)
        return Factors(W, H), (state_W, state_H)
