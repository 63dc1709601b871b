"""The ``audio`` study: Itakura-Saito vs Kullback-Leibler vs Frobenius NMF of a drum loop.

V = |X| + ε is the magnitude spectrogram of a clip shipped with pyo (``jnmf.data.load_audio``;
X its complex STFT, bins × frames).  Itakura-Saito NMF needs V > 0 (d_IS(v|x) = v/x − log(v/x)
− 1 is infinite at v = 0), so every model factors the same V with ε = ``floor`` · max|X|
added to every entry (floor 1e-6: −120 dB below the loudest bin).

Each model's components are resynthesized with the mixture's phase by Wiener-style masks,

    X_k = (W_k H_k / W H) ⊙ X,   x_k = ISTFT(X_k),

and since Σ_k W_k H_k / W H = 1 and the ISTFT is linear, Σ_k x_k = x (the tests check it).
The ISTFT is the weighted overlap-add inverse of ``jnmf.data.audio.stft``'s Hann-windowed
frames (w[t] = sin²(πt/N)): x[s] = Σ_k w[s − kh] y_k[s − kh] / Σ_k w²[s − kh], y_k the
inverse real FFT of frame k.

The fit of each model is also read in decibels, band by band: the log-spectral distance
LSD = sqrt(mean (20 log10(V / WH))²) over the bins of a frequency band.  Févotte, Bertin &
Durrieu (2009) argue that IS's scale invariance lets low-energy (high-frequency) structure be
fitted as well as loud structure; the LSD in the high band is the number that tests it.
"""

from __future__ import annotations

import time
import wave
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

import jnmf
from experiments.study import Study, StudyConfigError, Task
from jnmf.data.audio import AUDIO_CLIPS, stft

MODELS = {"itakura-saito": 0.0, "kullback-leibler": 1.0, "frobenius": 2.0}
BANDS = {"low (< 500 Hz)": (0.0, 500.0), "mid": (500.0, 4000.0), "high (> 4 kHz)": (4000.0, 1e9)}
_KEYS = {"clip", "models", "rank", "n_fft", "hop_length", "floor", "max_iter", "tol", "restarts"}
_KEYS |= {"seed", "solver", "seconds"}


@dataclass(frozen=True)
class AudioConfig:
    """The ``[study]`` table of ``configs/audio.toml`` (see ``AudioStudy.parse``)."""

    clip: str = "drumloop"
    models: tuple[str, ...] = tuple(MODELS)
    rank: int = 8
    n_fft: int = 1024
    hop_length: int = 256
    floor: float = 1e-6
    solver: str = "mu"
    max_iter: int = 300
    tol: float = 1e-6
    restarts: int = 2
    seed: int = 0
    seconds: float | None = None


@dataclass(frozen=True)
class Clip:
    """A mono signal, its STFT X and the factored spectrogram V = |X| + floor·max|X|."""

    signal: np.ndarray
    sample_rate: int
    X: np.ndarray
    V: np.ndarray
    epsilon: float
    frequencies: np.ndarray


def istft(X, n_fft: int, hop_length: int, length: int, center: bool = True) -> np.ndarray:
    """Weighted overlap-add inverse of ``jnmf.data.audio.stft`` (module docstring), ``length``
    samples.  Samples that no window covers (Σ w² = 0) come back as 0."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] != n_fft // 2 + 1:
        raise ValueError(f"X must be ({n_fft // 2 + 1} bins × frames) for n_fft={n_fft}")
    frames = np.fft.irfft(X.T, n=n_fft, axis=1)
    window = np.sin(np.pi * np.arange(n_fft) / n_fft) ** 2
    total = n_fft + hop_length * (X.shape[1] - 1)
    signal, weight = np.zeros(total), np.zeros(total)
    index = hop_length * np.arange(X.shape[1])[:, None] + np.arange(n_fft)[None, :]
    np.add.at(signal, index, frames * window)
    np.add.at(weight, index, np.broadcast_to(window**2, index.shape))
    covered = weight > 1e-10
    signal = np.where(covered, signal / np.where(covered, weight, 1.0), 0.0)
    start = n_fft // 2 if center else 0
    out = signal[start : start + length]
    return np.pad(out, (0, length - out.size))


def wiener_components(W, H, X) -> np.ndarray:
    """(r × bins × frames) complex: X_k = (W_k H_k / W H) ⊙ X; where W H = 0 the mask is 1/r."""
    W, H = np.asarray(W, np.float64), np.asarray(H, np.float64)
    parts = W.T[:, :, None] * H[:, None, :]
    total = parts.sum(axis=0)
    masks = np.where(total > 0, parts / np.where(total > 0, total, 1.0), 1.0 / W.shape[1])
    return masks * np.asarray(X)[None]


def log_spectral_distance(V, WH, frequencies, band) -> float:
    """sqrt(mean (20 log10(V/WH))²) in dB over the rows whose frequency is in [low, high)."""
    rows = (frequencies >= band[0]) & (frequencies < band[1])
    ratio = np.asarray(V, np.float64)[rows] / np.asarray(WH, np.float64)[rows]
    return float(np.sqrt(np.mean((20 * np.log10(ratio)) ** 2)))


def write_wav(path, signal, sample_rate: int) -> None:
    """16-bit PCM mono WAV; the signal is clipped to [−1, 1)."""
    pcm = np.round(np.clip(np.asarray(signal), -1.0, 1.0 - 2.0**-15) * 2**15).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(sample_rate))
        f.writeframes(pcm.tobytes())


def write_component_wavs(results: Mapping[str, Mapping[str, Any]], folder) -> list[Path]:
    """Write ``audio_<model>_component<k>.wav`` for every stored model into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for model, result in results.items():
        rate = int(result["sample_rate"])
        for k, signal in enumerate(np.asarray(result["components"])):
            path = folder / f"audio_{model}_component{k}.wav"
            write_wav(path, signal, rate)
            paths.append(path)
    return paths


def make_clip(signal, sample_rate: int, n_fft: int, hop_length: int, floor: float) -> Clip:
    """A ``Clip`` from a mono signal (``AudioStudy.load`` on a shipped clip; tests on others)."""
    X = stft(np.asarray(signal, np.float64), n_fft, hop_length)
    magnitude = np.abs(X)
    epsilon = floor * float(magnitude.max())
    if not epsilon > 0:
        raise ValueError("the clip is silent (max |X| = 0): there is nothing to factor")
    frequencies = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    return Clip(
        np.asarray(signal, np.float64), sample_rate, X, magnitude + epsilon, epsilon, frequencies
    )


def _dtype():
    return jax.dtypes.canonicalize_dtype(np.float64)


class AudioStudy(Study):
    """IS vs KL vs Frobenius NMF of a magnitude spectrogram; templates, activations, WAVs."""

    name = "audio"
    description = (
        "IS vs KL vs Frobenius NMF of a drum loop: templates, activations, Wiener resynthesis"
    )

    def parse(self, section: Mapping[str, Any]) -> AudioConfig:
        """Validate ``[study]``; every key is optional (defaults in ``AudioConfig``).

        ``seconds`` keeps only the clip's first seconds (reduced runs).
        """
        unknown = set(section) - _KEYS
        if unknown:
            raise StudyConfigError(
                f"[study] unknown keys {sorted(unknown)}; the audio study takes {sorted(_KEYS)}"
            )
        defaults = AudioConfig()
        values = {**asdict(defaults), **section}
        if values["clip"] not in AUDIO_CLIPS:
            raise StudyConfigError(f"[study] clip must be one of {AUDIO_CLIPS}")
        models = values["models"]
        if not models or not set(models) <= set(MODELS) or len(set(models)) != len(models):
            raise StudyConfigError(
                f"[study] models must be distinct names from {list(MODELS)}, got {models!r}"
            )
        for key in ("rank", "n_fft", "hop_length", "max_iter", "restarts"):
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise StudyConfigError(f"[study] {key} must be an integer ≥ 1, got {v!r}")
        if values["n_fft"] % 2 or values["hop_length"] > values["n_fft"] // 2:
            raise StudyConfigError(
                "[study] n_fft must be even and hop_length ≤ n_fft/2 (so that the inverse "
                f"STFT covers every sample), got n_fft={values['n_fft']}, "
                f"hop_length={values['hop_length']}"
            )
        if not isinstance(values["seed"], int) or values["seed"] < 0:
            raise StudyConfigError(f"[study] seed must be an integer ≥ 0, got {values['seed']!r}")
        for key, low, high in (("floor", 1e-12, 1.0), ("tol", 0.0, 1.0)):
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not low <= v < high:
                raise StudyConfigError(f"[study] {key} must be in [{low}, {high}), got {v!r}")
        if values["solver"] not in jnmf.SOLVERS:
            raise StudyConfigError(f"[study] solver must be one of {sorted(jnmf.SOLVERS)}")
        seconds = values["seconds"]
        if seconds is not None and not (isinstance(seconds, int | float) and seconds > 0):
            raise StudyConfigError(f"[study] seconds must be a number > 0, got {seconds!r}")
        values["models"] = tuple(models)
        return AudioConfig(**values)

    def tasks(self, config: AudioConfig) -> list[Task]:
        """One task per model (its β)."""
        settings = asdict(config)
        return [Task(model, {**settings, "beta": MODELS[model]}) for model in config.models]

    def load(self, config: AudioConfig) -> Clip:
        """The clip, its STFT and V = |X| + ε (ε = floor · max|X|)."""
        dataset = jnmf.data.load_audio(
            config.clip, n_fft=config.n_fft, hop_length=config.hop_length
        )
        signal, rate = dataset.meta["signal"], int(dataset.meta["sample_rate"])
        if config.seconds is not None:
            signal = signal[: int(config.seconds * rate)]
        return make_clip(signal, rate, config.n_fft, config.hop_length, config.floor)

    def compute(self, task: Task, data: Clip) -> dict[str, Any]:
        """Fit V ≈ W H with the task's β; order components by spectral centroid; resynthesize."""
        settings = dict(task.params)
        beta = settings.pop("beta")
        cfg = AudioConfig(**settings)
        start = time.perf_counter()
        sol = jnmf.nmf(
            np.asarray(data.V, _dtype()),
            cfg.rank,
            beta=beta,
            solver=cfg.solver,
            init="random",
            n_restarts=cfg.restarts,
            max_iter=cfg.max_iter,
            tol=cfg.tol,
            key=cfg.seed,
        )
        seconds = time.perf_counter() - start
        W, H = np.asarray(sol.W, np.float64), np.asarray(sol.H, np.float64)
        centroid = (data.frequencies @ W) / np.maximum(W.sum(axis=0), np.finfo(float).tiny)
        order = np.argsort(centroid)
        peak = np.maximum(W.max(axis=0), np.finfo(float).tiny)
        W, H, centroid = W[:, order] / peak[order], H[order] * peak[order, None], centroid[order]
        components = np.stack(
            [
                istft(Xk, cfg.n_fft, cfg.hop_length, data.signal.size)
                for Xk in wiener_components(W, H, data.X)
            ]
        )
        WH = W @ H
        energy = (components**2).sum(axis=1)
        return {
            "beta": beta,
            "objective": float(sol.objective),
            "n_iter": int(sol.n_iter),
            "fit_seconds": seconds,
            "W": W,
            "H": H,
            "centroid_hz": centroid,
            "energy_share": energy / energy.sum(),
            "components": components.astype(np.float32),
            "resynthesis_error": float(np.max(np.abs(components.sum(axis=0) - data.signal))),
            "lsd_db": np.asarray(
                [log_spectral_distance(data.V, WH, data.frequencies, b) for b in BANDS.values()]
            ),
            "V": np.asarray(data.V, np.float32),
            "sample_rate": data.sample_rate,
            "epsilon": data.epsilon,
            "hop_length": cfg.hop_length,
        }

    def figures(self, results: Mapping[str, Mapping[str, Any]], config: Any) -> dict[str, Any]:
        """Per model: templates W (dB) and activations H; all models: LSD per band."""
        results = _finished(results)
        figures = {f"factors_{model}": _factors_figure(model, r) for model, r in results.items()}
        if results:
            figures["fit"] = _fit_figure(results)
            figures["spectrograms"] = _spectrogram_figure(results)
        return figures

    def tables(self, results: Mapping[str, Mapping[str, Any]], config: Any) -> dict[str, list]:
        """``summary`` (one row per model) and ``components`` (one row per component)."""
        results, summary, components = _finished(results), [], []
        for model, r in results.items():
            row = {"model": model, "beta": float(r["beta"]), "objective": float(r["objective"])}
            row |= {"n_iter": int(r["n_iter"]), "fit_seconds": round(float(r["fit_seconds"]), 1)}
            for band, lsd in zip(BANDS, np.asarray(r["lsd_db"]), strict=True):
                row[f"lsd_db {band}"] = round(float(lsd), 2)
            row["max |Σ x_k − x|"] = float(r["resynthesis_error"])
            row["epsilon added to |X|"] = float(r["epsilon"])
            summary.append(row)
            for k, (hz, share) in enumerate(zip(r["centroid_hz"], r["energy_share"], strict=True)):
                components.append(
                    {
                        "model": model,
                        "component": k,
                        "centroid_hz": round(float(hz)),
                        "energy_share": round(float(share), 4),
                        "wav": f"audio_{model}_component{k}.wav",
                    }
                )
        return {"summary": summary, "components": components}

    def write_files(self, results: Mapping[str, Mapping[str, Any]], config: Any, folder) -> list:
        """The resynthesized components as WAV files in ``folder`` (``RUN_DIR/files``)."""
        return write_component_wavs(_finished(results), folder)


def _finished(results):
    return {key: result for key, result in results.items() if "skipped" not in result}


def _factors_figure(model: str, result) -> Any:
    from matplotlib.figure import Figure

    W, H = np.asarray(result["W"]), np.asarray(result["H"])
    rate, hop = int(result["sample_rate"]), int(result["hop_length"])
    frequencies = np.linspace(0, rate / 2, W.shape[0])
    times = hop * np.arange(H.shape[1]) / rate
    fig = Figure(figsize=(13, 6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 2])
    for k in range(W.shape[1]):
        db = 20 * np.log10(np.maximum(W[:, k], 1e-6))
        left.plot(frequencies[1:], db[1:] - 60 * k, lw=0.8, color=f"C{k % 10}")
        left.text(frequencies[-1] * 1.05, -60 * k, f"{k}", fontsize=8, va="center")
        right.plot(times, H[k] / max(H[k].max(), 1e-30) - 1.2 * k, lw=0.8, color=f"C{k % 10}")
    left.set(
        xscale="log", xlabel="frequency (Hz)", yticks=[], title="templates W_k (dB, 60 dB apart)"
    )
    right.set(xlabel="time (s)", yticks=[], title="activations H_k (each scaled to max 1)")
    shares = ", ".join(f"{s:.0%}" for s in np.asarray(result["energy_share"]))
    fig.suptitle(
        f"{model} NMF (β = {float(result['beta']):g}), r = {W.shape[1]}, components ordered by "
        f"spectral centroid; energy shares of the resynthesized parts: {shares}",
        fontsize=10,
    )
    return fig


def _spectrogram_figure(results) -> Any:
    from matplotlib.figure import Figure

    first = next(iter(results.values()))
    V = np.asarray(first["V"], np.float64)
    rate, hop = int(first["sample_rate"]), int(first["hop_length"])
    extent = (0, hop * V.shape[1] / rate, 0, rate / 2000)
    panels = [("mixture V = |X| + ε", V)]
    panels += [
        (f"{m}: W H, LSD {np.asarray(r['lsd_db']).mean():.1f} dB (band mean)", r["W"] @ r["H"])
        for m, r in results.items()
    ]
    fig = Figure(figsize=(4.2 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    top = 20 * np.log10(V.max())
    for ax, (title, S) in zip(axes, panels, strict=True):
        db = 20 * np.log10(np.maximum(np.asarray(S, np.float64), 1e-12))
        image = ax.imshow(
            db, origin="lower", aspect="auto", extent=extent, vmin=top - 100, vmax=top
        )
        ax.set(title=title, xlabel="time (s)", ylabel="kHz")
        ax.title.set_fontsize(8)
    fig.colorbar(image, ax=axes, label="dB", shrink=0.8)
    return fig


def _fit_figure(results) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(results)
    for i, (model, result) in enumerate(results.items()):
        lsd = np.asarray(result["lsd_db"])
        bars = ax.bar(np.arange(len(BANDS)) + i * width, lsd, width, label=model)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(np.arange(len(BANDS)) + width * (len(results) - 1) / 2, list(BANDS))
    ax.set(ylabel="log-spectral distance (dB)", title="fit of |X| by W H in decibels, per band")
    ax.legend()
    return fig
