"""The timing harness every benchmark script uses (protocol: ../shared/BENCHMARKS.md).

* **Interleaving.** `run_block` runs every contender once per repetition (A B C, A B C, …)
  and keeps the per-repetition times, so a ratio is the median over repetitions of the
  paired ratio tᵢ(A) / tᵢ(B), never a ratio of medians taken at different moments.
* **Compile time apart.** Each contender's first call (JIT compile included) is timed on
  its own and reported as ``first − median``; outputs are blocked on
  (``block_until_ready``) before the clock is read.
* **BLAS threads.** A contender may carry ``threads``: the NumPy/SciPy BLAS pools
  (threadpoolctl) and torch's intra-op pool are set to that many threads outside the timed
  part and restored after. Scripts time scikit-learn, NumPy and torch with 1 and 2 threads
  and compare against the faster one *in each repetition* (``ratio(a, ("sk 1", "sk 2"))``).
* **Load.** The 1-minute load average L(t) is read before and after every block. This
  process's own threads raise L too (two busy cores push it towards 2 within a minute), so
  its share is estimated from its CPU time u (cores busy) with the kernel's damping,
  ``own ← own·e^{−Δt/60} + u·(1 − e^{−Δt/60})``, and the load of *other* processes is
  L − own. A block whose other-process load exceeds ``LOAD_LIMIT`` (1 by default) before or
  after has every ratio printed with the mark ``UNRELIABLE (load > 1)``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

LOAD_LIMIT = 1.0
SETTLE_S = 0.05  # pause between timed calls (BLAS threads stop spinning), not timed
_LOAD_TIME_CONSTANT_S = 60.0  # the kernel's 1-minute load average


def _cpu_busy_s() -> float | None:
    """CPU seconds all processes on the machine spent busy (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class LoadMonitor:
    """Tracks the load average of other processes: L − this process's estimated share."""

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self._own_load = 0.0
        self.first = self.sample()

    def sample(self) -> dict[str, float]:
        """Read the load now: ``load`` (1 min), ``own`` (this process's share), ``others``."""
        wall, cpu = time.perf_counter(), time.process_time()
        elapsed = wall - self._wall
        if elapsed > 0:
            busy_cores = (cpu - self._cpu) / elapsed
            decay = math.exp(-elapsed / _LOAD_TIME_CONSTANT_S)
            self._own_load = self._own_load * decay + busy_cores * (1 - decay)
        self._wall, self._cpu = wall, cpu
        load = os.getloadavg()[0]
        return {"load": load, "own": self._own_load, "others": max(load - self._own_load, 0.0)}


MONITOR = LoadMonitor()


def describe_load(sample: dict[str, float]) -> str:
    return (
        f"load average {sample['load']:.2f} (this process ≈ {sample['own']:.2f}, "
        f"others ≈ {sample['others']:.2f})"
    )


# ------------------------------------------------------------------------- environment
def threadpools() -> list[dict]:
    """threadpoolctl's view of the loaded BLAS/OpenMP pools (kernel = ``architecture``)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return threadpool_info()


def print_environment(title: str) -> None:
    """Versions, devices, BLAS pools and kernels, environment knobs and the load before."""
    import jax

    print(f"# {title}")
    print(f"command: {' '.join(sys.argv)}")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, jax {jax.__version__} "
        f"({jax.default_backend()}: {', '.join(str(d) for d in jax.devices())}), "
        f"{os.cpu_count()} CPUs"
    )
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "XLA_FLAGS"):
        if name in os.environ:
            print(f"env {name}={os.environ[name]}")
    for pool in threadpools():
        print(
            f"threadpool: {pool.get('internal_api')} {pool.get('version')} "
            f"kernel={pool.get('architecture')} threads={pool.get('num_threads')} "
            f"({os.path.basename(pool.get('filepath', ''))})"
        )
    print("subnormals: XLA flushes them to zero on CPU; NumPy and torch do not.")
    print(f"before: {describe_load(MONITOR.first)}")


def print_finish(blocks: Sequence[Block]) -> None:
    """The load after the run and how many blocks were measured under load."""
    end = MONITOR.sample()
    print(f"\nbefore: {describe_load(MONITOR.first)}")
    print(f"after:  {describe_load(end)}")
    bad = [b.title for b in blocks if not b.reliable]
    if bad:
        print(
            f"{len(bad)} of {len(blocks)} blocks ran with other processes' load > {LOAD_LIMIT:g}:"
            " their ratios are marked UNRELIABLE; rerun them on a quiet machine."
        )
    else:
        print(f"every block ran with other processes' load ≤ {LOAD_LIMIT:g}.")


# --------------------------------------------------------------------------- threads
class _Threads:
    """Sets BLAS (threadpoolctl) and torch thread counts around a call, then restores."""

    def __init__(self) -> None:
        self._controller = None

    def __call__(self, threads: int | None):
        return _ThreadLimit(self, threads)

    def controller(self):
        if self._controller is None:
            from threadpoolctl import ThreadpoolController

            self._controller = ThreadpoolController()
        return self._controller


class _ThreadLimit:
    def __init__(self, owner: _Threads, threads: int | None) -> None:
        self.owner, self.threads = owner, threads
        self._limit = self._torch_before = None

    def __enter__(self):
        if self.threads is None:
            return self
        self._limit = self.owner.controller().limit(limits=self.threads)
        torch = sys.modules.get("torch")
        if torch is not None:
            self._torch_before = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc):
        if self._limit is not None:
            self._limit.restore_original_limits()
        if self._torch_before is not None:
            sys.modules["torch"].set_num_threads(self._torch_before)


THREADS = _Threads()


# ---------------------------------------------------------------------------- timing
@dataclass
class Contender:
    """One timed call: ``run()`` does the work once and returns what to block on.

    ``units`` divides the time (e.g. iterations per call, to report time per iteration);
    ``threads`` sets the BLAS/torch pools for this call (None: leave them as they are).
    """

    name: str
    run: Callable[[], object]
    units: int = 1
    threads: int | None = None


def _block(out: object) -> None:
    import jax

    for leaf in jax.tree.leaves(out):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()


def time_call(run: Callable[[], object], threads: int | None = None) -> float:
    """Seconds of one call of ``run`` (outputs blocked on), threads set outside the clock."""
    with THREADS(threads):
        start = time.perf_counter()
        _block(run())
        return time.perf_counter() - start


def _time_once(contender: Contender) -> float:
    return time_call(contender.run, contender.threads)


@dataclass
class Block:
    """Interleaved timings of a set of contenders: seconds per unit, one entry per rep."""

    title: str
    times: dict[str, list[float]]
    first_call_s: dict[str, float]
    units: dict[str, int]
    load_before: dict[str, float]
    load_after: dict[str, float]
    load_limit: float = LOAD_LIMIT

    @property
    def reliable(self) -> bool:
        return max(self.load_before["others"], self.load_after["others"]) <= self.load_limit

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def compile_s(self, name: str) -> float:
        """First call minus a warm call: JIT compilation and first-touch costs."""
        return self.first_call_s[name] - self.median(name) * self.units[name]

    def _per_rep(self, names: str | Sequence[str]) -> list[float]:
        if isinstance(names, str):
            return self.times[names]
        return [min(ts) for ts in zip(*(self.times[n] for n in names), strict=True)]

    def ratio(self, numerator: str | Sequence[str], denominator: str | Sequence[str]) -> float:
        """Median over repetitions of t(numerator) / t(denominator); a sequence of names
        stands for the fastest of them in that repetition (e.g. 1 or 2 BLAS threads)."""
        pairs = zip(self._per_rep(numerator), self._per_rep(denominator), strict=True)
        return statistics.median(a / b for a, b in pairs)

    def faster(self, names: Sequence[str]) -> str:
        """The name with the smallest median time."""
        return min(names, key=self.median)

    def mark(self, text: str) -> str:
        """``text`` with the unreliability mark when the block ran under load."""
        if self.reliable:
            return text
        return f"{text} UNRELIABLE (load > {self.load_limit:g})"

    def fmt_ratio(self, numerator, denominator, digits: int = 2) -> str:
        return self.mark(f"{self.ratio(numerator, denominator):.{digits}f}")

    def ms(self, name: str) -> str:
        return f"{1e3 * self.median(name):.2f}"


def run_block(
    title: str,
    contenders: Sequence[Contender],
    reps: int,
    load_limit: float = LOAD_LIMIT,
    verbose: bool = True,
) -> Block:
    """Time ``contenders`` interleaved over ``reps`` repetitions after one warm-up call each;
    the order rotates from one repetition to the next."""
    names = [c.name for c in contenders]
    if len(set(names)) != len(names):
        raise ValueError(f"contender names must be unique, got {names}")
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    load_before = MONITOR.sample()
    first = {c.name: _time_once(c) for c in contenders}
    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    for rep in range(reps):
        # Rotate the order each repetition, so that no contender always runs right after
        # the same one (a 2-thread BLAS call leaves its threads spinning for a while), and
        # let the machine settle between calls, outside the clock.
        shift = rep % len(contenders)
        for c in list(contenders[shift:]) + list(contenders[:shift]):
            time.sleep(SETTLE_S)
            times[c.name].append(_time_once(c) / c.units)
    units = {c.name: c.units for c in contenders}
    block = Block(title, times, first, units, load_before, MONITOR.sample(), load_limit)
    if verbose:
        print(
            f"\n## {title}\nbefore: {describe_load(block.load_before)}; "
            f"after: {describe_load(block.load_after)}"
            + ("" if block.reliable else f"  → UNRELIABLE (load > {load_limit:g})")
        )
    return block


# ----------------------------------------------------------------------- shared pieces
def same_start(V: np.ndarray, rank: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """W₀ (n×r), H₀ (r×m) = |N(0,1)|·√(mean V / r) with a fixed seed, in V's dtype."""
    rng = np.random.default_rng(seed)
    scale = math.sqrt(float(np.mean(V, dtype=np.float64)) / rank)
    W0 = np.abs(rng.standard_normal((V.shape[0], rank))) * scale
    H0 = np.abs(rng.standard_normal((rank, V.shape[1]))) * scale
    return W0.astype(V.dtype), H0.astype(V.dtype)


def optional_import(module: str):
    """The module, or None when it is not installed (then the script says so)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        print(f"({module} is not installed: its rows are left out)")
        return None


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")


def common_arguments(parser: argparse.ArgumentParser, reps: int = 5) -> None:
    """--reps, --quick and --load-limit, shared by every script."""
    parser.add_argument("--reps", type=int, default=reps, help="interleaved repetitions")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and 2 repetitions (smoke test)"
    )
    parser.add_argument(
        "--load-limit",
        type=float,
        default=LOAD_LIMIT,
        help="other processes' load average above which ratios are marked UNRELIABLE",
    )


def csv_list(kind: Callable[[str], object]) -> Callable[[str], list]:
    """An argparse type for comma-separated values, e.g. ``--betas 2,1``."""

    def parse(text: str) -> list:
        return [kind(x) for x in text.split(",") if x]

    return parse
