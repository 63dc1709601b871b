"""The runner: schedules a study's tasks into its run folder, resumably; nothing else.

    tasks = study.tasks(config)           # validated config → task list (unique keys)
    lock the run folder                   # a second run on the same config stops or waits
    finished = tasks whose stored files pass their checks   (damaged ones are named, redone)
    data = study.load(config)             # only if some task is unfinished
    for each unfinished task: result = study.compute(task, data) → stored atomically

A task that raises ``SkipTask`` is stored as skipped with the reason; any other exception is
reported with its traceback, not stored, and retried by the next run.  A run in which no task
ends done (all skipped or failed) reports failure.  ``setup_jax`` (called by the CLI before JAX
computes) selects the platform and precision; ``run`` only checks that they match.
"""

from __future__ import annotations

import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from experiments.config import Config, RunSettings
from experiments.progress import Progress, compile_timer
from experiments.store import DamagedFile, RunStore, StoreError, environment
from experiments.study import SkipTask, StudyConfigError, Task

MAX_TASKS_WITHOUT_YES = 10_000
KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+,-]{0,199}")


class RunError(RuntimeError):
    """The run cannot start (platform, lock, data, size): nothing was computed."""


def setup_jax(settings: RunSettings) -> None:
    """Select platform and precision in JAX's global config; call before JAX computes.

    "cpu" and "tpu" restrict JAX to that platform; "gpu" and "auto" let JAX choose ("gpu" is
    checked afterwards by ``check_jax``, as JAX's "gpu" alias would demand every GPU plugin).
    """
    import jax

    if settings.platform in ("cpu", "tpu"):
        jax.config.update("jax_platforms", settings.platform)
    jax.config.update("jax_enable_x64", settings.precision == "float64")
    cache = compilation_cache_dir(settings)
    if cache is not None and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def compilation_cache_dir(settings: RunSettings) -> str | None:
    """JAX's persistent compilation cache of runs: ``$JNMF_JAX_CACHE``, or ``<out>/.jax-cache``
    (``JNMF_JAX_CACHE=off`` turns it off).  A rerun, a resumed run and other studies with the
    same shapes read their compiled programs from disk instead of compiling them again.
    """
    chosen = os.environ.get("JNMF_JAX_CACHE", "")
    if chosen.lower() == "off":
        return None
    return chosen or os.path.join(settings.out, ".jax-cache")


def check_jax(settings: RunSettings) -> None:
    """Raise ``RunError`` unless JAX's platform and x64 flag match ``settings``."""
    import jax

    try:
        backend = jax.default_backend()
    except RuntimeError as err:
        raise RunError(f"JAX could not start platform {settings.platform!r}: {err}") from None
    if settings.platform != "auto" and backend != settings.platform:
        raise RunError(
            f"platform {settings.platform!r} was requested but JAX runs on {backend!r}; "
            "install the matching jaxlib plugin, or use --platform auto / --platform cpu"
        )
    if settings.precision == "float64" and not jax.config.jax_enable_x64:
        raise RunError(
            "precision float64 needs jax_enable_x64: run through jnmf-run, which enables it, "
            "or call jax.config.update('jax_enable_x64', True) first"
        )


def check_tasks(tasks: list[Task], yes: bool) -> None:
    """Keys unique and file-name safe; more than ``MAX_TASKS_WITHOUT_YES`` needs ``yes``."""
    if not tasks:
        raise RunError("the study has no tasks for this config; nothing to run")
    seen = set()
    for task in tasks:
        if not KEY_PATTERN.fullmatch(task.key):
            raise RunError(f"task key {task.key!r} is not a safe file name (study bug)")
        if task.key in seen:
            raise RunError(f"task key {task.key!r} appears twice (study bug)")
        seen.add(task.key)
    if len(tasks) > MAX_TASKS_WITHOUT_YES and not yes:
        raise RunError(
            f"this config makes {len(tasks):,} tasks (more than {MAX_TASKS_WITHOUT_YES:,}); "
            "shrink the grid, or pass --yes to run them all"
        )


@dataclass
class RunReport:
    """What a call to ``run`` did (task keys per outcome)."""

    run_dir: Path
    total: int = 0
    computed: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    damaged: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def n_done(self) -> int:
        """Tasks that ended with a result (computed now or earlier), skipped ones excluded."""
        return len(self.computed) + len(self.resumed)

    @property
    def exit_code(self) -> int:
        """0: no failure and some task done; 1: a task failed, or every task was skipped."""
        return 0 if not self.failed and self.n_done > 0 else 1


def run(
    config: Config,
    *,
    config_text: str = "",
    force: bool = False,
    yes: bool = False,
    wait: bool = False,
    quiet: bool = False,
    stream: TextIO | None = None,
) -> RunReport:
    """Run every unfinished task of ``config`` into ``config.run_dir``; returns a ``RunReport``.

    Raises ``RunError`` (or ``StudyConfigError`` from the study's ``load``) before computing
    anything when the run cannot start.
    """
    stream = stream or sys.stdout
    check_jax(config.run)
    study, parsed = config.study_obj, config.parsed
    tasks = list(study.tasks(parsed))
    check_tasks(tasks, yes)
    store = RunStore(config.run_dir)
    try:
        store.acquire(wait=wait)
    except StoreError as err:
        raise RunError(str(err)) from None
    try:
        return _run_locked(config, store, tasks, config_text, force, quiet, stream)
    finally:
        store.release()


def _run_locked(config, store, tasks, config_text, force, quiet, stream) -> RunReport:
    t_start = time.perf_counter()
    study, parsed = config.study_obj, config.parsed
    progress = Progress(len(tasks), len(tasks), stream, quiet)
    store.clean_temporary()
    store.create(config_text or "# given as a dict: see config.json\n", config.to_dict())
    report = RunReport(run_dir=store.root, total=len(tasks))
    metadata, problem = store.metadata()
    if problem:
        progress.line(f"warning: {problem}")
    pending = []
    for task in tasks:
        try:
            status = None if force else store.check_task(task.key)
        except DamagedFile as err:
            report.damaged.append(task.key)
            progress.line(f"damaged result, recomputing: {err}")
            status = None
        if status is None:
            pending.append(task)
        elif status == "skipped":
            report.skipped.append(task.key)
        else:
            report.resumed.append(task.key)
    progress.pending = len(pending)
    progress.done = len(tasks) - len(pending)
    data = _load(study, parsed) if pending else None

    session = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "outcome": "running"}
    session.update(environment(), argv=sys.argv, force=force, precision=config.run.precision)
    session["requested_platform"] = config.run.platform
    metadata = metadata or {"name": config.name, "study": config.study, "sessions": []}
    metadata.update(config_hash=config.digest(), n_tasks=len(tasks))
    metadata["seeds"] = sorted({int(t.params["seed"]) for t in tasks if "seed" in t.params})
    metadata["sessions"].append(session)
    store.write_metadata(metadata)  # a killed session still leaves its record

    progress.line(
        f"run {store.root}: {len(tasks)} tasks, {len(tasks) - len(pending)} finished earlier, "
        f"{len(pending)} to compute"
    )
    outcome = "interrupted"
    try:
        for task in pending:
            _compute_one(study, store, task, data, progress, report)
        outcome = "complete" if report.exit_code == 0 else "failed"
    finally:
        progress.close()
        report.wall_s = time.perf_counter() - t_start
        session.update(
            outcome=outcome,
            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            wall_s=report.wall_s,
            computed=report.computed,
            resumed=len(report.resumed),
            skipped=report.skipped,
            failed=report.failed,
            damaged=report.damaged,
        )
        store.write_metadata(metadata)
    return report


def _load(study, parsed):
    try:
        return study.load(parsed)
    except StudyConfigError:
        raise
    except (ImportError, OSError, ValueError) as err:
        raise RunError(f"the study's data could not be loaded: {err}") from err


def _compute_one(study, store: RunStore, task: Task, data, progress, report: RunReport) -> None:
    progress.start(task.label)
    t0 = time.perf_counter()
    try:
        with compile_timer() as compile_s:
            result = study.compute(task, data)
        seconds = time.perf_counter() - t0
        store.save_task(task.key, "done", result, params=dict(task.params), seconds=seconds)
    except SkipTask as reason:
        store.save_task(
            task.key, "skipped", {"skipped": str(reason)}, params=dict(task.params), seconds=0.0
        )
        report.skipped.append(task.key)
        short = str(reason).split("; ")[0]
        progress.finish(task.label, f"skipped ({short[:99]})")
        return
    except Exception as err:  # noqa: BLE001 - reported, not stored, retried next run
        report.failed[task.key] = "".join(traceback.format_exception_only(err)).strip()
        progress.line(traceback.format_exc(limit=-6).rstrip())
        progress.finish(task.label, "FAILED")
        return
    report.computed.append(task.key)
    progress.finish(task.label, "done", seconds, compile_s=compile_s[0])
