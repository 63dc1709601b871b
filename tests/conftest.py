"""Test configuration: float64 everywhere, fixed seeds."""

import gc
import os
import tempfile

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)
# A persistent compilation cache shared by every test module (and by the scikit-learn suite's
# child process, which reads the same variable): the per-module cache release below then
# costs a disk read, not a recompilation.  Set JNMF_TEST_JAX_CACHE to keep it elsewhere.
jax.config.update(
    "jax_compilation_cache_dir",
    os.environ.get("JNMF_TEST_JAX_CACHE", os.path.join(tempfile.gettempdir(), "jnmf-jax-cache")),
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def low_rank(rng, n, m, r, noise=0.0, offset=0.0):
    """V = W H (+ noise) with strictly positive factors, and the factors."""
    W = rng.uniform(0.1, 1.0, (n, r))
    H = rng.uniform(0.1, 1.0, (r, m))
    V = W @ H + offset
    if noise:
        V = np.abs(V + noise * rng.standard_normal(V.shape))
    return V, W, H


@pytest.fixture(autouse=True)
def _float64():
    """Every test starts with x64 on, even after one that ran the experiment CLI (which sets
    JAX's precision from its config)."""
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", True)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module. A full run otherwise keeps
    thousands of executables alive (5.7 GB resident) and XLA's CPU compiler crashed with a
    segmentation fault late in the run; each module compiles what it needs anyway."""
    yield
    jax.clear_caches()
    gc.collect()
