"""Study ``topics``: NMF topics of Reuters news, the PLSA identity, and KL-NMF against LDA.

Data: the 395 Reuters documents of the ``lda`` package as V, words × documents (4258 × 395,
integer counts; ``jnmf.data.load_reuters``).  Three parts, one task each (``perplexity`` one
task per rank):

* ``kl``: KL-NMF (β = 1) of the counts at rank r; the 10 words of largest W_wz per topic.
* ``frobenius``: Frobenius NMF (β = 2) of the TF-IDF matrix (scikit-learn's convention:
  tf·(log((1 + m)/(1 + df_w)) + 1), each document scaled to unit ℓ2 norm); top words again.
* ``plsa``: the PLSA identity, checked numerically on several factorizations (random ones and
  KL-NMF fits of several ranks and seeds).  With N = Σ_wd V_wd, S = Σ_wd (WH)_wd and
  c_z = Σ_w W_wz, the factors normalize into PLSA parameters

      P(w|z) = W_wz / c_z,    P(z,d) = c_z H_zd / S,    P(w,d) = Σ_z P(w|z) P(z,d) = (WH)_wd / S,

  i.e. W̄ = [P(w|z)] and H̄ = N·[P(z,d)] (the scale moved into the right factor,
  W̄H̄ = (N/S)·WH).  The PLSA log-likelihood L = Σ_wd V_wd log P(w,d) then satisfies exactly

      L = −D_KL(V‖W̄H̄) + C(V),    C(V) = Σ_wd V_wd log(V_wd / N)   (0·log 0 = 0),

  with D_KL(V‖X) = Σ V log(V/X) − V + X; C(V) = −N·(entropy of the empirical distribution V/N)
  depends on the data only.  For the factors as given,
  D_KL(V‖WH) = D_KL(V‖W̄H̄) + (S − N − N log(S/N)), and the bracket (≥ 0) vanishes iff S = N,
  which holds at every KL stationary point and after every multiplicative H-update
  (Σ_w (W H)_wd = Σ_w V_wd column by column).  So maximizing the PLSA likelihood and
  minimizing D_KL(V‖WH) are the same problem.
* ``perplexity``: held-out perplexity of KL-NMF and of LDA (``lda``'s collapsed Gibbs
  sampler) at each rank in ``perplexity_ranks``, on one seeded split (document completion):

  1. a fraction ``test_fraction`` of the documents (seeded permutation) is held out; both
     models are fitted on the other documents only;
  2. each held-out document's counts are split token by token, each token observed with
     probability ``observed_fraction`` (binomial thinning, seeded), the rest held out;
  3. θ_d (topic proportions) is fitted on the observed tokens only: for NMF
     θ_d ∝ ``jnmf.nn.encode``(v_obs, W̄, β = 1) with W̄ = [P(w|z)] fixed, for LDA
     ``LDA.transform`` (iterated pseudo-counts) with the fitted topics fixed;
  4. p(w|d) = Σ_z P(w|z) θ_zd and perplexity = exp(−Σ v_held log p(w|d) / Σ v_held), over the
     held-out tokens of words that occur in the training documents (a word never seen in
     training has probability 0 under NMF; LDA's prior would give it some).  Held-out tokens
     with p(w|d) = 0 make the perplexity infinite; their count is stored.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import jax
import numpy as np
from scipy.special import xlogy

import jnmf
from experiments.studies._faces import Section, new_figure
from experiments.study import Study, StudyConfigError, Task

N_DOCUMENTS, N_WORDS = 395, 4258


@dataclass(frozen=True)
class TopicsConfig:
    rank: int = 20
    n_top_words: int = 10
    solver: str = "mu"
    max_iter: int = 300
    seed: int = 0
    plsa_ranks: tuple[int, ...] = (5, 10, 20)
    plsa_max_iter: int = 50
    perplexity_ranks: tuple[int, ...] = (10, 20)
    test_fraction: float = 0.2
    observed_fraction: float = 0.5
    encode_iter: int = 300
    lda_iter: int = 500
    lda_alpha: float = 0.1
    lda_eta: float = 0.01
    n_documents: int = N_DOCUMENTS
    n_words: int = N_WORDS


@dataclass(frozen=True)
class Corpus:
    """Counts V (words × documents, float64) and the vocabulary, one word per row."""

    V: np.ndarray
    vocabulary: tuple[str, ...]


def tfidf(V: np.ndarray) -> np.ndarray:
    """TF-IDF of counts V (words × documents): V_wd·(log((1+m)/(1+df_w)) + 1), unit ℓ2 columns."""
    m = V.shape[1]
    document_frequency = (V > 0).sum(axis=1)
    weighted = V * (np.log((1.0 + m) / (1.0 + document_frequency)) + 1.0)[:, None]
    norms = np.linalg.norm(weighted, axis=0)
    return weighted / np.where(norms > 0, norms, 1.0)


def kl_divergence(V: np.ndarray, X: np.ndarray) -> float:
    """D_KL(V‖X) = Σ V log(V/X) − V + X (generalized KL, 0·log 0 = 0), in float64."""
    V, X = np.asarray(V, np.float64), np.asarray(X, np.float64)
    return float(np.sum(xlogy(V, V) - xlogy(V, X) - V + X))


def plsa_parameters(W: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(w|z) = W_wz/c_z (columns sum to 1) and P(z,d) = c_z H_zd / S (sums to 1)."""
    W, H = np.asarray(W, np.float64), np.asarray(H, np.float64)
    column_sums = W.sum(axis=0)
    if np.any(column_sums <= 0):
        raise ValueError("every column of W needs a positive entry to define P(w|z)")
    joint = column_sums[:, None] * H
    return W / column_sums, joint / joint.sum()


def plsa_log_likelihood(V: np.ndarray, word_given_topic, topic_document) -> float:
    """L = Σ_wd V_wd log P(w,d), P(w,d) = Σ_z P(w|z) P(z,d) (0·log 0 = 0)."""
    return float(np.sum(xlogy(np.asarray(V, np.float64), word_given_topic @ topic_document)))


def plsa_constant(V: np.ndarray) -> float:
    """C(V) = Σ_wd V_wd log(V_wd/N), N = Σ V: the factor-free term of L = −D_KL + C(V)."""
    V = np.asarray(V, np.float64)
    return float(np.sum(xlogy(V, V / V.sum())))


def plsa_check(V: np.ndarray, W: np.ndarray, H: np.ndarray) -> dict[str, float]:
    """Both sides of L = −D_KL(V‖W̄H̄) + C(V), and the scale gap of the unnormalized factors."""
    V = np.asarray(V, np.float64)
    word_given_topic, topic_document = plsa_parameters(W, H)
    likelihood = plsa_log_likelihood(V, word_given_topic, topic_document)
    normalized = word_given_topic @ (V.sum() * topic_document)
    right_side = -kl_divergence(V, normalized) + plsa_constant(V)
    total, model_total = V.sum(), float(np.sum(np.asarray(W, np.float64) @ H))
    return {
        "log_likelihood": likelihood,
        "minus_kl_plus_constant": right_side,
        "relative_error": abs(likelihood - right_side) / abs(likelihood),
        "kl_given": kl_divergence(V, np.asarray(W, np.float64) @ H),
        "scale_gap": model_total - total - total * np.log(model_total / total),
        "mass_ratio": model_total / total,
    }


def top_words(W: np.ndarray, vocabulary, count: int) -> list[str]:
    """Per topic (column of W) its ``count`` words of largest weight, as one string."""
    order = np.argsort(-np.asarray(W), axis=0)[:count]
    return [" ".join(vocabulary[i] for i in order[:, z]) for z in range(W.shape[1])]


def _float_dtype():
    """float64 when JAX has x64 enabled (the run's precision), else float32."""
    return jax.dtypes.canonicalize_dtype(np.float64)


def _fit(V, rank, beta, config: TopicsConfig, seed, max_iter=None):
    solver = config.solver if beta == 1.0 else "hals"
    solution = jnmf.nmf(
        np.asarray(V, _float_dtype()),
        rank,
        beta=beta,
        solver=solver,
        max_iter=config.max_iter if max_iter is None else max_iter,
        tol=0.0,
        key=seed,
    )
    return np.asarray(solution.W, np.float64), np.asarray(solution.H, np.float64), solution


def perplexity_split(V: np.ndarray, config: TopicsConfig):
    """Training columns, held-out columns, and the held-out counts split observed/held."""
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(V.shape[1])
    n_test = max(1, int(round(config.test_fraction * V.shape[1])))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    counts = V[:, test].astype(np.int64)
    observed = rng.binomial(counts, config.observed_fraction).astype(np.float64)
    return train, test, observed, counts - observed


def perplexity(probabilities: np.ndarray, held: np.ndarray, seen: np.ndarray) -> tuple:
    """exp(−Σ held·log p / Σ held) over words ``seen`` in training; also the p = 0 token count."""
    held, probabilities = held[seen], probabilities[seen]
    zero_tokens = float(held[(probabilities <= 0) & (held > 0)].sum())
    if zero_tokens:
        return float("inf"), zero_tokens, float(held.sum())
    return float(np.exp(-xlogy(held, probabilities).sum() / held.sum())), 0.0, float(held.sum())


class TopicsStudy(Study):
    """Top words, the PLSA identity and held-out perplexity (see the module docstring)."""

    name = "topics"
    description = "Reuters: KL-NMF and TF-IDF NMF topics, PLSA identity, KL-NMF vs LDA"

    def parse(self, section: Mapping[str, Any]) -> TopicsConfig:
        read = Section(section, StudyConfigError, TopicsConfig.__dataclass_fields__)
        d = TopicsConfig()
        n_documents = read.integer("n_documents", d.n_documents, 10, N_DOCUMENTS)
        n_words = read.integer("n_words", d.n_words, 10, N_WORDS)
        largest = min(n_documents, n_words) - 1
        return TopicsConfig(
            rank=read.integer("rank", d.rank, 1, largest),
            n_top_words=read.integer("n_top_words", d.n_top_words, 1, 50),
            solver=read.choice("solver", d.solver, {"mu", "kl-cd", "kl-dna"}),
            max_iter=read.integer("max_iter", d.max_iter, 1),
            seed=read.integer("seed", d.seed, 0),
            plsa_ranks=_ranks(read, "plsa_ranks", d.plsa_ranks, largest),
            plsa_max_iter=read.integer("plsa_max_iter", d.plsa_max_iter, 1),
            perplexity_ranks=_ranks(read, "perplexity_ranks", d.perplexity_ranks, largest),
            test_fraction=read.real("test_fraction", d.test_fraction, 0.0, 0.5, True),
            observed_fraction=read.real("observed_fraction", d.observed_fraction, 0.1, 0.9),
            encode_iter=read.integer("encode_iter", d.encode_iter, 1),
            lda_iter=read.integer("lda_iter", d.lda_iter, 10),
            lda_alpha=read.real("lda_alpha", d.lda_alpha, 0.0, None, True),
            lda_eta=read.real("lda_eta", d.lda_eta, 0.0, None, True),
            n_documents=n_documents,
            n_words=n_words,
        )

    def tasks(self, config: TopicsConfig) -> list[Task]:
        params = asdict(config)
        tasks = [Task(part, {"part": part, **params}) for part in ("kl", "frobenius", "plsa")]
        for rank in config.perplexity_ranks:
            tasks.append(Task(f"perplexity_r{rank}", {"part": "perplexity", **params, "at": rank}))
        return tasks

    def load(self, config: TopicsConfig) -> Corpus:
        """Reuters counts, reduced to the first ``n_documents`` and most frequent ``n_words``."""
        dataset = jnmf.data.load_reuters()
        V = dataset.V[:, : config.n_documents]
        keep = np.sort(np.argsort(-V.sum(axis=1), kind="stable")[: config.n_words])
        vocabulary = tuple(dataset.meta["vocabulary"][i] for i in keep)
        V = V[keep]
        if np.any(V.sum(axis=0) == 0):
            raise ValueError("a document has no words left: raise n_words")
        return Corpus(V=V, vocabulary=vocabulary)

    def compute(self, task: Task, data: Corpus) -> dict[str, Any]:
        fields = {k: v for k, v in task.params.items() if k in TopicsConfig.__dataclass_fields__}
        config = TopicsConfig(**fields)
        part = task.params["part"]
        start = time.perf_counter()
        if part in ("kl", "frobenius"):
            result = self.compute_topics(part, data, config)
        elif part == "plsa":
            result = self.compute_plsa(data, config)
        elif part == "perplexity":
            result = self.compute_perplexity(int(task.params["at"]), data, config)
        else:
            raise ValueError(f"unknown topics task part {part!r}")
        return {**result, "part": part, "seconds": time.perf_counter() - start}

    def compute_topics(self, part: str, data: Corpus, config: TopicsConfig) -> dict[str, Any]:
        """KL-NMF of the counts or Frobenius NMF of the TF-IDF; top words per topic."""
        V, beta = (data.V, 1.0) if part == "kl" else (tfidf(data.V), 2.0)
        W, H, solution = _fit(V, config.rank, beta, config, config.seed)
        weights = W / W.sum(axis=0)
        mass = H.sum(axis=1) * W.sum(axis=0) / float(np.sum(W @ H))  # topic z's share of Σ WH
        order = np.argsort(-mass)
        return {
            "top_words": top_words(weights[:, order], data.vocabulary, config.n_top_words),
            "topic_mass": mass[order],
            "objective": float(solution.objective),
            "n_iter": int(solution.n_iter),
        }

    def compute_plsa(self, data: Corpus, config: TopicsConfig) -> dict[str, Any]:
        """The identity on random factors and on KL-NMF fits (several ranks and seeds)."""
        V = data.V
        rng = np.random.default_rng(config.seed)
        cases = []
        for rank in config.plsa_ranks:
            W = rng.uniform(0.01, 1.0, (V.shape[0], rank))
            H = rng.uniform(0.01, 1.0, (rank, V.shape[1]))
            cases.append((f"random r={rank}", W, H))
            W, H, _ = _fit(V, rank, 1.0, config, config.seed + rank, config.plsa_max_iter)
            cases.append((f"KL-NMF r={rank}, {config.plsa_max_iter} it", W, H))
        checks = [plsa_check(V, W, H) for _, W, H in cases]
        columns = {key: np.array([c[key] for c in checks]) for key in checks[0]}
        return {"case": [name for name, _, _ in cases], **columns, "constant": plsa_constant(V)}

    def compute_perplexity(self, rank: int, data: Corpus, config: TopicsConfig) -> dict:
        """KL-NMF and LDA on the training documents, scored by document completion."""
        import lda

        V = data.V
        train, test, observed, held = perplexity_split(V, config)
        seen = V[:, train].sum(axis=1) > 0
        W, _, solution = _fit(V[:, train], rank, 1.0, config, config.seed)
        word_given_topic = W / W.sum(axis=0)
        codes = jnmf.nn.encode(
            np.asarray(observed, _float_dtype()),
            np.asarray(word_given_topic, _float_dtype()),
            beta=1.0,
            max_iter=config.encode_iter,
        )
        codes = np.asarray(codes, np.float64)
        theta = codes / np.maximum(codes.sum(axis=0), np.finfo(np.float64).tiny)
        nmf = perplexity(word_given_topic @ theta, held, seen)

        model = lda.LDA(
            rank,
            n_iter=config.lda_iter,
            alpha=config.lda_alpha,
            eta=config.lda_eta,
            random_state=config.seed,
            refresh=config.lda_iter + 1,
        )
        model.fit(V[:, train].T.astype(np.int64))
        lda_theta = model.transform(observed.T.astype(np.int64)).T
        lda_result = perplexity(model.topic_word_.T @ lda_theta, held, seen)
        return {
            "rank": rank,
            "nmf_perplexity": nmf[0],
            "lda_perplexity": lda_result[0],
            "nmf_zero_probability_tokens": nmf[1],
            "lda_zero_probability_tokens": lda_result[1],
            "held_tokens": nmf[2],
            "unseen_word_tokens": float(held[~seen].sum()),
            "train_documents": int(train.size),
            "test_documents": int(test.size),
        }

    def tables(self, results, config: TopicsConfig) -> dict[str, list[dict]]:
        results = {key: r for key, r in results.items() if "skipped" not in r}
        tables = {}
        rows = [
            {"model": label, "topic": z, "mass": float(mass), "top_words": words}
            for part, label in (("kl", "KL-NMF counts"), ("frobenius", "Frobenius NMF TF-IDF"))
            if part in results
            for z, (words, mass) in enumerate(
                zip(results[part]["top_words"], results[part]["topic_mass"], strict=True)
            )
        ]
        if rows:
            tables["topics_top_words"] = rows
        if "plsa" in results:
            r = results["plsa"]
            keys = ("log_likelihood", "minus_kl_plus_constant", "relative_error", "kl_given")
            tables["topics_plsa_identity"] = [
                {
                    "factorization": str(name),
                    **{key: float(r[key][i]) for key in (*keys, "scale_gap")},
                    "constant": float(r["constant"]),
                }
                for i, name in enumerate(r["case"])
            ]
        rows = [
            {key: value for key, value in r.items() if key not in ("part", "seconds")}
            for key, r in results.items()
            if key.startswith("perplexity")
        ]
        if rows:
            tables["topics_perplexity"] = sorted(rows, key=lambda row: int(row["rank"]))
        return tables

    def figures(self, results, config: TopicsConfig) -> dict[str, Any]:
        results = {key: r for key, r in results.items() if "skipped" not in r}
        figures = {}
        if "kl" in results or "frobenius" in results:
            figures["top_words"] = _top_words_figure(results, config)
        if "plsa" in results:
            figures["plsa_identity"] = _plsa_figure(results["plsa"])
        rows = self.tables(results, config).get("topics_perplexity")
        if rows:
            figures["perplexity"] = _perplexity_figure(rows, config)
        return figures


def _ranks(read: Section, key: str, default, largest: int) -> tuple[int, ...]:
    values = read.section.get(key, list(default))
    if not isinstance(values, list | tuple) or not values or len(set(values)) != len(values):
        raise StudyConfigError(f"[study] {key} must be a non-empty list of distinct ranks")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= largest:
            raise StudyConfigError(
                f"[study] {key}: each rank must be an integer in [1, {largest}], got {value!r}"
            )
    return tuple(values)


def _top_words_figure(results, config: TopicsConfig):
    parts = [p for p in ("kl", "frobenius") if p in results]
    titles = {"kl": "KL-NMF (β = 1) of the counts", "frobenius": "Frobenius NMF of the TF-IDF"}
    fig = new_figure(figsize=(8.5 * len(parts), 0.14 * config.rank + 1.1), layout="constrained")
    for ax, part in zip(fig.subplots(1, len(parts), squeeze=False)[0], parts, strict=True):
        lines = [
            f"{z + 1:>2} ({100 * float(mass):4.1f}%)  {words}"
            for z, (words, mass) in enumerate(
                zip(results[part]["top_words"], results[part]["topic_mass"], strict=True)
            )
        ]
        ax.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=8)
        ax.set_title(f"{titles[part]}: top {config.n_top_words} words (share of mass)", fontsize=10)
        ax.axis("off")
    fig.suptitle(f"Reuters (lda package), rank {config.rank}, topics by share of Σ WH")
    return fig


def _plsa_figure(result):
    cases = [str(c) for c in result["case"]]
    fig = new_figure(figsize=(12, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    x = np.arange(len(cases))
    left.plot(x, result["log_likelihood"], "o", ms=10, mfc="none", label="PLSA log-likelihood L")
    left.plot(x, result["minus_kl_plus_constant"], "x", ms=8, label="−D_KL(V‖W̄H̄) + C(V)")
    left.plot(x, -result["kl_given"] + result["constant"], "+", ms=8, label="−D_KL(V‖WH) + C(V)")
    left.legend(fontsize=8)
    left.set_title(f"C(V) = Σ V log(V/N) = {float(result['constant']):.6g}", fontsize=9)
    errors = np.maximum(result["relative_error"], np.finfo(np.float64).eps / 4)
    right.semilogy(x, errors, "o")
    right.axhline(1e-8, color="C3", ls="--", label="1e-8")
    right.legend(fontsize=8)
    right.set_title(f"|L − (−D_KL + C)| / |L|: worst {float(np.max(errors)):.1e}", fontsize=9)
    for ax in (left, right):
        ax.set_xticks(x, cases, rotation=30, ha="right", fontsize=8)
    fig.suptitle("PLSA identity on Reuters: normalized factors P(w|z), P(z,d); W̄H̄ = N·P(w,d)")
    return fig


def _perplexity_figure(rows, config: TopicsConfig):
    fig = new_figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(rows))
    for shift, key, label in ((-0.2, "nmf_perplexity", "KL-NMF"), (0.2, "lda_perplexity", "LDA")):
        values = [row[key] for row in rows]
        bars = ax.bar(x + shift, np.where(np.isfinite(values), values, 0), 0.4, label=label)
        ax.bar_label(bars, [f"{v:.0f}" for v in values], fontsize=8)
    ax.set_xticks(x, [f"r = {int(row['rank'])}" for row in rows])
    ax.set_ylabel("held-out perplexity (lower is better)")
    ax.legend()
    ax.set_title(
        f"document completion: {int(rows[0]['test_documents'])} held-out documents, "
        f"{100 * config.observed_fraction:.0f}% of their tokens observed",
        fontsize=9,
    )
    return fig
