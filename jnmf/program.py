"""Compiled programs sized to their work: fast to compile when small, fast to run when large.

XLA's CPU backend spends most of a small problem's time compiling: a new 100 × 50 shape
compiled for about 1.4–1.8 s with the default options, then ran 200 MU iterations in a few
milliseconds.  With its backend optimizations off and the loop fusions emitted by the older
(non-MLIR) emitters, the same program compiles in about a third of that, but runs slower,
by a factor that depends on the solver: at 200 × 160, r = 5, 200 iterations
(``python benchmarks/compile_cost.py --boundary``) MU runs 1.5× slower at β = 2, 5× at
β = 1, 8× at β = 0, and KL coordinate descent 17× (0.81 s against 0.05 s).  So a program
whose work — n·m·r per iteration times the iterations and the solves it batches — is at
most ``SMALL_WORK`` = 2²³, a quarter of that example, compiles with ``SMALL_OPTIONS``, and
every other with XLA's defaults: below it the slowest solver loses at most ~0.2 s of running
for ~0.9 s of compiling saved, the MU defaults a few milliseconds.  Accelerators always get
XLA's defaults.

``Program(fn, work)`` jit-compiles ``fn`` with its array leaves as arguments and everything
else static (hashable), keeping one compiled program per shape and option set.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax

SMALL_WORK = 1 << 23
SMALL_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


def solve_work(shape: tuple[int, int], rank: int, max_iter: int, solves: int = 1) -> int:
    """The work of ``solves`` solves of an n×m problem at rank r: n·m·r·max_iter·solves."""
    return shape[0] * shape[1] * rank * max_iter * solves


class Program:
    """``fn`` compiled once per shape; ``work(*args)`` (an int) chooses the compile options."""

    def __init__(self, fn: Callable, work: Callable[..., int]):
        def run(dynamic, static):
            return fn(*eqx.combine(dynamic, static))

        self._full = jax.jit(run, static_argnums=1)
        self._small = jax.jit(run, static_argnums=1, compiler_options=SMALL_OPTIONS)
        self._work = work
        self.__wrapped__ = fn
        self.__doc__ = fn.__doc__

    def is_small(self, *args) -> bool:
        """True when ``args`` compile with ``SMALL_OPTIONS``."""
        return jax.default_backend() == "cpu" and self._work(*args) <= SMALL_WORK

    def _split(self, args):
        dynamic, static = eqx.partition(args, eqx.is_array)
        return (self._small if self.is_small(*args) else self._full), dynamic, static

    def __call__(self, *args):
        program, dynamic, static = self._split(args)
        return program(dynamic, static)

    def lower(self, *args) -> jax.stages.Lowered:
        """The lowered program that a call with ``args`` runs."""
        program, dynamic, static = self._split(args)
        return program.lower(dynamic, static)
