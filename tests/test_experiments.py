"""Configs, validation before computing, the study registry and the import graph of
``experiments`` (each module importable alone; no import cycle)."""

import ast
import math
import pathlib
import subprocess
import sys

import pytest

from experiments import registry
from experiments.cli import run_main
from experiments.config import ConfigError, load_config, parse_config
from experiments.store import RunStore
from experiments.studies.grid import GridConfig, grid_tasks
from experiments.study import StudyConfigError

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "experiments"
MY_CONFIGS = ["quickstart", "convergence", "task_driven_digits", "brunet"]


def grid(tmp_path, **study):
    section = {"datasets": ["synthetic"], "solvers": ["mu"], "ranks": [3], **study}
    section.setdefault("data", {"synthetic": {"n": 20, "m": 15}})
    raw = {"name": "quickstart", "run": {"out": str(tmp_path / "out")}, "study": section}
    return parse_config(raw)


@pytest.mark.parametrize("name", MY_CONFIGS)
def test_shipped_configs_validate(name):
    config = load_config(ROOT / "configs" / f"{name}.toml")
    assert config.study == config.name.replace("_", "-")
    assert config.study_obj.tasks(config.parsed)


def test_convergence_grid_size():
    config = load_config(ROOT / "configs" / "convergence.toml")
    tasks = config.study_obj.tasks(config.parsed)
    assert len(tasks) == 3 * 8 * 3 * 1 * 3
    assert tasks[0].key == "orl_faces__mu__beta2__r20__s0"


@pytest.mark.parametrize(
    ("study", "message"),
    [
        ({"tol": math.nan}, "study.tol must be a finite number"),
        ({"tol": -1.0}, "study.tol must be ≥ 0"),
        ({"betas": [math.inf]}, r"study.betas\[0\] must be a finite number"),
        ({"betas": ["kl"]}, r"study.betas\[0\] must be a number"),
        ({"data": {"synthetic": {"noise": math.nan}}}, "synthetic.noise must be a finite"),
        ({"data": {"synthetic": {"noise": -1.0}}}, "synthetic.noise must be ≥ 0"),
        ({"data": {"synthetic": {"n": -200}}}, "synthetic.n must be ≥ 1"),
        (
            {"ranks": [100000], "data": {"synthetic": {"n": 200, "m": 150}}},
            r"ranks \[100000\] exceed min\(n, m\) = 150",
        ),
        ({"solvers": ["mu", "nope"]}, "'nope' is not a registered solver"),
        ({"ranks": [3, 3]}, "duplicates"),
        ({"max_iters": 3}, "did you mean 'max_iter'"),
        ({"data": {"faces": {}}}, "not in datasets"),
    ],
)
def test_grid_validation_refuses_before_computing(tmp_path, study, message):
    with pytest.raises(StudyConfigError, match=message):
        grid(tmp_path, **study)
    assert not (tmp_path / "out").exists()


def test_out_under_a_regular_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    raw = {"name": "quickstart", "run": {"out": str(blocker / "results")}, "study": {}}
    with pytest.raises(ConfigError, match="which is a regular file"):
        parse_config(raw)


def test_cli_reports_invalid_configs_with_exit_code_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "quickstart"\n[run]\nplatform = "cpu"\n[study]\ndatasets = ["synthetic"]\n'
        'solvers = ["mu"]\nranks = [2]\ntol = nan\n'
    )
    assert run_main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "invalid config" in err and "study.tol must be a finite number" in err
    path.write_text('name = "quickstart"\nstudy = "quickstart"\n[study]\nranks = [2]\n')
    assert run_main([str(path)]) == 2
    assert "remove the `study = ...` line" in capsys.readouterr().err
    path.write_text('name = "quickstart"\n[study]\nranks = [2]\n')
    assert run_main([str(path), "--out", str(path / "results")]) == 2
    assert "which is a regular file" in capsys.readouterr().err


def test_grid_tasks_nest_datasets_solvers_betas_ranks_seeds():
    config = GridConfig(datasets=("a", "b"), solvers=("mu", "hals"), ranks=(2, 3), seeds=(0, 1))
    keys = [t.key for t in grid_tasks(config)]
    assert len(keys) == 16 and len(set(keys)) == 16
    assert keys[:3] == ["a__mu__beta2__r2__s0", "a__mu__beta2__r2__s1", "a__mu__beta2__r3__s0"]


def test_registry_names_and_missing_module_message(monkeypatch):
    expected = {"parts", "sparsity", "topics", "noise-models", "mm-vs-heuristic", "kkt"}
    expected |= {"unmixing", "audio", "quickstart", "convergence", "task-driven-digits", "brunet"}
    assert set(registry.STUDIES) == expected
    monkeypatch.setitem(registry.STUDIES, "ghost", "experiments.studies.ghost:GhostStudy")
    with pytest.raises(registry.UnknownStudy, match="module experiments.studies.ghost does not"):
        registry.get_study("ghost")
    with pytest.raises(ConfigError, match="is unknown; use one of"):
        parse_config({"name": "no-such-study"})


# ---------------------------------------------------------------- the import graph


def modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def imported(module: str) -> set[str]:
    """``experiments`` modules imported anywhere in ``module`` (function bodies included)."""
    path = ROOT / pathlib.Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    known = set(modules())
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != module}
    return found


def import_graph() -> dict[str, set[str]]:
    return {m: imported(m) for m in modules()}


def test_import_graph_has_no_cycle():
    graph = import_graph()
    state: dict[str, int] = {}

    def visit(node, path):
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(node) :] + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in sorted(graph[node]):
            visit(nxt, path + [node])
        state[node] = 2

    for node in graph:
        visit(node, [])
    assert "experiments.study" in graph and graph["experiments.study"] == set()
    assert graph["experiments.registry"] == set()


@pytest.mark.slow  # one interpreter per module (JAX, scikit-learn): ~15 s idle, minutes loaded
def test_each_module_imports_alone_in_a_fresh_interpreter():
    procs = {
        m: subprocess.Popen(
            [sys.executable, "-c", f"import {m}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in modules()
    }
    failures = {}
    for m, proc in procs.items():
        _, err = proc.communicate(timeout=240)
        if proc.returncode != 0:
            failures[m] = err.strip().splitlines()[-1]
    assert not failures, failures


@pytest.mark.slow  # compiles two small solvers (~10 s idle)
def test_grid_study_end_to_end_through_the_cli(tmp_path, capsys):
    path = tmp_path / "quickstart.toml"
    path.write_text(
        f'name = "quickstart"\n[run]\nplatform = "cpu"\nout = "{tmp_path / "out"}"\n'
        '[study]\ndatasets = ["synthetic"]\nsolvers = ["mu", "hals"]\nbetas = [2.0, 1.0]\n'
        "ranks = [3]\nmax_iter = 6\nevery = 2\nsave_factors = true\n"
        "[study.data.synthetic]\nn = 20\nm = 15\nrank = 3\n"
    )
    assert run_main([str(path), "--quiet", "--figures-out", str(tmp_path / "paper")]) == 0
    out = capsys.readouterr().out
    assert "3 computed, 0 resumed, 1 skipped, 0 failed" in out
    names = sorted(p.name for p in (tmp_path / "paper").iterdir())
    assert names == ["quickstart_synthetic_beta1_r3.png", "quickstart_synthetic_beta2_r3.png"]
    config = load_config(path)
    rows = (config.run_dir / "tables" / "summary.csv").read_text().splitlines()
    assert len(rows) == 5 and "skipped" in rows[-1]  # hals at β = 1 is skipped with its reason
    fit = RunStore(config.run_dir).load_result("synthetic__mu__beta2__r3__s0")
    assert fit["W"].shape == (20, 3) and fit["n_iter"] == 6 and fit["compile_s"] > 0
    assert fit["objective"].shape == (3,) and fit["objective"][-1] <= fit["objective0"]


def test_run_folder_depends_on_settings_not_on_out(tmp_path):
    a = grid(tmp_path, max_iter=5)
    b = grid(tmp_path, max_iter=6)
    assert a.run_dir != b.run_dir and a.run_dir.name.startswith("quickstart-")
    moved = parse_config(
        {"name": "quickstart", "run": {"out": str(tmp_path / "elsewhere")}, "study": a.section}
    )
    assert moved.digest() == a.digest() and moved.run_dir.parent == tmp_path / "elsewhere"


@pytest.mark.slow  # Reuters counts from the lda package, sparse and dense (~20 s idle)
def test_grid_study_on_sparse_reuters_equals_dense(tmp_path, capsys):
    """``sparse = true`` hands the runner's fits a SciPy CSR matrix of the real word counts:
    the solvers that take sparse V give the dense run's objectives; kl-cd is skipped with its
    reason."""
    pytest.importorskip("lda")
    results = {}
    for sparse in (False, True):
        path = tmp_path / f"sparse-{sparse}.toml"
        path.write_text(
            f'name = "quickstart"\n[run]\nplatform = "cpu"\nout = "{tmp_path / "out"}"\n'
            '[study]\ndatasets = ["reuters"]\nsolvers = ["mu", "hals", "kl-cd"]\n'
            "betas = [2.0, 1.0]\nranks = [5]\nmax_iter = 10\nevery = 5\ntol = 0.0\n"
            f"[study.data.reuters]\nsparse = {str(sparse).lower()}\n"
        )
        assert run_main([str(path), "--quiet", "--no-figures"]) in (0, 1)
        store = RunStore(load_config(path).run_dir)
        results[sparse] = {k: store.load_result(k) for k in store.task_keys()}
    capsys.readouterr()
    dense, sparse = results[False], results[True]
    for key in (
        "reuters__mu__beta2__r5__s0",
        "reuters__mu__beta1__r5__s0",
        "reuters__hals__beta2__r5__s0",
    ):
        assert "skipped" not in sparse[key], sparse[key]
        assert sparse[key]["best_objective"] == pytest.approx(
            dense[key]["best_objective"], rel=1e-4
        )
    assert "skipped" not in dense["reuters__kl-cd__beta1__r5__s0"]
    assert "sparse" in sparse["reuters__kl-cd__beta1__r5__s0"]["skipped"]


def test_sparse_dataset_needs_offset_zero():
    from experiments.data import parse_datasets

    specs = parse_datasets({"reuters": {"sparse": True}}, ("reuters",), "study.data")
    assert specs["reuters"].sparse
    with pytest.raises(StudyConfigError, match="sparse = true needs offset = 0"):
        parse_datasets({"reuters": {"sparse": True, "offset": 0.1}}, ("reuters",), "study.data")
