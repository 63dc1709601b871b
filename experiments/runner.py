"""The runner: a validated config → tasks → results in a ``RunStore``, resumably.

A grid config expands to tasks datasets × solvers × betas × ranks × seeds (in that nesting
order).  One task runs ``grid.restarts`` solves from ``jax.random.split(PRNGKey(seed),
restarts)`` as one vmapped, jit-compiled program (``jnmf.batch.solve_restarts``), with the
history recorded every ``grid.every`` iterations.  Compilation is done ahead of time and timed
apart from the run; the time axis of a task is ``t_k = iteration_k · run_s / n_iter`` (the
run's wall time spread evenly over its iterations, diagnostics included).

A task whose problem the solver cannot handle (its ``check`` raises ``ValueError``, or the data
do not suit β, e.g. zeros with β ≤ 0) is stored as *skipped* with the reason, so it counts
as finished.  Any other error is reported, not stored, and retried on the next run.

``setup_jax`` (called by the CLI before JAX computes) selects the platform and precision;
``run`` never changes JAX's global configuration, it only checks that it matches the config.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import platform as py_platform
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from experiments.config import SYNTHETIC, Config, DatasetSpec, RunSettings
from experiments.store import RunStore, jsonable

SUMMARY_COLUMNS = [
    "task",
    "dataset",
    "solver",
    "beta",
    "rank",
    "seed",
    "status",
    "reason",
    "restarts",
    "best_objective",
    "median_objective",
    "best_kkt",
    "n_iter",
    "compile_s",
    "run_s",
    "s_per_iter",
]


class RunError(RuntimeError):
    """The run cannot start (platform, precision, data): nothing was computed."""


# ---------------------------------------------------------------- JAX setup


def setup_jax(settings: RunSettings) -> None:
    """Select platform and precision in JAX's global config; call before JAX computes.

    "cpu" and "tpu" restrict JAX to that platform; "gpu" and "auto" let JAX choose ("gpu" is
    checked afterwards by ``check_jax``, as JAX's "gpu" alias would demand every GPU plugin).
    """
    import jax

    if settings.platform in ("cpu", "tpu"):
        jax.config.update("jax_platforms", settings.platform)
    jax.config.update("jax_enable_x64", settings.precision == "float64")


def check_jax(settings: RunSettings) -> None:
    """Raise ``RunError`` unless JAX's platform and x64 flag match ``settings``."""
    import jax

    try:
        backend = jax.default_backend()
    except RuntimeError as err:
        raise RunError(f"JAX could not start platform {settings.platform!r}: {err}") from None
    if settings.platform != "auto" and backend != settings.platform:
        raise RunError(
            f"platform {settings.platform!r} was requested but JAX runs on {backend!r} "
            f"(devices: {jax.devices()}); install the matching jaxlib plugin, or use "
            "--platform auto / --platform cpu"
        )
    if settings.precision == "float64" and not jax.config.jax_enable_x64:
        raise RunError(
            "precision float64 needs jax_enable_x64: run through the CLI (jnmf-run), which "
            "enables it, or call jax.config.update('jax_enable_x64', True) first"
        )


# ---------------------------------------------------------------- tasks and data


@dataclass(frozen=True)
class Task:
    """One point of the grid."""

    dataset: str
    solver: str
    beta: float
    rank: int
    seed: int

    @property
    def id(self) -> str:
        return f"{self.dataset}__{self.solver}__beta{self.beta:g}__r{self.rank}__s{self.seed}"

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.solver} β={self.beta:g} r={self.rank} seed={self.seed}"


SCRIPT_TASK = "script"


def expand(config: Config) -> list[Task]:
    """The grid's tasks in order datasets × solvers × betas × ranks × seeds."""
    g = config.grid
    return [
        Task(d, s, b, r, seed)
        for d in g.datasets
        for s in g.solvers
        for b in g.betas
        for r in g.ranks
        for seed in g.seeds
    ]


@dataclass(frozen=True)
class Data:
    """A loaded, preprocessed dataset: V (n×m, one sample per column) and its metadata."""

    V: np.ndarray
    meta: dict = field(default_factory=dict)


def synthetic(n: int = 100, m: int = 80, rank: int = 5, noise: float = 0.05, seed: int = 0):
    """V = |W H + σ·mean(WH)·E| with W, H ~ U(0.1, 1) and E standard normal (seeded)."""
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.1, 1.0, (n, rank))
    H = rng.uniform(0.1, 1.0, (rank, m))
    WH = W @ H
    V = np.abs(WH + noise * WH.mean() * rng.standard_normal(WH.shape))
    return Data(V, {"true_rank": rank, "noise": noise, "seed": seed})


def load_data(label: str, spec: DatasetSpec, dtype) -> Data:
    """Load ``spec.source`` (``jnmf.data.load`` or the synthetic problem), preprocess, cast."""
    if spec.source == SYNTHETIC:
        data = synthetic(**spec.options)
        V, meta = data.V, dict(data.meta)
    else:
        try:
            import jnmf.data as jdata
        except ImportError as err:
            raise RunError(f"dataset {label!r} needs jnmf.data, which failed: {err}") from None
        try:
            ds = jdata.load(spec.source, **spec.options)
        except (ImportError, OSError, TypeError, ValueError) as err:
            raise RunError(f"cannot load dataset {label!r} ([data.{label}]): {err}") from None
        V, meta = np.asarray(ds.V, dtype=np.float64), dict(getattr(ds, "meta", {}) or {})
    if spec.normalize == "max":
        V = V / V.max()
    elif spec.normalize == "mean":
        V = V / V.mean()
    elif spec.normalize == "column-sum":
        sums = V.sum(axis=0, keepdims=True)
        V = V / np.where(sums > 0, sums, 1.0)
    V = V + spec.offset
    meta = {k: v for k, v in meta.items() if _small_jsonable(v)}
    meta.update(dataset_source=spec.source, normalize=spec.normalize, offset=spec.offset)
    return Data(np.ascontiguousarray(V, dtype=dtype), meta)


def _small_jsonable(v) -> bool:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return True
    if isinstance(v, (tuple, list)):
        return len(v) <= 64 and all(isinstance(x, (str, int, float, bool)) for x in v)
    return False


# ---------------------------------------------------------------- one task


class Skip(Exception):
    """The task's combination is not supported; the message says why."""


def run_task(config: Config, task: Task, data: Data) -> tuple[dict, dict]:
    """Compute one task; returns (info, arrays) for the store. Raises ``Skip``."""
    import jax
    import jax.numpy as jnp

    from jnmf.batch import restart_keys, solve_restarts
    from jnmf.init import check_init
    from jnmf.problem import make_problem
    from jnmf.solve import Status
    from jnmf.solvers import SOLVERS

    g = config.grid
    options = dict(config.solver_options.get(task.solver, {}))
    try:
        problem = make_problem(
            data.V, task.beta, l1_W=g.l1_W, l1_H=g.l1_H, l2_W=g.l2_W, l2_H=g.l2_H
        )
        solver = SOLVERS[task.solver](**options)
        solver.check(problem)
        start = check_init(g.init, problem.shape, task.rank, problem.dtype)
    except ValueError as err:
        raise Skip(str(err)) from None
    keys = restart_keys(task.seed, g.restarts)
    kwargs = dict(
        max_iter=g.max_iter,
        every=g.every,
        tol=jnp.asarray(g.tol, problem.dtype),
        kkt_tol=jnp.asarray(g.kkt_tol, problem.dtype),
    )
    t0 = time.perf_counter()
    compiled = solve_restarts.lower(problem, solver, keys, start, task.rank, **kwargs).compile()
    t1 = time.perf_counter()
    sol = jax.block_until_ready(compiled(problem, solver, keys, start, task.rank, **kwargs))
    t2 = time.perf_counter()

    hist = sol.history
    n_iter = np.asarray(sol.n_iter)
    objective = np.asarray(sol.objective, dtype=np.float64)
    best = int(np.argmin(np.where(np.isfinite(objective), objective, np.inf)))
    run_s = t2 - t1
    s_per_iter = run_s / max(int(n_iter.max()), 1)
    kkt = np.asarray(hist.kkt)
    last_kkt = [float(k[np.isfinite(k)][-1]) if np.isfinite(k).any() else np.nan for k in kkt]
    status = np.asarray(sol.status)
    arrays = {
        "iterations": hist.iterations(),
        "objective": np.asarray(hist.objective),
        "kkt": kkt,
        "pg": np.asarray(hist.pg),
        "rel_change": np.asarray(hist.rel_change),
        "objective0": np.asarray(hist.objective0),
        "kkt0": np.asarray(hist.kkt0),
        "pg0": np.asarray(hist.pg0),
        "final_objective": objective,
        "n_iter": n_iter,
        "status": status,
    }
    if g.save_factors:
        arrays["W"] = np.asarray(sol.W[best])
        arrays["H"] = np.asarray(sol.H[best])
    info = dict(
        dataclasses.asdict(task),
        task=task.id,
        status="done",
        reason="",
        source=data.meta.get("dataset_source"),
        meta=data.meta,
        shape=list(problem.shape),
        dtype=str(problem.dtype),
        restarts=g.restarts,
        init=g.init,
        solver_options=options,
        best=best,
        outcomes={st.name: int((status == st.value).sum()) for st in Status if st.value >= 0},
        best_objective=float(objective[best]),
        median_objective=float(np.nanmedian(objective)),
        best_kkt=float(last_kkt[best]),
        n_iter=int(n_iter[best]),
        compile_s=t1 - t0,
        run_s=run_s,
        s_per_iter=s_per_iter,
        backend=jax.default_backend(),
        device=str(jax.devices()[0]),
    )
    return info, arrays


def run_script(config: Config) -> tuple[dict, dict]:
    """Call ``module.function(params)``; numeric array values become arrays, the rest info."""
    spec = config.script
    fn = getattr(importlib.import_module(spec.module), spec.function)
    t0 = time.perf_counter()
    result = fn(dict(spec.params))
    wall = time.perf_counter() - t0
    if not isinstance(result, dict):
        raise TypeError(f"{spec.module}.{spec.function} returned {type(result).__name__}, not dict")
    arrays, scalars = {}, {}
    for key, value in result.items():
        arr = np.asarray(value) if not isinstance(value, (str, dict)) else None
        if arr is not None and arr.dtype.kind in "biuf" and arr.ndim > 0:
            arrays[key] = arr
        else:
            scalars[key] = value
    info = dict(task=SCRIPT_TASK, status="done", reason="", run_s=wall, result=jsonable(scalars))
    return info, arrays


# ---------------------------------------------------------------- progress display


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Tasks done / total, current task, elapsed time and ETA.

    On a terminal one status line is redrawn in place (and refreshed every half second);
    otherwise each finished task prints one plain line.
    """

    def __init__(self, total: int, pending: int, stream: TextIO, quiet: bool = False):
        self.total, self.pending, self.stream, self.quiet = total, pending, stream, quiet
        self.done = total - pending
        self.computed = 0
        self.compute_s = 0.0
        self.current = ""
        self.started = time.perf_counter()
        self.tty = bool(getattr(stream, "isatty", lambda: False)()) and not quiet
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if self.tty:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    def _eta(self) -> str:
        if not self.computed:
            return "--"
        left = self.total - self.done
        return _clock(self.compute_s / self.computed * left)

    def _status(self) -> str:
        elapsed = time.perf_counter() - self.started
        pct = 100 * self.done / max(self.total, 1)
        return (
            f"[{self.done}/{self.total}] {pct:3.0f}% | elapsed {_clock(elapsed)} | "
            f"ETA {self._eta()} | {self.current}"
        )

    def _draw(self) -> None:
        with self._lock:
            self.stream.write("\r\x1b[K" + self._status())
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self._draw()

    def line(self, text: str) -> None:
        """Print a line of its own (above the status line on a terminal)."""
        if self.quiet:
            return
        with self._lock:
            self.stream.write(("\r\x1b[K" if self.tty else "") + text + "\n")
            self.stream.flush()
        if self.tty:
            self._draw()

    def start(self, label: str) -> None:
        self.current = label
        if self.tty:
            self._draw()

    def finish(self, label: str, outcome: str, seconds: float | None = None) -> None:
        self.done += 1
        if seconds is not None:
            self.computed += 1
            self.compute_s += seconds
        took = f" in {seconds:.1f} s" if seconds is not None else ""
        elapsed = _clock(time.perf_counter() - self.started)
        self.current = ""
        self.line(
            f"[{self.done}/{self.total}] {outcome}: {label}{took} | elapsed {elapsed} | "
            f"ETA {self._eta()}"
        )

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            with self._lock:
                self.stream.write("\r\x1b[K")
                self.stream.flush()


# ---------------------------------------------------------------- provenance


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_state() -> dict | None:
    """Commit and dirty flag of the git checkout holding this package, if any."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """Versions, devices and precision of this process (for ``metadata.json``)."""
    import jax

    import jnmf

    return {
        "jnmf": getattr(jnmf, "__version__", _version("jnmf")),
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "numpy": np.__version__,
        "equinox": _version("equinox"),
        "python": sys.version.split()[0],
        "os": py_platform.platform(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "x64": bool(jax.config.jax_enable_x64),
        "git": git_state(),
    }


# ---------------------------------------------------------------- the run


@dataclass
class RunReport:
    """What a call to ``run`` did."""

    run_dir: Path
    total: int = 0
    computed: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def run_dir_for(config: Config, out: str | Path | None = None) -> Path:
    """The folder a config's results go to: ``<out>/<name>-<hash>``."""
    return Path(out or config.run.out) / f"{config.name}-{config.digest()}"


def run(
    config: Config,
    *,
    config_text: str = "",
    force: bool = False,
    stream: TextIO | None = None,
    quiet: bool = False,
) -> RunReport:
    """Run every unfinished task of ``config`` into its run folder; returns a ``RunReport``.

    ``force`` recomputes finished tasks.  JAX's platform and precision must already match the
    config (see ``setup_jax``) and the datasets must load; otherwise ``RunError`` is raised
    before anything is written or computed.
    """
    stream = stream or sys.stdout
    check_jax(config.run)
    t_start = time.perf_counter()
    root = run_dir_for(config)
    if config.study == "script":
        tasks: dict[str, Task | None] = {SCRIPT_TASK: None}
        labels = {SCRIPT_TASK: f"{config.script.module}.{config.script.function}"}
    else:
        tasks = {t.id: t for t in expand(config)}
        labels = {t.id: t.label for t in tasks.values()}
    pending = [t for t in tasks if force or not RunStore(root).is_done(t)]
    data = _load_pending_data(config, [tasks[t] for t in pending])

    store = RunStore.create(
        config.run.out,
        config.name,
        config.digest(),
        config_text or "# given as a dict: see config.json\n",
        config.to_dict(),
    )
    report = RunReport(run_dir=store.root, total=len(tasks))
    report.resumed = [t for t in tasks if t not in pending]
    session = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "outcome": "running"}
    session.update(environment())
    session.update(argv=sys.argv, force=force, precision=config.run.precision)
    session["requested_platform"] = config.run.platform
    metadata = store.metadata() or {
        "name": config.name,
        "study": config.study,
        "config_hash": config.digest(),
        "seeds": list(config.grid.seeds) if config.grid else [],
        "keys": "restart keys = jax.random.split(jax.random.PRNGKey(seed), restarts)",
        "time_axis": "t_k = iteration_k * run_s / n_iter; run_s excludes compilation and "
        "includes the diagnostics recorded every `every` iterations",
        "sessions": [],
    }
    metadata["sessions"].append(session)
    store.write_metadata(metadata)  # a killed session still leaves its record

    progress = Progress(len(tasks), len(pending), stream, quiet)
    progress.line(
        f"run {store.root}: {len(tasks)} tasks, {len(report.resumed)} finished earlier, "
        f"{len(pending)} to compute"
    )
    outcome = "interrupted"
    try:
        for task_id in pending:
            _one(config, store, task_id, tasks[task_id], labels[task_id], data, progress, report)
        outcome = "complete" if report.ok else "failed"
    finally:
        progress.close()
        report.wall_s = time.perf_counter() - t_start
        _write_summary(store)
        compile_total = 0.0
        for task_id in report.computed:
            compile_total += store.load_task(task_id)[0].get("compile_s", 0.0)
        session.update(
            outcome=outcome,
            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            wall_s=report.wall_s,
            compile_s=compile_total,
            computed=report.computed,
            resumed=len(report.resumed),
            skipped=report.skipped,
            failed=report.failed,
        )
        store.write_metadata(metadata)
    return report


def _load_pending_data(config: Config, pending: list[Task | None]) -> dict[str, Data]:
    if config.study == "script":
        return {}
    dtype = np.float64 if config.run.precision == "float64" else np.float32
    needed = {t.dataset for t in pending}
    return {
        label: load_data(label, config.data[label], dtype)
        for label in config.grid.datasets
        if label in needed
    }


def _one(config, store, task_id, task, label, data, progress, report) -> None:
    progress.start(label)
    t0 = time.perf_counter()
    try:
        if task is None:
            info, arrays = run_script(config)
        else:
            info, arrays = run_task(config, task, data[task.dataset])
    except Skip as reason:
        info = dict(dataclasses.asdict(task), task=task_id, status="skipped", reason=str(reason))
        store.save_task(task_id, info, {})
        report.skipped.append(task_id)
        short = str(reason).split("; ")[0]
        short = short if len(short) <= 100 else short[:99] + "…"
        progress.finish(label, f"skipped ({short})")
        return
    except Exception as err:  # noqa: BLE001 - reported, not stored, retried next run
        report.failed[task_id] = "".join(traceback.format_exception_only(err)).strip()
        progress.line(traceback.format_exc().rstrip())
        progress.finish(label, "FAILED")
        return
    store.save_task(task_id, info, arrays)
    report.computed.append(task_id)
    took = time.perf_counter() - t0
    extra = f" (compile {info['compile_s']:.1f} s)" if "compile_s" in info else ""
    progress.finish(label + extra, "done", took)


def _write_summary(store: RunStore) -> None:
    store.write_summary(store.infos(), SUMMARY_COLUMNS)


__all__ = [
    "Data",
    "Progress",
    "RunError",
    "RunReport",
    "Task",
    "check_jax",
    "expand",
    "load_data",
    "run",
    "run_dir_for",
    "setup_jax",
    "synthetic",
]
