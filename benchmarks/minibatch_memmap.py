"""Online NMF over a float32 memmap larger than the process's memory limit.

    python benchmarks/minibatch_memmap.py                 # 2.4 GB file, 1 GiB limit
                                                          # (10 passes, ~10 min on 2 cores)
    python benchmarks/minibatch_memmap.py --quick         # 48 MB file, a smoke test

The script limits itself with ``resource.setrlimit(RLIMIT_DATA, …)`` before importing JAX,
writes X = counts (m samples × n features, row-major float32) to a file block by block,
checks that the limit bites (allocating the file's size fails), then runs
``jnmf.minibatch_nmf`` (KL, β = 1) over ``np.memmap(file, mode="r").T``, i.e. V = Xᵀ
(n × m, Fortran-ordered, so each column block is one contiguous read), and deletes the file.

Why RLIMIT_DATA and not RLIMIT_AS: RLIMIT_AS counts every mapping, the file's own included,
so a memmap of a file larger than an RLIMIT_AS limit cannot be created at all.  RLIMIT_DATA
(Linux ≥ 4.7) counts the heap and every private writable mapping — all that JAX, XLA and
NumPy allocate — but not a read-only shared file mapping, whose pages the kernel can drop and
reread: exactly the memory a memmap is meant to spare.  (JAX itself starts under RLIMIT_AS =
2 GiB here too; it is the file mapping that rules RLIMIT_AS out.)

Data: V = Poisson(W* H*), W* n×r and H* r×m with entries |N(0,1)| (H* drawn per block from
the block's seed, so nothing of size m·n is ever held).  The stated objective is the KL
divergence D(V | W* H*) of the generating factors, summed block by block while writing:
the fit must reach it or go below it (a rank-r maximum-likelihood fit of Poisson data fits
some of the noise).  The figures, with the command and the load average, go into
``benchmarks/MINIBATCH.md``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time


def _status(field: str) -> float:
    """A /proc/self/status field in MiB (VmHWM: peak resident; VmData: private data)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="features (rows of V)")
    parser.add_argument("--m", type=int, default=3_000_000, help="samples (columns of V)")
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--batch", type=int, default=20_000, help="columns per block")
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--inner-iter", type=int, default=10)
    parser.add_argument("--forget", type=float, default=0.0)
    parser.add_argument("--limit-gib", type=float, default=1.0, help="RLIMIT_DATA in GiB")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the file goes")
    parser.add_argument("--quick", action="store_true", help="n=200, m=60000: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.n, args.m, args.batch, args.passes = 200, 60_000, 5_000, 2
    file_bytes = 4 * args.n * args.m
    if file_bytes > 3 * 10**9:
        sys.exit(f"the file would take {file_bytes / 1e9:.2f} GB; keep it under 3 GB")
    limit = int(args.limit_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    import numpy as np  # noqa: E402 (after the limit, so every allocation counts)

    print(f"load average before: {os.getloadavg()}")
    print(
        f"RLIMIT_DATA = {limit / 2**30:.2f} GiB; file {args.m} × {args.n} float32 = "
        f"{file_bytes / 2**30:.2f} GiB ({file_bytes / limit:.2f}× the limit)"
    )
    try:
        np.ones(file_bytes // 4, np.float32)
    except MemoryError:
        print("allocating the file's size in memory: MemoryError (the limit bites)")
    else:
        if not args.quick:
            sys.exit("the limit did not stop an allocation of the file's size: not a valid run")
        print("--quick: the file fits under the limit (a smoke test, not a valid run)")

    import jax  # noqa: E402

    import jnmf  # noqa: E402

    rng = np.random.default_rng(0)
    W_true = np.abs(rng.standard_normal((args.n, args.rank)))
    fd, path = tempfile.mkstemp(suffix=".f32", dir=args.dir)
    os.close(fd)
    try:
        start = time.perf_counter()
        X = np.memmap(path, dtype=np.float32, mode="w+", shape=(args.m, args.n))
        truth = 0.0
        for first in range(0, args.m, args.batch):
            last = min(first + args.batch, args.m)
            block_rng = np.random.default_rng([1, first])
            H_block = np.abs(block_rng.standard_normal((args.rank, last - first)))
            rate = W_true @ H_block  # n × b
            counts = block_rng.poisson(rate).astype(np.float32)
            X[first:last] = counts.T
            c = counts.astype(np.float64)
            pos = c > 0
            truth += float(np.sum(np.where(pos, c * np.log(np.where(pos, c, 1.0) / rate), 0.0)))
            truth += float(np.sum(rate - c))
        X.flush()
        del X
        print(f"wrote {path} in {time.perf_counter() - start:.1f} s; D(V | W* H*) = {truth:.6e}")
        V = np.memmap(path, dtype=np.float32, mode="r", shape=(args.m, args.n)).T
        print(f"devices: {jax.devices()}; jnmf source: memmap view of shape {V.shape}")

        def report(p, objective):
            elapsed = time.perf_counter() - clock
            print(
                f"pass {p + 1}: objective {objective:.6e} ({objective / truth:.4f} × D(V | W* H*)),"
                f" {elapsed:.1f} s so far, VmData {_status('VmData'):.0f} MiB, "
                f"peak resident (file pages included) {_status('VmHWM'):.0f} MiB, "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )

        clock = time.perf_counter()
        result = jnmf.minibatch_nmf(
            V,
            args.rank,
            beta="kullback-leibler",
            batch_size=args.batch,
            n_passes=args.passes,
            forget_factor=args.forget,
            inner_iter=args.inner_iter,
            key=0,
            callback=report,
        )
        final = float(result.objective[-1])
        print(
            f"done: {result.n_passes} passes, {result.n_steps} steps in "
            f"{time.perf_counter() - clock:.1f} s; final objective {final:.6e} = "
            f"{final / truth:.4f} × D(V | W* H*): "
            + ("REACHED" if final <= truth else "NOT REACHED")
        )
    finally:
        os.remove(path)
        print(f"deleted {path}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
