"""``brunet``: Brunet et al. (PNAS 2004), consensus NMF on the ALL/AML leukemia data.

For each rank k, ``restarts`` KL-NMF fits (multiplicative updates) of V (5000 genes × 38
samples) from keys split from ``seed`` (``jnmf.rank_sweep``); each fit clusters the samples
by argmax_k H_kj, the consensus matrix C_ij is the fraction of fits putting samples i and j
together (over the fits with a finite objective), and the cophenetic correlation ρ(k) of C's
average-linkage tree measures how reproducible the k-clustering is (``jnmf.select``).
Brunet et al. pick the k before ρ drops; at k = 2 the consensus clusters should match ALL vs
AML.  One task per k.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from experiments.study import Study, Task
from experiments.validate import check_value, choices, parse_table

BETAS = {"kullback-leibler": 1.0, "frobenius": 2.0}


@dataclass(frozen=True)
class BrunetConfig:
    """The ``[study]`` table of ``brunet``."""

    ranks: tuple[int, ...] = field(default=(2, 3, 4, 5), metadata={"min": 2, "max": 38})
    restarts: int = field(default=50, metadata={"min": 2})
    beta: str = field(default="kullback-leibler", metadata=choices(*BETAS))
    solver: str = field(default="mu", metadata=choices("mu", "kl-cd", "hals"))
    max_iter: int = field(default=500, metadata={"min": 1})
    tol: float = field(default=1e-5, metadata={"min": 0.0})
    seed: int = field(default=0, metadata={"min": 0})


@dataclass(frozen=True)
class AllAml:
    V: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]


class BrunetStudy(Study):
    """Cophenetic correlation and consensus matrices versus k on ALL/AML."""

    name = "brunet"
    description = "consensus NMF on ALL/AML (Brunet et al. 2004): cophenetic correlation vs k"

    def parse(self, section: Mapping[str, Any]) -> BrunetConfig:
        config = BrunetConfig(**parse_table(BrunetConfig, section, "study"))
        check_value(config.tol, float, "study.tol")
        return config

    def tasks(self, config: BrunetConfig) -> list[Task]:
        params = {
            "restarts": config.restarts,
            "beta": config.beta,
            "solver": config.solver,
            "max_iter": config.max_iter,
            "tol": config.tol,
            "seed": config.seed,
        }
        return [Task(f"all_aml__k{k}", {"rank": k, **params}) for k in config.ranks]

    def load(self, config: BrunetConfig) -> AllAml:
        import jax

        import jnmf

        ds = jnmf.data.load("all_aml")
        dtype = np.float64 if jax.config.jax_enable_x64 else np.float32
        classes = tuple(ds.meta.get("classes", ("ALL", "AML")))
        return AllAml(ds.V.astype(dtype), np.asarray(ds.meta["labels"]), classes)

    def compute(self, task: Task, data: AllAml) -> dict[str, Any]:
        import jax

        import jnmf

        p = task.params
        k = p["rank"]
        t0 = time.perf_counter()
        sweep = jnmf.rank_sweep(
            data.V,
            [k],
            n_restarts=p["restarts"],
            beta=BETAS[p["beta"]],
            solver=p["solver"],
            max_iter=p["max_iter"],
            tol=p["tol"],
            key=p["seed"],
        )
        jax.block_until_ready(sweep.W)
        seconds = time.perf_counter() - t0
        H = np.asarray(sweep.H[0])[:, :k, :]  # (restarts, k, m)
        objectives = np.asarray(sweep.objective[0], dtype=np.float64)
        finite = np.isfinite(objectives)
        if finite.sum() < 2:
            raise ValueError(f"rank {k}: {int(finite.sum())} finite fits, consensus needs 2")
        C = np.asarray(jnmf.select.consensus_matrix(H[finite]))
        clusters = jnmf.select.consensus_clusters(C, k)
        best_H = H[int(np.argmin(np.where(finite, objectives, np.inf)))]
        return {
            "rank": k,
            "consensus": C,
            "consensus_clusters": np.asarray(clusters),
            "labels": data.labels,
            "classes": list(data.classes),
            "cophenetic": float(jnmf.select.cophenetic_correlation(C)),
            "dispersion": float(jnmf.select.dispersion(C)),
            "objectives": objectives,
            "consensus_accuracy": jnmf.select.cluster_accuracy(clusters, data.labels),
            "best_fit_accuracy": jnmf.select.cluster_accuracy(
                jnmf.select.cluster_labels(best_H), data.labels
            ),
            "seconds": seconds,
        }

    def tables(self, results, config: BrunetConfig) -> dict[str, list[dict]]:
        rows = []
        for task in self.tasks(config):
            r = results.get(task.key)
            if r is not None:
                rows.append(
                    {
                        "k": r["rank"],
                        "cophenetic": r["cophenetic"],
                        "dispersion": r["dispersion"],
                        "consensus_accuracy": r["consensus_accuracy"],
                        "best_fit_accuracy": r["best_fit_accuracy"],
                        "median_objective": float(np.median(r["objectives"])),
                        "seconds": r["seconds"],
                    }
                )
        return {"cophenetic": rows}

    def figures(self, results, config: BrunetConfig) -> dict:
        from experiments.figures import new_figure

        done = [results[t.key] for t in self.tasks(config) if t.key in results]
        if not done:
            return {}
        fig = new_figure(figsize=(3.2 + 2.6 * len(done), 3.6), layout="constrained")
        axes = fig.subplots(1, len(done) + 1, width_ratios=[1.3] + [1] * len(done))
        ks = [r["rank"] for r in done]
        axes[0].plot(ks, [r["cophenetic"] for r in done], "o-", label="cophenetic ρ")
        axes[0].plot(ks, [r["dispersion"] for r in done], "s--", label="dispersion")
        axes[0].set_xticks(ks)
        axes[0].set_xlabel("rank k")
        axes[0].set_title(f"ALL/AML, {config.beta} NMF, {config.restarts} restarts")
        axes[0].legend(loc="lower left")
        for ax, r in zip(axes[1:], done, strict=True):
            labels, clusters = np.asarray(r["labels"]), np.asarray(r["consensus_clusters"])
            order = np.lexsort((labels, clusters))
            ax.imshow(r["consensus"][np.ix_(order, order)], cmap="viridis", vmin=0, vmax=1)
            colors = np.where(labels[order] == 1, "tab:red", "tab:blue")
            ax.scatter(np.full(len(order), -1.5), np.arange(len(order)), s=6, c=colors)
            ax.set_title(f"k={r['rank']}, ρ={r['cophenetic']:.3f}")
            ax.set_xticks([])
            ax.set_yticks([])
        classes = done[0]["classes"]
        fig.suptitle(
            f"consensus matrices, samples ordered by consensus cluster; side dots: blue "
            f"{classes[0]}, red {classes[1]}; k=2 consensus clusters match the classes on "
            f"{done[0]['consensus_accuracy']:.1%} of samples"
            if ks[0] == 2
            else "consensus matrices, samples ordered by consensus cluster",
            fontsize=9,
        )
        return {"all_aml": fig}
