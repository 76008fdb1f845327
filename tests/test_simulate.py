"""Degradation pipeline: every step is reproducible and changes the signal as specified."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
from scipy import signal as scipy_signal

from se_finetune.commands import simulate_main
from sqa.audio import save_audio
from sqa.errors import SqaError
from sqa.simulation.classical import CLASSICAL_ENHANCERS, get_enhancer
from sqa.simulation.simulate import (
    SimulationConfig,
    Simulator,
    active_speech_power,
    add_noise,
    band_limit,
    clip,
    codec,
    packet_loss,
    reverberate,
    summarise_mix,
)
from sqa.synthetic import speech_like

RATE = 16000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_like(1.5, RATE, seed=3)


def _noise(length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(length).astype(np.float32)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 7.5, 20.0])
def test_noise_is_added_at_the_snr_of_active_speech(speech: np.ndarray, snr_db: float) -> None:
    noise = _noise(speech.shape[0])
    noisy = add_noise(speech, noise, snr_db, RATE)
    added = noisy.astype(np.float64) - speech
    measured = 10 * np.log10(active_speech_power(speech, RATE) / np.mean(added**2))
    assert abs(measured - snr_db) <= 0.5
    # Active-speech SNR ignores pauses, so it is above the whole-signal SNR.
    assert measured >= 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(added**2))


def test_band_limit_removes_energy_above_the_cutoff(speech: np.ndarray) -> None:
    noisy = add_noise(speech, _noise(speech.shape[0]), 10.0, RATE)
    limited = band_limit(noisy, RATE, 8000)
    assert limited.shape == noisy.shape
    frequencies, before = scipy_signal.welch(noisy, RATE, nperseg=1024)
    _, after = scipy_signal.welch(limited, RATE, nperseg=1024)
    above = frequencies > 4000 * 1.05
    below = frequencies < 4000 * 0.9
    assert after[above].sum() < 1e-3 * before[above].sum()
    assert after[below].sum() > 0.9 * before[below].sum()


@pytest.mark.parametrize("level", [0.06, 0.3, 0.9])
def test_clipping_level(speech: np.ndarray, level: float) -> None:
    clipped = clip(speech, level)
    threshold = level * np.max(np.abs(speech))
    assert np.max(np.abs(clipped)) == pytest.approx(threshold, rel=1e-6)
    untouched = np.abs(speech) < threshold
    np.testing.assert_array_equal(clipped[untouched], speech[untouched])


def test_reverberation_target_is_the_early_part(speech: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    rir = np.zeros(RATE // 2, dtype=np.float32)
    rir[40] = 1.0  # direct path after 2.5 ms
    tail = np.arange(41, rir.shape[0])
    rir[41:] = 0.3 * rng.standard_normal(tail.shape[0]) * np.exp(-(tail - 41) / (0.1 * RATE))
    reverberant, early = reverberate(speech, rir, RATE, early_ms=50.0)
    assert reverberant.shape == early.shape == speech.shape
    expected = np.convolve(speech, rir[: 40 + 800 + 1])[40 : 40 + speech.shape[0]]
    np.testing.assert_allclose(early, expected, atol=1e-5)
    # The late tail makes the reverberant signal differ from the early target.
    assert np.mean((reverberant - early) ** 2) > 1e-3 * np.mean(early**2)


@pytest.mark.parametrize(("kind", "setting"), [("mp3", 128), ("mp3", 24), ("vorbis", 0.5)])
def test_codec_keeps_length_and_alignment(speech: np.ndarray, kind: str, setting: float) -> None:
    available = soundfile.available_formats()
    if ("MP3" if kind == "mp3" else "OGG") not in available:
        pytest.skip(f"libsndfile here cannot write {kind}")
    coded = codec(speech, RATE, kind, setting)
    assert coded.shape == speech.shape
    assert not np.allclose(coded, speech)
    correlation = np.corrcoef(coded, speech)[0, 1]
    assert correlation > 0.8  # delay compensated: still sample-aligned


def test_unknown_codec_is_a_clear_error(speech: np.ndarray) -> None:
    with pytest.raises(SqaError, match="unknown codec"):
        codec(speech, RATE, "aac", 64)


def test_packet_loss_zeroes_whole_packets_at_the_rate() -> None:
    signal = np.ones(RATE * 60, dtype=np.float32)
    damaged, lost = packet_loss(signal, RATE, 0.15, 2.0, np.random.default_rng(0))
    packet = RATE // 50
    assert lost.shape[0] == signal.shape[0] // packet
    assert abs(lost.mean() - 0.15) < 0.03
    np.testing.assert_array_equal(damaged.reshape(-1, packet).max(axis=1) == 0, lost)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, lost.astype(int), 0])))[::2]
    assert 1.5 < runs.mean() < 2.5  # bursts of about the requested mean length


def test_steps_are_reproducible_from_their_seed(speech: np.ndarray) -> None:
    first = packet_loss(speech, RATE, 0.2, 2.0, np.random.default_rng(7))[0]
    second = packet_loss(speech, RATE, 0.2, 2.0, np.random.default_rng(7))[0]
    np.testing.assert_array_equal(first, second)
    for name in CLASSICAL_ENHANCERS:
        noisy = add_noise(speech, _noise(speech.shape[0]), 5.0, RATE)
        np.testing.assert_array_equal(
            get_enhancer(name)(noisy, RATE), get_enhancer(name)(noisy, RATE)
        )


@pytest.mark.parametrize("name", sorted(CLASSICAL_ENHANCERS))
def test_classical_enhancers_suppress_noise(speech: np.ndarray, name: str) -> None:
    padded = np.concatenate([np.zeros(RATE // 2, np.float32), speech])
    noisy = padded + 0.01 * _noise(padded.shape[0], seed=4)
    processed = get_enhancer(name)(noisy, RATE)
    assert processed.shape == noisy.shape and np.isfinite(processed).all()
    noise_only = slice(0, RATE // 2)
    assert np.mean(processed[noise_only] ** 2) < 0.5 * np.mean(noisy[noise_only] ** 2)


def _write_corpus(root, count: int = 3) -> dict[str, list]:
    files: dict[str, list] = {"speech": [], "noise": [], "rir": []}
    for index in range(count):
        files["speech"].append(
            save_audio(root / "speech" / f"s{index}.wav", speech_like(0.6, RATE, seed=index), RATE)
        )
        files["noise"].append(
            save_audio(root / "noise" / f"n{index}.wav", 0.1 * _noise(RATE, seed=index), RATE)
        )
    rir = np.zeros(2000, np.float32)
    rir[5], rir[900] = 0.8, 0.3
    files["rir"].append(save_audio(root / "rir" / "r0.wav", rir, RATE))
    return files


def test_simulator_pairs_are_reproducible(tmp_path) -> None:
    files = _write_corpus(tmp_path)
    config = SimulationConfig(
        segment_seconds=1.0,
        codec_probability=0.5,
        secondary_probability=0.5,
        packet_loss_probability=0.5,
    )
    simulator = Simulator(config, files["speech"], files["noise"], files["rir"])
    pairs = [simulator(seed) for seed in range(12)]
    again = Simulator(config, files["speech"], files["noise"], files["rir"])(5)
    np.testing.assert_array_equal(pairs[5].noisy, again.noisy)
    np.testing.assert_array_equal(pairs[5].target, again.target)
    assert pairs[5].info == again.info
    for pair in pairs:
        assert pair.noisy.shape == pair.target.shape == (RATE,)
        assert np.max(np.abs(pair.noisy)) <= 0.95 + 1e-6
    assert not np.array_equal(pairs[0].noisy, pairs[1].noisy)
    mix = summarise_mix([pair.info for pair in pairs])
    assert set(mix) >= {"noise", "reverb", "codec", "packet_loss", "secondary"}
    assert 0.0 < mix["noise"] <= 1.0


def test_simulator_needs_speech_and_noise() -> None:
    with pytest.raises(SqaError, match="clean speech"):
        Simulator(SimulationConfig(), [], [])
    with pytest.raises(SqaError, match="noise"):
        Simulator(SimulationConfig(), ["a.wav"], [])


def test_simulate_command_writes_pairs_and_refuses_overwrite(tmp_path) -> None:
    _write_corpus(tmp_path)
    output = tmp_path / "out"
    arguments = [
        "--speech",
        str(tmp_path / "speech"),
        "--noise",
        str(tmp_path / "noise"),
        "--rir",
        str(tmp_path / "rir"),
        "--output",
        str(output),
        "--count",
        "3",
        "--duration",
        "0.5",
    ]
    assert simulate_main(arguments) == 0
    assert len(list((output / "noisy").glob("*.wav"))) == 3
    assert len(list((output / "clean").glob("*.wav"))) == 3
    rows = [json.loads(line) for line in (output / "mix.jsonl").read_text().splitlines()]
    assert [row["seed"] for row in rows] == [0, 1, 2]
    with pytest.raises(SqaError):
        simulate_main(arguments)
    assert simulate_main([*arguments, "--force"]) == 0
