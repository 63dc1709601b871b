"""Sharding a fit over a device mesh, on one host or many: ``jnmf.nmf(V, r, mesh=...)``.

Layout.  A ``jax.sharding.Mesh`` whose axes are named from ``AXES`` splits

* V (n×m) and the entry weights by columns over ``"columns"`` and by rows over ``"rows"``
  (MPI-FAUN's 2-D layout when both are present): V is ``P("rows", "columns")``;
* H (r×m) by columns (``P(None, "columns")``) and W (n×r) by rows (``P("rows", None)``);
* a batch of restarts over ``"restarts"`` (one solve per slice of the devices).

An axis that is absent is not split.  The whole fit stays one ``jax.jit`` program; the
shardings of V and of the starting factors are the only ones set by hand, and XLA's SPMD
partitioner (GSPMD) derives the rest.  Every product with V is local to a device up to a
sum over the split dimension: WᵀV (r×m) is summed over ``"rows"``, V Hᵀ (n×r) over
``"columns"``, the Grams WᵀW and HHᵀ (r×r) and scalars (objective, KKT, max V) over their
split axes.  So an iteration moves only r×r, n×r and r×m blocks (all-reduces), never V or
WH: ``tests/test_sharding.py`` reads the compiled program and checks that no collective has
an operand larger than max(n, m)·r elements per restart.  Results equal the single-device
fit up to the order of floating-point sums (1e-10 in float64, measured ~1e-14).

NNDSVD inits take an SVD of the whole V, which XLA does not partition: with a mesh that SVD
gathers V onto every device once, before the loop.  Use ``init="random"`` or pass
``init=(W0, H0)`` for data that one device cannot hold.  Sparse V cannot be sharded yet.

Multi-host.  Every process runs the same script (SPMD, one controller per host):

    import jax, jnmf
    jax.distributed.initialize(coordinator_address="host0:1234",
                               num_processes=2, process_id=PROCESS_ID)
    mesh = jnmf.shard.make_mesh()                 # all devices of all processes, "columns"
    V = jax.make_array_from_process_local_data(   # each process: its own block of columns
        jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, "columns")), V_local)
    sol = jnmf.nmf(V, rank=20, mesh=mesh, key=0)  # same arguments on every process
    W, H = jnmf.shard.gather((sol.W, sol.H))      # NumPy copies of the global factors

V may also be a NumPy array holding all of V, identical on every process (each process
then keeps only its columns on its devices).  A global V that no process holds entirely
is validated by small compiled reductions instead of on the host (NaN, ±inf, negative
entries, zeros where β ≤ 0); it must already be float32 or float64.  On CPU, JAX needs
``jax.config.update("jax_cpu_collectives_implementation", "gloo")`` before
``initialize`` for collectives across processes.  The factors come back as global arrays
(W split by rows, H by columns); ``gather`` copies them to every host.
"""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jnmf.checks import check_nonneg_scalar, is_sparse_input
from jnmf.divergence import BetaDivergence
from jnmf.problem import Factors, Problem

AXES = ("restarts", "rows", "columns")

__all__ = ["AXES", "Layout", "gather", "layout_for", "make_mesh"]


def make_mesh(columns: int | None = None, *, rows: int = 1, restarts: int = 1, devices=None):
    """A ``Mesh`` of shape (restarts, rows, columns) with the axis names of ``AXES``.

    ``devices``: default ``jax.devices()`` (every device of every process); ``columns``
    defaults to what the other two leave, len(devices) / (rows · restarts).
    """
    devices = list(jax.devices() if devices is None else devices)
    for name, size in (("rows", rows), ("restarts", restarts)):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"{name} must be an integer ≥ 1, got {size!r}")
    if columns is None:
        columns = len(devices) // (rows * restarts)
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be an integer ≥ 1, got {columns!r}")
    need = restarts * rows * columns
    if need != len(devices):
        raise ValueError(
            f"a mesh of restarts × rows × columns = {restarts} × {rows} × {columns} = {need} "
            f"devices does not match the {len(devices)} devices given"
        )
    return Mesh(np.array(devices).reshape(restarts, rows, columns), AXES)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each array of a fit lives on ``mesh`` (module docstring); hashable, so a fit's
    compiled program is keyed by it."""

    mesh: Mesh

    def _axis(self, name: str) -> str | None:
        return name if name in self.mesh.axis_names else None

    def size(self, name: str) -> int:
        """The number of devices along axis ``name`` (1 when the mesh lacks it)."""
        return self.mesh.shape[name] if name in self.mesh.axis_names else 1

    def data(self) -> NamedSharding:
        """V and the weights: rows over "rows", columns over "columns"."""
        return NamedSharding(self.mesh, P(self._axis("rows"), self._axis("columns")))

    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    def constrain(self, factors: Factors, batched: bool) -> Factors:
        """Factors with W split by rows, H by columns (and a leading batch axis of restarts
        over "restarts" when ``batched``), as a sharding constraint inside ``jit``."""
        rows, cols = self._axis("rows"), self._axis("columns")
        lead = (self._axis("restarts"),) if batched else ()
        W = jax.lax.with_sharding_constraint(factors.W, NamedSharding(self.mesh, P(*lead, rows)))
        H = jax.lax.with_sharding_constraint(
            factors.H, NamedSharding(self.mesh, P(*lead, None, cols))
        )
        return Factors(W, H)

    def place_problem(self, problem: Problem) -> Problem:
        """The problem with V and the weights split over the mesh, every other array
        replicated, and no caches (the compiled program builds Vᵀ from the split V)."""
        problem = problem.replace(V_T=None, weights_T=None, V_sq=None)
        data = self.data()
        V = put(problem.V, data)
        weights = None if problem.weights is None else put(problem.weights, data)
        rest = self.replicate(problem.replace(V=None, weights=None))
        return rest.replace(V=V, weights=weights)

    def replicate(self, tree):
        """Every array leaf of ``tree`` replicated on every device of the mesh."""
        sharding = self.replicated()
        return jax.tree_util.tree_map(
            lambda x: put(x, sharding) if isinstance(x, (jax.Array, np.ndarray)) else x, tree
        )


def put(x, sharding: NamedSharding) -> jax.Array:
    """``x`` as a global array with ``sharding``.

    With one process this is ``jax.device_put``.  With several, a host value (NumPy, or a
    JAX array that this process holds entirely) is sliced per device, so that each process
    keeps only its own part, and a global array is resharded by a compiled identity.  PRNG
    key arrays keep their key type.
    """
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = put(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    if isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim):
        return x
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return jax.jit(lambda y: y, out_shardings=sharding)(x)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def is_global(V) -> bool:
    """True for a JAX array that no single process holds entirely (multi-host input)."""
    return isinstance(V, jax.Array) and not V.is_fully_addressable


def refuse_sparse(V) -> None:
    """``ValueError`` for sparse V (``jnmf.sparse.SparseMatrix``, BCOO or SciPy sparse) with
    a mesh: not supported yet."""
    if is_sparse_input(V):
        raise ValueError(
            f"mesh= does not support sparse V yet (got {type(V).__name__} of shape "
            f"{tuple(V.shape)}): fit it without mesh=, or pass a dense V"
        )


def layout_for(mesh, shape: tuple[int, int], n_restarts: int, batch_size) -> Layout:
    """Validate ``mesh`` for V of ``shape`` and ``n_restarts``; return its ``Layout``.

    Raises ``ValueError`` when ``mesh`` is not a ``jax.sharding.Mesh``, has an axis not in
    ``AXES``, does not divide n (rows), m (columns) or the restarts evenly, or when restarts
    are split over devices while ``batch_size`` asks for ``lax.map`` (restarts one after
    another cannot be spread over devices).
    """
    if not isinstance(mesh, Mesh):
        raise ValueError(
            f"mesh must be a jax.sharding.Mesh (e.g. jnmf.shard.make_mesh()), got "
            f"{type(mesh).__name__}"
        )
    unknown = [a for a in mesh.axis_names if a not in AXES]
    if unknown:
        raise ValueError(
            f"mesh axes {unknown} have no meaning here: name the axes from {AXES} "
            "('columns' splits V's columns, 'rows' its rows, 'restarts' the restarts)"
        )
    layout = Layout(mesh)
    n, m = shape
    for name, length, what in (("columns", m, "m"), ("rows", n, "n")):
        size = layout.size(name)
        if length % size:
            raise ValueError(
                f"V has {what} = {length} {name}, which the mesh's {name!r} axis of size "
                f"{size} does not split evenly: choose a mesh whose {name!r} size divides "
                f"{length}"
            )
    size = layout.size("restarts")
    if size > 1 and n_restarts > 1:
        if n_restarts % size:
            raise ValueError(
                f"n_restarts = {n_restarts} cannot be split evenly over the mesh's "
                f"'restarts' axis of size {size}: use a multiple of {size}"
            )
        if batch_size not in ("auto", None):
            raise ValueError(
                f"batch_size={batch_size!r} runs restarts one batch after another, which "
                "cannot spread them over the mesh's 'restarts' axis: use batch_size=None "
                "(or 'auto')"
            )
    return layout


def global_problem(V, beta, layout: Layout, *, weights=None, **penalties) -> Problem:
    """A ``Problem`` for a global V (or weights) that no process holds entirely, validated
    on the devices of ``layout``'s mesh.

    V and the weights are first placed as ``layout.data()`` says; small compiled reductions
    then count NaN, infinite and negative entries of V (where the weight, if any, is
    positive) and its zeros when β ≤ 0, with ``make_problem``'s messages.  V (and the
    weights) must already be float32 or float64.
    """
    divergence = BetaDivergence(beta)
    for name, x in (("V", V), ("weights", weights)):
        if x is None:
            continue
        if not hasattr(x, "dtype"):
            raise ValueError(f"{name} must be an array when the data are a global array")
        if x.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix (n×m), got shape {tuple(x.shape)}")
        if x.dtype not in (jnp.float32, jnp.float64):
            raise ValueError(
                f"a global {name} must be float32 or float64 (got {x.dtype}): convert each "
                "process's block before building the global array"
            )
    if V.shape[0] == 0 or V.shape[1] == 0:
        raise ValueError(f"V is empty (shape {tuple(V.shape)}): nothing to factorize")
    V = put(V, layout.data())
    if weights is not None:
        if weights.shape != V.shape:
            raise ValueError(
                f"weights must have the shape of V {tuple(V.shape)}, got {tuple(weights.shape)}"
            )
        weights = put(weights, layout.data()).astype(V.dtype)
    counts = {k: int(v) for k, v in _counts(V, weights).items()}
    if weights is not None:
        if counts["weights_negative"]:
            raise ValueError(f"weights has {counts['weights_negative']} negative entries")
        if counts["observed"] == 0:
            raise ValueError("every weight is 0: there is no data to fit")
    if counts["nan"]:
        raise ValueError(
            f"V has {counts['nan']} NaN entries; NMF needs finite data (give missing entries "
            "weight 0 with `weights=` to ignore them)"
        )
    if counts["inf"]:
        raise ValueError(f"V has {counts['inf']} infinite entries; NMF needs finite data")
    if counts["negative"]:
        raise ValueError(
            f"V has {counts['negative']} negative entries; NMF needs non-negative data: "
            "shift, clip or use a signed method"
        )
    b = divergence.beta
    if isinstance(b, float) and b <= 0 and counts["zero"]:
        raise ValueError(
            f"V has {counts['zero']} zero entries, but the β-divergence with β = {b:g} is "
            "undefined at V_ij = 0 (log 0 / division by 0). Add a small constant to V, give "
            "those entries weight 0, or use β > 0 (e.g. 'kullback-leibler')"
        )
    pens = {
        name: jnp.asarray(check_nonneg_scalar(name, penalties.get(name, 0.0)), dtype=V.dtype)
        for name in ("l1_W", "l1_H", "l2_W", "l2_H")
    }
    return Problem(V=V, divergence=divergence, weights=weights, **pens)


@jax.jit
def _counts(V, weights):
    """Entry counts over the whole (sharded) V: each a scalar all-reduce."""
    observed = jnp.ones(V.shape, bool) if weights is None else weights > 0
    vals = jnp.where(observed, V, 0.0)
    out = {
        "nan": jnp.sum(jnp.isnan(vals)),
        "inf": jnp.sum(jnp.isinf(vals)),
        "negative": jnp.sum(vals < 0),
        "zero": jnp.sum((V == 0) & observed),
        "observed": jnp.sum(observed),
    }
    if weights is not None:
        out["weights_negative"] = jnp.sum(weights < 0) + jnp.sum(~jnp.isfinite(weights))
    return out


def gather(tree):
    """``tree`` with every JAX array leaf copied to a NumPy array of its global value on
    every process (``multihost_utils.process_allgather`` for arrays split across
    processes; a plain copy otherwise)."""
    from jax.experimental import multihost_utils

    def one(x):
        if not isinstance(x, jax.Array):
            return x
        if x.is_fully_addressable or x.is_fully_replicated:
            return np.asarray(x)
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree_util.tree_map(one, tree)


def collective_sizes(hlo_text: str) -> list[tuple[str, tuple[int, ...]]]:
    """(kind, shape) of every operand of every collective in a compiled program's text.

    Kinds: all-reduce, all-gather, all-to-all, collective-permute, reduce-scatter (their
    asynchronous ``-start`` forms included).  Shapes are read from the instruction's result
    type, e.g. ``%x = (f64[3,32]{1,0}, f64[3,3]{1,0}) all-reduce(...)``; for an all-gather
    that is the gathered size, an upper bound of what crosses devices.
    """
    found = []
    for line in hlo_text.splitlines():
        match = _COLLECTIVE.search(line)
        if match is None:
            continue
        for dims in _ARRAY_TYPE.findall(match.group("type")):
            found.append((match.group("kind"), tuple(int(d) for d in dims.split(",") if d)))
    return found


_COLLECTIVE = re.compile(
    r"=\s*(?P<type>.*?)\s(?P<kind>all-reduce|all-gather|all-to-all|collective-permute|"
    r"reduce-scatter)(?:-start)?\("
)
_ARRAY_TYPE = re.compile(r"\b(?:pred|[suf]\d+|bf16|c64|c128)\[([\d,]*)\]")
