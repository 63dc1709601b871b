"""Multi-host fits: two local processes joined by ``jax.distributed.initialize`` (CPU, gloo).

Each child process (this file run as a script) owns 2 virtual CPU devices; together they
form a 4-device mesh.  They fit the cases below with ``jnmf.nmf(..., mesh=...)``, V given
as a global array built from each process's own block of columns (the recipe of
``jnmf.shard``) or as the whole host matrix, gather the factors with ``jnmf.shard.gather``
and process 0 writes them to a file.  The test compares them with a single-process fit.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jnmf

_ROOT = Path(__file__).resolve().parents[1]
N, M, R = 16, 24, 3
COMMON = {"max_iter": 40, "tol": 0.0, "every": 10, "key": 3}
# (name, mesh (restarts, rows, columns), how V is given, nmf keywords)
CASES = [
    ("columns-global-kl", (1, 1, 4), "global", {"beta": 1.0, "solver": "mu"}),
    ("2d-host-hals", (1, 2, 2), "host", {"beta": 2.0, "solver": "hals"}),
    ("restarts-global-mu", (2, 1, 2), "global", {"beta": 2.0, "n_restarts": 4}),
]


def _data() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.uniform(0.1, 1.0, (N, R)) @ rng.uniform(0.1, 1.0, (R, M))


def _child(process_id: int, port: int, out: str) -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=process_id)
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from jnmf.shard import gather, make_mesh

    assert len(jax.devices()) == 4 and len(jax.local_devices()) == 2
    V = _data()
    results = {}
    for name, (restarts, rows, columns), given, kwargs in CASES:
        mesh = make_mesh(columns, rows=rows, restarts=restarts)
        V_in = V
        if given == "global":
            sharding = NamedSharding(mesh, P(None, "columns"))
            # this process's own columns: the block its devices hold
            index = sharding.addressable_devices_indices_map(V.shape)
            cols = sorted({idx[1].start for idx in index.values()})
            width = M // columns
            local = np.concatenate([V[:, c : c + width] for c in cols], axis=1)
            V_in = jax.make_array_from_process_local_data(sharding, local, V.shape)
            assert not V_in.is_fully_addressable
        sol = jnmf.nmf(V_in, R, mesh=mesh, **COMMON, **kwargs)
        W, H, objective = gather((sol.W, sol.H, sol.objective))
        results[f"{name}/W"], results[f"{name}/H"] = W, H
        results[f"{name}/objective"] = objective
    if process_id == 0:
        np.savez(out, **results)
    jax.distributed.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("multihost") / "factors.npz"
    port = _free_port()
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    logs = [out.with_name(f"process{i}.log") for i in range(2)]
    procs = []
    for i in range(2):
        with open(logs[i], "w") as log:
            command = [sys.executable, __file__, str(i), str(port), str(out)]
            procs.append(subprocess.Popen(command, cwd=_ROOT, env=env, stdout=log, stderr=log))
    try:
        codes = [p.wait(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    text = "\n".join(f"--- process {i}\n" + logs[i].read_text()[-4000:] for i in range(2))
    assert codes == [0, 0] and out.exists(), text
    return dict(np.load(out))


@pytest.mark.slow  # two processes that compile every case: about a minute
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_two_processes_equal_one(two_processes, case):
    name, _, _, kwargs = case
    ref = jnmf.nmf(_data(), R, **COMMON, **kwargs)
    for field in ("W", "H"):
        got, want = two_processes[f"{name}/{field}"], np.asarray(getattr(ref, field))
        assert got.shape == want.shape
        assert np.max(np.abs(got - want)) <= 1e-10 * np.max(np.abs(want)), (name, field)
    np.testing.assert_allclose(two_processes[f"{name}/objective"], ref.objective, rtol=1e-10)


if __name__ == "__main__":
    _child(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
