"""The audio study: the inverse STFT, Wiener resynthesis summing to the mixture, end to end."""

import wave

import numpy as np
import pytest

from experiments.studies.audio import (
    AudioStudy,
    istft,
    make_clip,
    wiener_components,
    write_wav,
)
from experiments.study import StudyConfigError
from jnmf.data.audio import stft


def tone_and_clicks(rate=8000, seconds=0.5, seed=0):
    """A 440 Hz tone under four noise bursts: two sources NMF can pull apart."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    clicks = np.zeros_like(t)
    for start in (0.05, 0.17, 0.29, 0.41):
        i = int(start * rate)
        clicks[i : i + 200] = rng.standard_normal(200) * np.exp(-np.arange(200) / 40)
    return 0.3 * np.sin(2 * np.pi * 440 * t) + 0.5 * clicks


@pytest.mark.parametrize(("n_fft", "hop"), [(256, 64), (512, 128), (64, 32), (1024, 256)])
def test_istft_inverts_stft(rng, n_fft, hop):
    x = rng.standard_normal(3001)
    np.testing.assert_allclose(istft(stft(x, n_fft, hop), n_fft, hop, x.size), x, atol=1e-12)


def test_istft_rejects_a_wrong_bin_count():
    with pytest.raises(ValueError, match="bins"):
        istft(np.zeros((10, 4)), 256, 64, 100)


def test_wiener_components_sum_back_to_the_mixture(rng):
    x = tone_and_clicks()
    X = stft(x, 256, 64)
    W, H = rng.uniform(0, 1, (129, 3)), rng.uniform(0, 1, (3, X.shape[1]))
    W[:, 1] = 0.0  # a dead component and zero-model bins must not break the sum
    parts = wiener_components(W, H, X)
    np.testing.assert_allclose(parts.sum(axis=0), X, atol=1e-12)
    signals = [istft(Xk, 256, 64, x.size) for Xk in parts]
    np.testing.assert_allclose(np.sum(signals, axis=0), x, atol=1e-12)
    assert np.all(np.abs(parts[1]) == 0)


def test_write_wav_round_trips_16_bit(tmp_path):
    x = 0.5 * np.sin(np.linspace(0, 100, 4000))
    write_wav(tmp_path / "a.wav", x, 8000)
    with wave.open(str(tmp_path / "a.wav")) as f:
        assert (f.getframerate(), f.getsampwidth(), f.getnchannels()) == (8000, 2, 1)
        back = np.frombuffer(f.readframes(f.getnframes()), "<i2") / 2**15
    np.testing.assert_allclose(back, x, atol=2**-15)


def test_parse_rejects_bad_sections():
    study = AudioStudy()
    with pytest.raises(StudyConfigError, match="unknown keys"):
        study.parse({"beta": 0})
    with pytest.raises(StudyConfigError, match="models"):
        study.parse({"models": ["itakura-saito", "itakura-saito"]})
    with pytest.raises(StudyConfigError, match="hop_length"):
        study.parse({"n_fft": 256, "hop_length": 200})
    with pytest.raises(StudyConfigError, match="floor"):
        study.parse({"floor": 0.0})
    assert [t.key for t in study.tasks(study.parse({}))] == [
        "itakura-saito",
        "kullback-leibler",
        "frobenius",
    ]


def test_silent_clip_is_refused():
    with pytest.raises(ValueError, match="silent"):
        make_clip(np.zeros(2000), 8000, 256, 64, 1e-6)


def test_is_components_resynthesize_the_mixture(tmp_path):
    study = AudioStudy()
    config = study.parse(
        {"models": ["itakura-saito"], "rank": 2, "n_fft": 256, "hop_length": 64, "max_iter": 60}
    )
    clip = make_clip(tone_and_clicks(), 8000, config.n_fft, config.hop_length, config.floor)
    assert clip.V.min() >= clip.epsilon > 0
    (task,) = study.tasks(config)
    result = study.compute(task, clip)
    assert result["components"].shape == (2, clip.signal.size)
    assert result["resynthesis_error"] < 1e-6  # components stored as float32; sum in float64
    assert np.all(np.diff(result["centroid_hz"]) >= 0)
    np.testing.assert_allclose(result["energy_share"].sum(), 1.0)
    results = {"itakura-saito": result}
    paths = study.write_files(results, config, tmp_path)
    assert [p.name for p in paths] == [
        "audio_itakura-saito_component0.wav",
        "audio_itakura-saito_component1.wav",
    ]
    names = {"factors_itakura-saito", "fit", "spectrograms"}
    assert set(study.figures(results, config)) == names
    assert len(study.tables(results, config)["components"]) == 2


@pytest.mark.slow
def test_drumloop_first_second_all_models(tmp_path):
    study = AudioStudy()
    config = study.parse({"seconds": 1.0, "rank": 4, "max_iter": 100, "restarts": 1})
    clip = study.load(config)
    assert clip.signal.size == 44100 and clip.V.shape[0] == 513
    results = {task.key: study.compute(task, clip) for task in study.tasks(config)}
    for result in results.values():
        assert result["resynthesis_error"] < 1e-6
        assert np.all(np.isfinite(result["lsd_db"]))
    assert len(study.write_files(results, config, tmp_path)) == 12
    assert len(study.tables(results, config)["summary"]) == 3


@pytest.mark.slow
def test_runner_writes_every_component_as_wav(tmp_path):
    """jnmf-run → render → RUN_DIR/files/*.wav: the WAV files reach the run folder."""
    from experiments.cli import run_main

    path = tmp_path / "audio.toml"
    path.write_text(
        'name = "audio"\n[run]\nprecision = "float32"\n'
        f'out = "{tmp_path / "results"}"\n'
        '[study]\nmodels = ["kullback-leibler"]\nseconds = 0.5\nrank = 2\nmax_iter = 30\n'
        "restarts = 1\n"
    )
    assert run_main([str(path), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "results").glob("audio-*")
    wavs = sorted(p.name for p in (run_dir / "files").glob("*.wav"))
    assert wavs == [f"audio_kullback-leibler_component{k}.wav" for k in range(2)]
    with wave.open(str(run_dir / "files" / wavs[0])) as f:
        assert f.getnframes() > 0
