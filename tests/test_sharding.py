"""Sharded fits (``jnmf.nmf(..., mesh=...)``, ``jnmf.shard``) against single-device fits.

The sharded part needs several devices, which XLA's CPU backend only creates when
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` is set before JAX starts: it runs in
a child Python process (this file run as a script), which fits every case on one device and
on a 4-device mesh, compiles the sharded programs and reports, as JSON, the largest
differences and every collective's operand shapes.  The argument checks run here, on a
1-device mesh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

import jnmf
from jnmf.shard import collective_sizes, make_mesh

_ROOT = Path(__file__).resolve().parents[1]
N, M, R = 24, 32, 3  # small, with n·m = 768 far above max(n, m)·r = 96
MAX_ITER = 60

# (name, mesh shape (restarts, rows, columns), nmf keywords)
CASES = [
    ("mu-frobenius", (1, 1, 4), {"beta": 2.0, "solver": "mu"}),
    ("mu-kl", (1, 1, 4), {"beta": 1.0, "solver": "mu"}),
    ("hals", (1, 1, 4), {"beta": 2.0, "solver": "hals"}),
    ("mu-beta-0.5-l1", (1, 1, 4), {"beta": 0.5, "solver": "mu", "l1_H": 0.1}),
    ("mu-kl-weights", (1, 1, 4), {"beta": 1.0, "solver": "mu", "weights": True}),
    ("2d-mu-frobenius", (1, 2, 2), {"beta": 2.0, "solver": "mu"}),
    ("2d-mu-kl", (1, 2, 2), {"beta": 1.0, "solver": "mu"}),
    ("2d-hals", (1, 2, 2), {"beta": 2.0, "solver": "hals"}),
    ("restarts-map-mu-kl", (1, 1, 4), {"beta": 1.0, "solver": "mu", "n_restarts": 3}),
    ("restarts-mesh-mu-kl", (2, 1, 2), {"beta": 1.0, "solver": "mu", "n_restarts": 4}),
    ("restarts-mesh-hals", (2, 1, 2), {"beta": 2.0, "solver": "hals", "n_restarts": 4}),
    ("restarts-all-mu", (2, 1, 2), {"solver": "mu", "n_restarts": 4, "return_restarts": True}),
    ("nndsvda", (1, 1, 4), {"beta": 2.0, "solver": "mu", "init": "nndsvda"}),
    ("global-input-mu-kl", (1, 1, 4), {"beta": 1.0, "solver": "mu", "global": True}),
    # kl-dna: each column takes Newton or MU by the sign of an objective change that is
    # ~0 near a solution, so the order of sums can flip a choice (both descend): ~1e-8
    ("auto-kl", (1, 1, 4), {"beta": 1.0, "solver": "auto"}),
    ("2d-auto-frobenius", (1, 2, 2), {"beta": 2.0, "solver": "auto"}),  # accelerated HALS
]
# the cases whose compiled programs are read (random init: NNDSVD gathers V for its SVD)
HLO_CASES = [
    "mu-frobenius",
    "mu-kl",
    "hals",
    "2d-mu-kl",
    "2d-hals",
    "restarts-mesh-mu-kl",
    "restarts-mesh-hals",
    "auto-kl",
    "2d-auto-frobenius",
]


def data(kwargs):
    rng = np.random.default_rng(0)
    V = rng.uniform(0.1, 1.0, (N, R)) @ rng.uniform(0.1, 1.0, (R, M))
    V[0, :5] = 0.0  # zero entries (β > 0 only)
    weights = None
    if kwargs.get("weights"):
        weights = (rng.uniform(size=V.shape) > 0.2).astype(float)
    return V, weights


def _child() -> None:
    """Runs with 4 host devices: fits each case on one device and on its mesh, prints JSON."""
    jax.config.update("jax_enable_x64", True)
    cache = os.environ.get("JNMF_TEST_JAX_CACHE")
    if cache:  # the test session's persistent compilation cache (tests/conftest.py)
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from jnmf.batch import lower_fit, restart_keys
    from jnmf.problem import make_problem
    from jnmf.shard import layout_for
    from jnmf.solve import Budget
    from jnmf.solvers import get_solver
    from jnmf.solvers.auto import pick_solver

    assert len(jax.devices()) == 4, jax.devices()
    report = {}
    for name, shape, kwargs in CASES:
        kwargs = dict(kwargs)
        make_global = kwargs.pop("global", False)
        V, weights = data(kwargs)
        kwargs["weights"] = weights
        common = dict(max_iter=MAX_ITER, tol=0.0, every=10, key=1, **kwargs)
        ref = jnmf.nmf(V, R, **common)
        mesh = make_mesh(shape[2], rows=shape[1], restarts=shape[0])
        V_in = V
        if make_global:
            V_in = jax.make_array_from_callback(
                V.shape, NamedSharding(mesh, P(None, "columns")), lambda index, V=V: V[index]
            )
        sol = jnmf.nmf(V_in, R, mesh=mesh, **common)
        scale_W = float(np.max(np.abs(np.asarray(ref.W))))
        scale_H = float(np.max(np.abs(np.asarray(ref.H))))
        report[name] = {
            "W": float(np.max(np.abs(np.asarray(sol.W) - np.asarray(ref.W)))) / scale_W,
            "H": float(np.max(np.abs(np.asarray(sol.H) - np.asarray(ref.H)))) / scale_H,
            "objective": float(
                np.max(np.abs(np.asarray(sol.objective) / np.asarray(ref.objective) - 1))
            ),
            "n_iter": bool(np.array_equal(np.asarray(sol.n_iter), np.asarray(ref.n_iter))),
            "W_shard": list(sol.W.sharding.shard_shape(sol.W.shape)),
            "H_shard": list(sol.H.sharding.shard_shape(sol.H.shape)),
        }
        if name in HLO_CASES:
            n_restarts = kwargs.get("n_restarts", 1)
            problem = make_problem(V, kwargs["beta"], weights=weights)
            budget = Budget(max_iter=MAX_ITER, tol=0.0, every=10)
            layout = layout_for(mesh, V.shape, n_restarts, "auto")
            batch = None if layout.size("restarts") > 1 else 1
            keys = restart_keys(1, n_restarts)
            solver = kwargs["solver"]
            solver = get_solver(pick_solver(problem) if solver == "auto" else solver)
            lowered = lower_fit(problem, solver, keys, "random", R, budget, batch, False, layout)
            text = lowered.compile().as_text()
            report[name]["collectives"] = collective_sizes(text)
            report[name]["restarts_per_device"] = (
                n_restarts // layout.size("restarts") if batch is None else 1
            )
    print("JSON" + json.dumps(report))


@pytest.fixture(scope="module")
def child_report():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["JNMF_TEST_JAX_CACHE"] = jax.config.jax_compilation_cache_dir or ""
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, __file__],
        cwd=_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("JSON")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(lines[-1][4:])


@pytest.mark.parametrize("name", [case[0] for case in CASES])
def test_sharded_equals_single_device(child_report, name):
    got = child_report[name]
    tol = 1e-6 if name == "auto-kl" else 1e-10  # kl-dna's branch (see CASES)
    obj_tol = 1e-8 if name == "auto-kl" else 1e-10
    assert got["W"] <= tol and got["H"] <= tol and got["objective"] <= obj_tol, got
    assert got["n_iter"], got
    restarts, rows, columns = next(case[1] for case in CASES if case[0] == name)
    lead = [4 // restarts] if name.startswith("restarts-all") else []
    assert got["W_shard"] == lead + [N // rows, R], got  # W split by rows
    assert got["H_shard"] == lead + [R, M // columns], got  # H split by columns


@pytest.mark.parametrize("name", HLO_CASES)
def test_only_small_collectives(child_report, name):
    """Every collective of the compiled sharded fit moves at most max(n, m)·r elements per
    restart held by a device: WᵀV, VHᵀ, Grams and scalars, never V or WH (n·m); only
    all-reduces, but for the restarts' objectives (≤ 4 elements) gathered to pick the best."""
    got = child_report[name]
    sizes = got["collectives"]
    assert sizes, "a sharded fit without collectives cannot be right"
    bound = got["restarts_per_device"] * max(N, M) * R
    too_big = [(kind, shape) for kind, shape in sizes if int(np.prod(shape)) > bound]
    assert not too_big, too_big
    # all-reduces, and for restarts over devices the all-gather of their objectives (the
    # choice of the best: at most n_restarts elements)
    others = [(k, s) for k, s in sizes if k != "all-reduce" and int(np.prod(s)) > 4]
    assert not others, others


def test_collective_sizes_reads_hlo():
    text = (
        "  %a = (f64[3,32]{1,0}, f64[3,3]{1,0}) all-reduce(%x, %y), channel_id=1\n"
        "  %b = f32[] all-reduce-start(%z), channel_id=2\n"
        "  %c = f64[24,32]{1,0} all-gather(%w), dimensions={1}\n"
        "  %d = f64[24,32]{1,0} add(%u, %v)\n"
    )
    assert collective_sizes(text) == [
        ("all-reduce", (3, 32)),
        ("all-reduce", (3, 3)),
        ("all-reduce", ()),
        ("all-gather", (24, 32)),
    ]


# ---------------------------------------------------------------- argument checks (1 device)


def _V():
    return data({})[0]


def test_make_mesh_axes():
    mesh = make_mesh()
    assert mesh.axis_names == ("restarts", "rows", "columns")
    assert mesh.devices.shape == (1, 1, len(jax.devices()))
    with pytest.raises(ValueError, match="does not match"):
        make_mesh(2, rows=3)


def test_mesh_on_one_device_equals_plain_fit():
    V = _V()
    ref = jnmf.nmf(V, R, max_iter=30, tol=0.0)
    sol = jnmf.nmf(V, R, max_iter=30, tol=0.0, mesh=make_mesh())
    np.testing.assert_allclose(np.asarray(sol.W), np.asarray(ref.W), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(sol.H), np.asarray(ref.H), rtol=1e-12)


def test_unknown_axis_name_refused():
    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
    with pytest.raises(ValueError, match="name the axes from"):
        jnmf.nmf(_V(), R, mesh=mesh)


def test_mesh_type_refused():
    with pytest.raises(ValueError, match="jax.sharding.Mesh"):
        jnmf.nmf(_V(), R, mesh="columns")


def test_sparse_refused_with_mesh():
    from jax.experimental import sparse

    from jnmf.checks import as_sparse_matrix

    V = sparse.BCOO.fromdense(_V())
    with pytest.raises(ValueError, match="mesh= does not support sparse V"):
        jnmf.nmf(V, R, mesh=make_mesh())
    with pytest.raises(ValueError, match="mesh= does not support sparse V"):
        jnmf.nmf(as_sparse_matrix(V, "V"), R, mesh=make_mesh())
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(ValueError, match="mesh= does not support sparse V"):
        jnmf.nmf(scipy_sparse.csr_matrix(_V()), R, mesh=make_mesh())


def test_uneven_split_refused(monkeypatch):
    from jnmf.shard import Layout, layout_for

    monkeypatch.setattr(Layout, "size", lambda self, name: {"columns": 5}.get(name, 1))
    with pytest.raises(ValueError, match="does not split evenly"):
        layout_for(make_mesh(), (N, M), 1, "auto")


def test_restarts_with_lax_map_refused(monkeypatch):
    from jnmf.shard import Layout, layout_for

    monkeypatch.setattr(Layout, "size", lambda self, name: {"restarts": 2}.get(name, 1))
    with pytest.raises(ValueError, match="cannot be split evenly"):
        layout_for(make_mesh(), (N, M), 3, "auto")
    with pytest.raises(ValueError, match="batch_size=None"):
        layout_for(make_mesh(), (N, M), 4, 1)
    assert layout_for(make_mesh(), (N, M), 4, None).size("restarts") == 2


def test_bad_data_still_refused_with_mesh():
    V = _V()
    V[1, 1] = -1.0
    with pytest.raises(ValueError, match="negative"):
        jnmf.nmf(V, R, mesh=make_mesh())
    with pytest.raises(ValueError, match="2-D"):
        jnmf.nmf(np.ones(5), R, mesh=make_mesh())


def test_global_problem_checks_on_device():
    from jnmf.shard import Layout, global_problem

    layout = Layout(make_mesh())
    V = _V()
    for bad, match in ((np.nan, "NaN"), (np.inf, "infinite"), (-1.0, "negative")):
        W = V.copy()
        W[2, 3] = bad
        with pytest.raises(ValueError, match=match):
            global_problem(jax.numpy.asarray(W), 1.0, layout)
    with pytest.raises(ValueError, match="zero entries"):
        global_problem(jax.numpy.asarray(V), 0.0, layout)
    with pytest.raises(ValueError, match="float32 or float64"):
        global_problem(jax.numpy.asarray(V, dtype=jax.numpy.int32), 1.0, layout)
    weights = np.ones_like(V)
    weights[2, 3] = 0.0
    W = V.copy()
    W[2, 3] = np.nan
    problem = global_problem(jax.numpy.asarray(W), 1.0, layout, weights=weights)
    assert problem.weights is not None and problem.V.shape == V.shape


if __name__ == "__main__":
    _child()
