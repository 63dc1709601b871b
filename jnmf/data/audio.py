"""Audio clips shipped in the ``pyo`` package and their magnitude spectrograms.

The clips are the mono 16-bit 44.1 kHz WAV files of ``pyo/examples/snds/`` (pyo is
LGPL-3.0-or-later; install it with ``pip install pyo``): ``drumloop`` (6.0 s drum loop) and
``alum1`` … ``alum4`` (0.66–1.10 s struck-metal sounds).  They are read with the standard
library's ``wave`` module; pyo itself is never imported.

The spectrogram is computed here with NumPy: frames of ``n_fft`` samples every ``hop_length``
samples, each multiplied by the periodic Hann window w[t] = sin²(π t / n_fft), and

    S[f, k] = | Σ_t w[t] x[k·hop + t] e^(−2πi f t / n_fft) |,   f = 0 … n_fft/2,

with the signal zero-padded by n_fft/2 on both sides when ``center`` is true, so that frame k
is centred at sample k·hop.  V = S (frequency bins × frames) is what β-NMF of audio factors
(Itakura-Saito on S², Kullback-Leibler on S).
"""

from __future__ import annotations

import wave

import numpy as np

from jnmf.data._common import Dataset, package_dir

AUDIO_CLIPS = ("drumloop", "alum1", "alum2", "alum3", "alum4")
_LICENCE = "pyo example sound (pyo/examples/snds), distributed with pyo under LGPL-3.0-or-later."


def read_wav(path) -> tuple[np.ndarray, int]:
    """(samples × channels float64 in [−1, 1), sample rate) of an integer PCM WAV file."""
    with wave.open(str(path), "rb") as f:
        n_channels, width, rate, n_frames = (
            f.getnchannels(),
            f.getsampwidth(),
            f.getframerate(),
            f.getnframes(),
        )
        data = f.readframes(n_frames)
    if width == 1:
        x = (np.frombuffer(data, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width in (2, 4):
        dtype = np.dtype(f"<i{width}")
        x = np.frombuffer(data, dtype).astype(np.float64) / float(2 ** (8 * width - 1))
    else:
        raise ValueError(f"{path}: {8 * width}-bit WAV samples are not supported")
    return x.reshape(-1, n_channels), rate


def stft(x, n_fft: int = 1024, hop_length: int = 256, center: bool = True) -> np.ndarray:
    """Complex short-time Fourier transform, (n_fft/2 + 1) × frames (module docstring)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be a 1-D signal, got shape {x.shape}")
    if not isinstance(n_fft, int) or n_fft < 2 or n_fft % 2:
        raise ValueError(f"n_fft must be an even integer ≥ 2, got {n_fft!r}")
    if not isinstance(hop_length, int) or hop_length < 1:
        raise ValueError(f"hop_length must be an integer ≥ 1, got {hop_length!r}")
    if center:
        x = np.pad(x, n_fft // 2)
    if x.size < n_fft:
        raise ValueError(f"the signal ({x.size} samples) is shorter than n_fft={n_fft}")
    n_frames = 1 + (x.size - n_fft) // hop_length
    window = np.sin(np.pi * np.arange(n_fft) / n_fft) ** 2
    starts = hop_length * np.arange(n_frames)
    frames = x[starts[:, None] + np.arange(n_fft)[None, :]] * window
    return np.fft.rfft(frames, axis=1).T


def magnitude_spectrogram(
    x, n_fft: int = 1024, hop_length: int = 256, center: bool = True, power: float = 1.0
) -> np.ndarray:
    """|STFT|^power, (n_fft/2 + 1) frequency bins × frames, float64 ≥ 0."""
    return np.abs(stft(x, n_fft, hop_length, center)) ** power


def load_audio(
    name: str = "drumloop",
    n_fft: int = 1024,
    hop_length: int = 256,
    center: bool = True,
    power: float = 1.0,
) -> Dataset:
    """Magnitude spectrogram of a pyo example clip: V = |STFT|^power, bins × frames.

    Args:
        name: one of ``AUDIO_CLIPS``.
        n_fft, hop_length, center, power: as in ``magnitude_spectrogram`` (power 2 gives the
            power spectrogram for Itakura-Saito NMF).

    meta: ``signal`` (mono samples, float64), ``sample_rate``, ``n_fft``, ``hop_length``,
    ``center``, ``power``, ``frequencies`` (Hz per row), ``times`` (s per column, frame
    centres when ``center``), ``source``, ``licence``.
    """
    if name not in AUDIO_CLIPS:
        raise ValueError(f"unknown audio clip {name!r}: use one of {AUDIO_CLIPS}")
    path = package_dir("pyo", "pyo", "audio clips") / "examples" / "snds" / f"{name}.wav"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall pyo (pip install pyo)")
    samples, rate = read_wav(path)
    signal = samples.mean(axis=1)
    V = magnitude_spectrogram(signal, n_fft, hop_length, center, power)
    offset = 0 if center else n_fft // 2
    meta = {
        "signal": signal,
        "sample_rate": rate,
        "n_fft": n_fft,
        "hop_length": hop_length,
        "center": center,
        "power": power,
        "frequencies": np.fft.rfftfreq(n_fft, 1.0 / rate),
        "times": (offset + hop_length * np.arange(V.shape[1])) / rate,
        "source": str(path),
        "licence": _LICENCE,
    }
    return Dataset(V=V, name="audio", meta=meta)
