"""The runner and the store: resume, damaged files, lock, temp cleanup, exit codes, render.

A toy study (no JAX computation) keeps every test fast; it is registered for the test only.
"""

import io
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments import registry
from experiments.cli import run_main
from experiments.config import parse_config
from experiments.render import render
from experiments.runner import MAX_TASKS_WITHOUT_YES, RunError, run
from experiments.store import TMP_MARK, DamagedFile, RunStore
from experiments.study import SkipTask, Study, StudyConfigError, Task


class ToyStudy(Study):
    """Task i returns arange(i + 1), i², a name and a list; some tasks skip, fail or stop."""

    name = "toy"
    calls: list = []

    def parse(self, section):
        allowed = {"n", "skip", "fail", "interrupt_at", "jit"}
        if set(section) - allowed:
            raise StudyConfigError(f"unknown keys {sorted(set(section) - allowed)}")
        return {"n": 3, "skip": [], "fail": [], "interrupt_at": -1, "jit": False, **section}

    def tasks(self, config):
        return [Task(f"t{i}", {"i": i, **config}) for i in range(config["n"])]

    def compute(self, task, data):
        i = task.params["i"]
        ToyStudy.calls.append(task.key)
        if i in task.params["skip"]:
            raise SkipTask(f"task {i} is not supported")
        if i in task.params["fail"]:
            raise RuntimeError(f"task {i} broke")
        if i == task.params["interrupt_at"]:
            raise KeyboardInterrupt
        if task.params["jit"]:  # a program of a shape never compiled before
            import jax

            jax.jit(lambda v: v * 3.0 + 1.0)(np.ones(1000 + 7 * i + len(ToyStudy.calls)))
        return {"x": np.arange(i + 1.0), "sq": i * i, "name": f"t{i}", "pair": [i, i + 1]}

    def figures(self, results, config):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(2, 2))
        ax = fig.subplots()
        for r in results.values():
            if "x" in r:
                ax.plot(r["x"])
        return {"lines": fig}

    def tables(self, results, config):
        return {"squares": [{"key": k, "sq": r.get("sq")} for k, r in sorted(results.items())]}


@pytest.fixture
def toy(monkeypatch, tmp_path):
    monkeypatch.setitem(registry.STUDIES, "toy", f"{__name__}:ToyStudy")
    ToyStudy.calls = []

    def make(**section):
        raw = {"name": "toy", "run": {"out": str(tmp_path / "results")}, "study": section}
        return parse_config(raw)

    return make


def quiet_run(config, **kw):
    return run(config, quiet=True, stream=io.StringIO(), **kw)


def test_results_round_trip_and_resume(toy):
    config = toy(n=3)
    report = quiet_run(config)
    assert (report.computed, report.exit_code) == (["t0", "t1", "t2"], 0)
    store = RunStore(report.run_dir)
    result = store.load_result("t2")
    np.testing.assert_array_equal(result["x"], [0.0, 1.0, 2.0])
    assert (result["sq"], result["name"], result["pair"]) == (4, "t2", [2, 3])
    again = quiet_run(config)
    assert again.computed == [] and again.resumed == ["t0", "t1", "t2"]
    metadata, problem = store.metadata()
    assert problem is None and len(metadata["sessions"]) == 2
    assert metadata["sessions"][0]["git"] is None or "commit" in metadata["sessions"][0]["git"]
    assert {"jax", "devices", "numpy"} <= set(metadata["sessions"][0])


def test_progress_lines_report_compile_seconds(toy):
    out = io.StringIO()
    report = run(toy(n=2, jit=True), stream=out)
    assert report.exit_code == 0
    lines = [line for line in out.getvalue().splitlines() if "] done: t" in line]
    assert len(lines) == 2
    for line in lines:
        assert re.search(r"in \d+\.\d s \(compile \d+\.\d s\)", line), line


@pytest.mark.parametrize(
    "damage",
    ["truncate_npz", "garbage_npz", "truncate_json", "garbage_json", "edit_json", "drop_npz"],
)
def test_damaged_task_file_is_named_and_recomputed(toy, damage):
    config = toy(n=3)
    store = RunStore(quiet_run(config).run_dir)
    npz, record = store.arrays_path("t1"), store.record_path("t1")
    if damage == "truncate_npz":
        npz.write_bytes(npz.read_bytes()[:40])
    elif damage == "garbage_npz":
        npz.write_bytes(b"\x93NUMPY garbage" * 10)
    elif damage == "truncate_json":
        record.write_text(record.read_text()[:30])
    elif damage == "garbage_json":
        record.write_text("not json at all")
    elif damage == "edit_json":
        record.write_text(record.read_text().replace('"sq": 1', '"sq": 7'))
    else:
        npz.unlink()
    with pytest.raises(DamagedFile) as err:
        store.load_result("t1")
    assert "t1." in str(err.value)
    out = io.StringIO()
    report = run(config, stream=out)
    assert report.damaged == ["t1"] and report.computed == ["t1"]
    assert "damaged result, recomputing" in out.getvalue() and "t1." in out.getvalue()
    assert store.load_result("t1")["sq"] == 1


def test_damaged_metadata_is_named_and_replaced(toy):
    config = toy(n=1)
    store = RunStore(quiet_run(config).run_dir)
    (store.root / "metadata.json").write_text('{"sessions": [')
    out = io.StringIO()
    run(config, stream=out)
    assert "metadata.json was damaged" in out.getvalue()
    metadata, problem = store.metadata()
    assert problem is None and len(metadata["sessions"]) == 1
    assert list(store.root.glob("metadata.damaged-*.json"))


def test_render_writes_prefixed_figures_and_tables(toy, tmp_path):
    report = quiet_run(toy(n=2))
    rendered = render(report.run_dir, tmp_path / "paper")
    names = sorted(p.name for p in rendered.figures)
    assert names == ["toy_lines.png", "toy_lines.png"]
    assert (tmp_path / "paper" / "toy_lines.png").stat().st_size > 0
    rows = json.loads((report.run_dir / "tables" / "squares.json").read_text())
    assert rows == [{"key": "t0", "sq": 0}, {"key": "t1", "sq": 1}]
    assert (report.run_dir / "tables" / "squares.csv").read_text().splitlines()[0] == "key,sq"


def test_skipped_and_failed_tasks_set_the_exit_code(toy):
    assert quiet_run(toy(n=2, skip=[0, 1])).exit_code == 1  # every task skipped
    failed = quiet_run(toy(n=2, fail=[0, 1]))
    assert failed.exit_code == 1 and set(failed.failed) == {"t0", "t1"}
    some = quiet_run(toy(n=3, skip=[0], fail=[]))
    assert some.exit_code == 0 and some.skipped == ["t0"]


def test_failed_task_is_not_stored_and_retried(toy):
    report = quiet_run(toy(n=2, fail=[1]))
    assert not RunStore(report.run_dir).record_path("t1").exists()
    ToyStudy.calls = []
    quiet_run(toy(n=2, fail=[1]))
    assert ToyStudy.calls == ["t1"]


def test_interrupt_keeps_finished_tasks(toy):
    config = toy(n=4, interrupt_at=2)
    with pytest.raises(KeyboardInterrupt):
        quiet_run(config)
    store = RunStore(config.run_dir)
    assert [store.check_task(k) for k in ("t0", "t1", "t2")] == ["done", "done", None]
    assert not [p for p in store.tasks_dir.iterdir() if TMP_MARK in p.name]
    metadata, _ = store.metadata()
    assert metadata["sessions"][-1]["outcome"] == "interrupted"


def test_many_tasks_need_yes(toy):
    config = toy(n=MAX_TASKS_WITHOUT_YES + 1)
    with pytest.raises(RunError, match="--yes"):
        quiet_run(config)
    assert ToyStudy.calls == []


HOLD_LOCK = (
    "import sys, time; from experiments.store import RunStore; s = RunStore(sys.argv[1]); "
    "s.acquire(); print('locked', flush=True); time.sleep(60)"
)


@pytest.fixture
def holder(toy):
    """A second process holding the run folder's lock."""
    config = toy(n=2)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(config.run_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield config, proc
    finally:
        proc.kill()
        proc.wait()


def test_second_run_on_a_locked_folder_exits_with_a_message(holder, capsys, tmp_path):
    config, proc = holder
    with pytest.raises(RunError, match=f"another jnmf-run \\(pid {proc.pid}\\)"):
        quiet_run(config)
    assert ToyStudy.calls == []
    path = tmp_path / "toy.toml"
    path.write_text(f'name = "toy"\n[run]\nout = "{tmp_path / "results"}"\n[study]\nn = 2\n')
    assert run_main([str(path), "--quiet"]) == 2
    assert "another jnmf-run" in capsys.readouterr().err
    proc.kill()
    proc.wait()
    assert quiet_run(config).computed == ["t0", "t1"]  # the lock died with its process


def test_cleanup_spares_a_live_process_temp_file(holder):
    config, proc = holder
    store = RunStore(config.run_dir)
    store.tasks_dir.mkdir(parents=True, exist_ok=True)
    live = store.tasks_dir / f".t0.npz{TMP_MARK}{proc.pid}"
    dead_pid = 2**22 + 12345
    while True:
        try:
            os.kill(dead_pid, 0)
            dead_pid += 1
        except ProcessLookupError:
            break
    dead = store.tasks_dir / f".t1.npz{TMP_MARK}{dead_pid}"
    live.write_bytes(b"in flight")
    dead.write_bytes(b"left over")
    assert store.clean_temporary() == [dead]
    assert live.exists() and not dead.exists()


def test_wait_queues_behind_the_holder(toy):
    config = toy(n=1)
    hold = HOLD_LOCK.replace("time.sleep(60)", "time.sleep(1.5)")
    proc = subprocess.Popen(
        [sys.executable, "-c", hold, str(config.run_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        t0 = time.perf_counter()
        assert quiet_run(config, wait=True).computed == ["t0"]
        assert time.perf_counter() - t0 > 0.5
    finally:
        proc.kill()
        proc.wait()


def test_jnmf_figures_names_damaged_files_and_redraws_the_rest(toy, tmp_path, capsys):
    from experiments.cli import figures_main

    report = quiet_run(toy(n=2))
    store = RunStore(report.run_dir)
    store.arrays_path("t1").write_bytes(b"garbage")
    assert figures_main([str(report.run_dir), "--figures-out", str(tmp_path / "figs")]) == 0
    err = capsys.readouterr().err
    assert "damaged" in err and "t1.npz" in err and "rerun jnmf-run" in err
    assert (tmp_path / "figs" / "toy_lines.png").is_file()
    rows = json.loads((report.run_dir / "tables" / "squares.json").read_text())
    assert [r["key"] for r in rows] == ["t0"]
    assert figures_main([str(tmp_path / "nowhere")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_runs_use_a_persistent_compilation_cache(monkeypatch, tmp_path):
    from experiments.config import RunSettings
    from experiments.runner import compilation_cache_dir

    settings = RunSettings(out=str(tmp_path / "results"))
    monkeypatch.delenv("JNMF_JAX_CACHE", raising=False)
    assert compilation_cache_dir(settings) == str(tmp_path / "results" / ".jax-cache")
    monkeypatch.setenv("JNMF_JAX_CACHE", str(tmp_path / "elsewhere"))
    assert compilation_cache_dir(settings) == str(tmp_path / "elsewhere")
    monkeypatch.setenv("JNMF_JAX_CACHE", "off")
    assert compilation_cache_dir(settings) is None
