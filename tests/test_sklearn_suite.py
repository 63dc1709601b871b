"""scikit-learn's own NMF tests, run on ``jnmf.NMF`` and ``jnmf.MiniBatchNMF``, x64 off and on.

The test below starts one pytest process per x64 setting on scikit-learn's installed test
module ``sklearn/decomposition/tests/test_nmf.py`` (nothing of it is copied here) with this
file loaded as a plugin (``-p tests.test_sklearn_suite``).  As a plugin, before the module is
imported, it sets JAX's precision and replaces ``sklearn.decomposition.NMF`` with
``jnmf.NMF``, ``MiniBatchNMF`` with ``jnmf.MiniBatchNMF`` and
``sklearn.decomposition.non_negative_factorization`` with
``jnmf.estimator.non_negative_factorization`` (a thin function over ``jnmf.NMF``), so the
module's ``from sklearn.decomposition import NMF, …`` and its parametrizations get jnmf's.
The tests listed in ``tests/sklearn_suite_inapplicable.py`` (with their reasons) are
deselected; every other one must pass.

Compiling dominates the run (one program per shape, dtype, solver and static β, ~0.3–1 s
each).  The two processes run side by side and share nothing, so by default they keep no
persistent compilation cache (writing every program to disk cost ~4 s a process); set
``JNMF_TEST_JAX_CACHE`` to a folder to keep one across runs (a warm cache makes each process
several times faster).
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

_X64 = "JNMF_SKLEARN_SUITE_X64"  # set in the child process: "0" or "1"
_REPORT = "JNMF_SKLEARN_SUITE_REPORT"  # where the child writes its JSON report
_CACHE = "JNMF_SKLEARN_SUITE_CACHE"  # JAX compilation cache folder of the child
_ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------- the plugin (child)


def _inapplicable_key(item, keys) -> str | None:
    """The key of ``INAPPLICABLE`` that matches ``item`` (``name`` or ``name[id pattern]``)."""
    callspec = getattr(item, "callspec", None)
    ident = callspec.id if callspec is not None else None
    for key in keys:
        name, _, pattern = key.partition("[")
        if name != item.originalname:
            continue
        if not pattern:
            return key
        if ident is not None and fnmatch.fnmatchcase(ident, pattern[:-1]):
            return key
    return None


class _SuitePlugin:
    """Deselects the inapplicable tests and records what ran (active only in the child)."""

    def __init__(self, report_path: str):
        from tests.sklearn_suite_inapplicable import INAPPLICABLE

        self.inapplicable = INAPPLICABLE
        self.report_path = report_path
        self.matched: dict[str, int] = {key: 0 for key in INAPPLICABLE}
        self.outcomes: dict[str, str] = {}
        self.collected = 0

    def pytest_collection_modifyitems(self, config, items):
        self.collected = len(items)
        keep, drop = [], []
        for item in items:
            key = _inapplicable_key(item, self.inapplicable)
            if key is None:
                keep.append(item)
            else:
                self.matched[key] += 1
                drop.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            previous = self.outcomes.get(report.nodeid)
            if previous in (None, "passed"):
                self.outcomes[report.nodeid] = report.outcome

    def pytest_sessionfinish(self, session):
        Path(self.report_path).write_text(
            json.dumps(
                {
                    "collected": self.collected,
                    "matched": self.matched,
                    "outcomes": self.outcomes,
                }
            )
        )


def pytest_configure(config):
    """Runs only in the child (this module loaded with ``-p``); the outer run skips hooks in
    test modules."""
    if os.environ.get(_X64) is None:
        return
    import jax

    jax.config.update("jax_enable_x64", os.environ[_X64] == "1")
    cache = os.environ.get(_CACHE)
    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

    import sklearn.decomposition

    import jnmf
    from jnmf.estimator import non_negative_factorization

    sklearn.decomposition.NMF = jnmf.NMF
    sklearn.decomposition.MiniBatchNMF = jnmf.MiniBatchNMF
    sklearn.decomposition.non_negative_factorization = non_negative_factorization
    config.pluginmanager.register(_SuitePlugin(os.environ[_REPORT]), "jnmf-sklearn-suite")


# ----------------------------------------------------------------------- the test (parent)


def _sklearn_test_file() -> Path:
    sklearn = pytest.importorskip("sklearn")
    path = Path(sklearn.__file__).parent / "decomposition" / "tests" / "test_nmf.py"
    if not path.exists():
        pytest.skip(f"scikit-learn {sklearn.__version__} ships no {path}")
    return path


def _start(x64: bool, folder: Path, cache: str) -> tuple[subprocess.Popen, Path, Path]:
    report = folder / f"report-x64-{int(x64)}.json"
    log = folder / f"log-x64-{int(x64)}.txt"
    (folder / "pytest.ini").write_text("[pytest]\n")
    env = dict(os.environ, **{_X64: str(int(x64)), _REPORT: str(report), _CACHE: cache})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(_sklearn_test_file()),
        "-p",
        "tests.test_sklearn_suite",
        "-p",
        "no:cacheprovider",
        "-c",
        str(folder / "pytest.ini"),
        "--rootdir",
        str(folder),
        "-q",
        "-rfE",
        "--tb=short",
        "--durations=12",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=_ROOT, env=env, stdout=out, stderr=out)
    return process, report, log


def test_sklearn_nmf_suite_passes_on_jnmf(tmp_path):
    """Every applicable test of scikit-learn's test_nmf.py passes, x64 on and off.

    The two processes run side by side (compiling is single-threaded: on two cores the pair
    takes about as long as its slower half).
    """
    _sklearn_test_file()
    cache = os.environ.get("JNMF_TEST_JAX_CACHE", "")
    runs = []
    for x64 in (True, False):
        runs.append((x64, time.perf_counter(), *_start(x64, tmp_path, cache)))
    problems = []
    for x64, start, process, report_path, log in runs:
        process.wait(timeout=900)
        seconds = time.perf_counter() - start
        text = log.read_text()
        print(f"x64={x64}: {seconds:.1f} s, load average {os.getloadavg()[0]:.1f}\n{text[-3000:]}")
        if not report_path.exists():
            problems.append(f"x64={x64}: no report (exit code {process.returncode})\n{text}")
            continue
        report = json.loads(report_path.read_text())
        unmatched = [key for key, count in report["matched"].items() if count == 0]
        failed = sorted(k for k, v in report["outcomes"].items() if v != "passed")
        passed = sum(v == "passed" for v in report["outcomes"].values())
        if unmatched:
            problems.append(f"x64={x64}: inapplicable keys that match no test: {unmatched}")
        if failed or process.returncode != 0:
            problems.append(
                f"x64={x64}: {len(failed)} of {passed + len(failed)} applicable tests failed "
                f"(exit code {process.returncode}): {failed}\n{text[-20000:]}"
            )
        if passed == 0:
            problems.append(f"x64={x64}: no test ran\n{text}")
    assert not problems, "\n\n".join(problems)
