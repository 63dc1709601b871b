"""Time-to-target race: jnmf's solvers against scikit-learn, torchnmf, nimfa and TensorLy.

Protocol (../shared/BENCHMARKS.md; the libraries live in race_libraries.py):

* one process; in each repetition every runner runs once, in a rotated order (interleaved);
* every library starts from the same explicit (W0, H0) = |N(0,1)|·√(mean V / r) and has its
  own stopping rule off (fixed iteration chunks); NumPy/torch libraries run twice per
  repetition, with 1 and with 2 BLAS/torch threads;
* a run advances in chunks; only the chunks are timed; after each chunk the error
  e = ‖V − WH‖_F/‖V‖_F (KL: D_KL(V‖WH)/ΣV) is computed in float64 outside the timed part.
  jnmf's chunk is ``jnmf.solve(..., max_iter=c, every=c, tol=0)``; nimfa runs uninterrupted
  with the clock paused while its factors are copied. A run stops at ``--budget`` seconds
  or within τ_min/10 of the reference;
* e_min = the best error of every run and of a long float64 reference run; cells give the
  median time and iterations until e − e_min ≤ τ and the median over repetitions of the
  paired ratio time(baseline) / time(solver), the baseline being scikit-learn ``cd``
  (Frobenius) or ``mu`` (KL) with the faster of 1 and 2 threads *in that repetition*;
  "≥" marks a lower bound (no baseline run reached τ: its whole run time stands in);
* JIT compile time (first call − a warm call) is excluded and printed apart; the load
  average of other processes is read around each race (harness.py) and every ratio of a
  race run under load is marked UNRELIABLE;
* per iteration: jnmf MU and HALS against the XLA product floor (VHᵀ, HHᵀ, W·HHᵀ, WᵀV,
  WᵀW, WᵀW·H chained in a jitted loop), slope between k- and 3k-iteration calls.

    python benchmarks/race.py                        # synthetic + Reuters, β = 2, 1, 0, float32
    python benchmarks/race.py --datasets synthetic,orl,reuters,audio --dtype both
    python benchmarks/race.py --datasets kl --only kl-cd
    python benchmarks/race.py --quick                # smoke test, under 3 minutes

Data sets (--datasets): synthetic dense W H + noise; kl (Poisson counts, β = 1 only); ORL
faces; Reuters counts (lda); audio (pyo drumloop magnitude spectrogram, β = 1 and 0).  At
β = 0 a data set with zeros gets 1e-6·max V added (Itakura-Saito needs V > 0), as the audio
study does; the label says so.
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import harness
import jax
import jax.numpy as jnp
import numpy as np
import race_libraries as libs  # enables float64 in JAX before jnmf is imported
from harness import Contender, markdown_table, run_block

import jnmf

TAUS = (1e-2, 1e-3, 1e-4)


def one_run(runner, W0, H0, err, budget, max_iter, e_stop):
    """[(iterations, seconds, error)] after each chunk, the start included."""
    trace = [(0, 0.0, err(W0, H0))]
    with harness.THREADS(runner.threads):
        if runner.uninterrupted:

            def on_chunk(k, t, W, H):
                e = err(W, H)
                trace.append((k, t, e))
                return t > budget or e <= e_stop or not np.isfinite(e)

            runner.run(W0, H0, on_chunk, max_iter)
            return trace
        state = runner.begin(W0, H0)
        k, t = 0, 0.0
        while t <= budget and k < max_iter:
            t0 = time.perf_counter()
            state = runner.advance(state)
            t += time.perf_counter() - t0
            k += runner.chunk
            e = err(*runner.factors(state))
            trace.append((k, t, e))
            if e <= e_stop or not np.isfinite(e):
                break
    return trace


def reached(trace, target):
    """(iterations, seconds) of the first chunk with e ≤ target, or None."""
    return next(((k, t) for k, t, e in trace if e <= target), None)


def paired_ratio(base_traces, hits, target):
    """Median over repetitions of time(fastest baseline) / time(solver); and whether any
    repetition's baseline is only a lower bound (no baseline run reached the target)."""
    ratios, bound = [], False
    for rep, hit in enumerate(hits):
        if hit is None:
            continue
        base_hits = [reached(traces[rep], target) for traces in base_traces]
        base_times = [h[1] for h in base_hits if h is not None]
        if not base_times:
            bound = True
            base_times = [traces[rep][-1][1] for traces in base_traces]
        ratios.append(min(base_times) / hit[1])
    return (float(np.median(ratios)) if ratios else None), bound


def race(label, V, r, beta, dtype_name, args, ref_solver, ref_iters, budget):
    dtype = np.float32 if dtype_name == "float32" else np.float64
    err = libs.error_fn(V, beta)
    W0, H0 = libs.start(V, r, args.seed)
    print(f"\n## {label}: V {V.shape[0]}×{V.shape[1]}, rank {r}, β = {beta:g}, {dtype_name}")
    load_before = harness.MONITOR.sample()
    t0 = time.perf_counter()
    ref = jnmf.nmf(
        np.asarray(V, np.float64), r, beta=beta, solver=ref_solver, init=(W0, H0),
        max_iter=ref_iters, tol=0.0, every=50,
    )  # fmt: skip
    e_ref = err(np.asarray(ref.W), np.asarray(ref.H))
    print(f"reference: jnmf {ref_solver}, float64, {ref_iters} iterations: e = {e_ref:.8g} "
          f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
    runners = libs.make_runners(V, beta, dtype, args.only)
    compile_s = {
        rn.name: rn.compile_time(W0, H0) for rn in runners if isinstance(rn, libs.JnmfRunner)
    }
    traces = {rn.name: [] for rn in runners}
    e_stop = e_ref + min(TAUS) / 10
    for rep in range(args.reps):
        order = runners[rep % len(runners) :] + runners[: rep % len(runners)]
        for rn in order:
            tr = one_run(rn, W0, H0, err, budget, args.max_iter, e_stop)
            traces[rn.name].append(tr)
            print(f"  rep {rep} {rn.name:26s} {tr[-1][0]:6d} it {tr[-1][1]:7.2f} s "
                  f"e = {tr[-1][2]:.6g}", flush=True)  # fmt: skip
    load_after = harness.MONITOR.sample()
    reliable = max(load_before["others"], load_after["others"]) <= args.load_limit
    mark = "" if reliable else f" UNRELIABLE (load > {args.load_limit:g})"
    print(f"before: {harness.describe_load(load_before)}; after: "
          f"{harness.describe_load(load_after)}{mark and '  →' + mark}")  # fmt: skip
    e_min = min([e_ref] + [e for trs in traces.values() for tr in trs for _, _, e in tr])
    base = [name for name in traces if name.startswith(libs.BASELINE[beta])]
    rows = []
    for rn in runners:
        cells = []
        for tau in TAUS:
            hits = [reached(tr, e_min + tau) for tr in traces[rn.name]]
            ok = [h for h in hits if h is not None]
            if 2 * len(ok) <= len(hits):
                cells.append(f"– ({len(ok)}/{len(hits)})")
                continue
            cell = f"{np.median([h[1] for h in ok]):.2f} ({int(np.median([h[0] for h in ok]))})"
            ratio, bound = paired_ratio([traces[b] for b in base], hits, e_min + tau)
            if ratio is not None:
                cell += f" [{'≥' if bound else ''}{ratio:.2f}×{mark}]"
            cells.append(cell)
        final = np.median([tr[-1][2] for tr in traces[rn.name]])
        comp = f"{compile_s[rn.name]:.1f}" if rn.name in compile_s else ""
        rows.append([rn.name, rn.chunk, *cells, f"{final:.6g}", comp])
    print(f"\ne_min = {e_min:.10g} (reference {e_ref:.10g}); {args.reps} reps; budget {budget} s;"
          f" ratio = time(faster of {base}) / time(solver), paired median")  # fmt: skip
    markdown_table(
        [
            "solver",
            "chunk",
            *(f"τ={tau:g}: s (it) [ratio]" for tau in TAUS),
            "final e",
            "compile s",
        ],
        rows,
    )
    return reliable


def per_iteration(V, r, dtype_name, args):
    """ms per iteration of jnmf MU and HALS and of the XLA product floor (slope 3k vs k)."""
    dtype = np.float32 if dtype_name == "float32" else np.float64
    W0, H0 = libs.start(V, r, args.seed)
    Vj = jnp.asarray(V, dtype)
    problem = jnmf.make_problem(Vj, 2.0)
    Wj, Hj = jnp.asarray(W0, dtype), jnp.asarray(H0, dtype)
    s = float(1.0 / np.linalg.norm(V, 2))

    def solver_call(name, k):
        solver = jnmf.SOLVERS[name]()
        f = eqx.filter_jit(
            lambda p, W, H: jnmf.solve(p, solver, (W, H), max_iter=k, every=k, tol=0.0).W
        )
        return lambda: f(problem, Wj, Hj)

    def floor_body(_, factors):
        W, H = factors
        W = (Vj @ H.T) * s - (W @ (H @ H.T)) * (s * 1e-6)
        H = (W.T @ Vj) * s - ((W.T @ W) @ H) * (s * 1e-6)
        return W, H

    def floor_call(k):
        f = jax.jit(lambda W, H: jax.lax.fori_loop(0, k, floor_body, (W, H))[0])
        return lambda: f(Wj, Hj)

    k1, k2 = args.floor_iters, 3 * args.floor_iters
    contenders = []
    for k in (k1, k2):
        contenders.append(Contender(f"floor {k}", floor_call(k)))
        contenders += [Contender(f"{name} {k}", solver_call(name, k)) for name in ("mu", "hals")]
    title = f"per-iteration time, V {V.shape[0]}×{V.shape[1]}, rank {r}, {dtype_name}"
    block = run_block(title, contenders, args.reps, args.load_limit)
    slope = {
        name: [(b - a) / (k2 - k1) for a, b in zip(block.times[f"{name} {k1}"],
                                                    block.times[f"{name} {k2}"], strict=True)]
        for name in ("floor", "mu", "hals")
    }  # fmt: skip
    rows = []
    labels = {
        "floor": "XLA product floor (jitted loop)",
        "mu": "jnmf mu (solve, every = max_iter)",
        "hals": "jnmf hals (solve, every = max_iter)",
    }
    for name, label in labels.items():
        per_rep = [a / b for a, b in zip(slope[name], slope["floor"], strict=True)]
        ratio = block.mark(f"{np.median(per_rep):.2f}")
        rows.append([label, f"{1e3 * np.median(slope[name]):.2f}", ratio])
    markdown_table(["what", "ms/it", "÷ floor"], rows)
    return block.reliable


REFERENCE = {2.0: "accelerated-hals", 1.0: "kl-dna", 0.0: "mu"}  # the long float64 run
ONLY_BETAS = {"kl": (1.0,), "audio": (1.0, 0.0)}  # data sets raced at some β only


def load(name, args):
    """(label, V, rank) of a data set named in --datasets."""
    if name == "synthetic":
        V = libs.synthetic(args.n, args.m, args.rank, args.noise, args.seed)
        return "synthetic dense", V, args.rank
    if name == "kl":
        V = libs.poisson_counts(args.kl_n, args.kl_m, args.kl_rank, args.seed)
        return "Poisson counts", V, args.kl_rank
    if name == "orl":
        return "ORL faces", libs.orl_faces(), args.orl_rank
    if name == "reuters":
        return "Reuters counts (lda)", libs.reuters(), args.reuters_rank
    if name == "audio":
        return "audio spectrogram (pyo drumloop)", libs.audio(), args.audio_rank
    raise SystemExit(f"unknown data set {name!r}: use synthetic, kl, orl, reuters, audio")


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--m", type=int, default=1000)
    ap.add_argument("--rank", type=int, default=20)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--kl-n", type=int, default=1000)
    ap.add_argument("--kl-m", type=int, default=500)
    ap.add_argument("--kl-rank", type=int, default=10)
    ap.add_argument("--orl-rank", type=int, default=49)
    ap.add_argument("--reuters-rank", type=int, default=20)
    ap.add_argument("--audio-rank", type=int, default=10)
    ap.add_argument("--datasets", type=harness.csv_list(str), default=["synthetic", "reuters"],
                    help="synthetic, kl, orl, reuters, audio (orl is large)")  # fmt: skip
    ap.add_argument("--betas", type=harness.csv_list(float), default=[2.0, 1.0, 0.0],
                    help="β values raced on every data set (kl: 1; audio: 1, 0)")  # fmt: skip
    ap.add_argument("--only", nargs="*", default=None, help="substrings of runner names")
    ap.add_argument("--budget", type=float, default=4.0, help="seconds per run (Frobenius)")
    ap.add_argument("--kl-budget", type=float, default=4.0, help="seconds per run (β = 1)")
    ap.add_argument("--is-budget", type=float, default=4.0, help="seconds per run (β = 0)")
    ap.add_argument("--max-iter", type=int, default=100000)
    ap.add_argument("--ref-iters", type=int, default=2000)
    ap.add_argument("--orl-ref-iters", type=int, default=600)
    ap.add_argument("--kl-ref-iters", type=int, default=1000)
    ap.add_argument("--is-ref-iters", type=int, default=3000)
    ap.add_argument("--floor-iters", type=int, default=20)
    ap.add_argument("--dtype", choices=("float64", "float32", "both"), default="float32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-floor", action="store_true", help="skip the per-iteration block")
    harness.common_arguments(ap)
    args = ap.parse_args()
    if args.quick:
        args.n, args.m, args.rank, args.kl_n, args.kl_m, args.kl_rank = 300, 200, 10, 200, 150, 5
        args.reps, args.floor_iters = 2, 5
        args.budget = args.kl_budget = args.is_budget = 0.5
        args.ref_iters, args.kl_ref_iters, args.is_ref_iters = 300, 200, 500
        args.reuters_rank, args.audio_rank = 5, 5
        if args.datasets == ["synthetic", "reuters"]:  # the defaults: the small dense one only
            args.datasets = ["synthetic"]
    import sklearn.decomposition  # noqa: F401  (loads its BLAS before the log)

    harness.print_environment("race: time to a target error")
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    budgets = {2.0: args.budget, 1.0: args.kl_budget, 0.0: args.is_budget}
    ref_iters = {2.0: args.ref_iters, 1.0: args.kl_ref_iters, 0.0: args.is_ref_iters}
    reliable = []
    for name in args.datasets:
        label, V, r = load(name, args)
        if name == "orl":
            ref_iters[2.0] = args.orl_ref_iters
        for beta in args.betas:
            if beta not in REFERENCE:
                raise SystemExit(f"--betas takes 2, 1 and 0, got {beta:g}")
            if beta not in ONLY_BETAS.get(name, (beta,)):
                continue
            data, note = V, ""
            if beta == 0.0 and V.min() <= 0:
                data, note = libs.positive(V), " + 1e-6·max V (β = 0 needs V > 0)"
            for dtype_name in dtypes:
                if name == "synthetic" and beta == 2.0 and not args.no_floor:
                    reliable.append(per_iteration(data, r, dtype_name, args))
                reliable.append(race(label + note, data, r, beta, dtype_name, args,
                                     REFERENCE[beta], ref_iters[beta], budgets[beta]))  # fmt: skip
    end = harness.MONITOR.sample()
    print(f"\nbefore: {harness.describe_load(harness.MONITOR.first)}")
    print(f"after:  {harness.describe_load(end)}")
    bad = reliable.count(False)
    print(f"{bad} of {len(reliable)} sections ran with other processes' load > {args.load_limit:g}"
          + (": their ratios are marked UNRELIABLE." if bad else "."))  # fmt: skip


if __name__ == "__main__":
    main()
