"""Tests of sqa.audio: decoding, channel/int policies, typed validation errors, resampling."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from sqa.audio import (
    AUDIO_EXTENSIONS,
    DEFAULT_MIN_DURATION,
    audio_duration,
    is_audio_file,
    load_audio,
    resample,
    save_audio,
    validate_audio,
)
from sqa.errors import (
    AudioError,
    EmptyAudioError,
    NonFiniteAudioError,
    SilentAudioError,
    SqaError,
    TooShortAudioError,
    UnreadableAudioError,
)
from sqa.torch_audio import resample_torch

RATE = 16000


def tone(seconds: float = 0.5, rate: int = RATE, frequency: float = 440.0) -> np.ndarray:
    """A 0.5-amplitude sine, float32 ``(T,)``."""
    times = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * times)).astype(np.float32)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_integer_and_float_wav_round_trip(tmp_path: Path, subtype: str) -> None:
    signal = tone()
    path = save_audio(tmp_path / f"x_{subtype}.wav", signal, RATE, subtype=subtype)
    loaded, rate = load_audio(path)
    assert rate == RATE and loaded.dtype == np.float32 and loaded.shape == signal.shape
    tolerance = 2.0**-15 if subtype == "PCM_16" else 1e-6
    assert np.abs(loaded - signal).max() <= tolerance
    assert np.abs(loaded).max() <= 1.0


def test_int16_full_scale_maps_to_unit_range(tmp_path: Path) -> None:
    integers = np.array([-32768, 0, 16384, 32767] * 1000, dtype=np.int16)
    path = tmp_path / "int16.wav"
    soundfile.write(path, integers, RATE, subtype="PCM_16")
    loaded, _ = load_audio(path)
    np.testing.assert_allclose(loaded[:4], integers[:4] / 32768.0)


def test_int32_is_scaled(tmp_path: Path) -> None:
    integers = (tone() * 2**31).astype(np.int32)
    path = tmp_path / "int32.wav"
    soundfile.write(path, integers, RATE, subtype="PCM_32")
    loaded, _ = load_audio(path)
    np.testing.assert_allclose(loaded, integers / 2.0**31, atol=1e-6)


@pytest.mark.parametrize("suffix", [".flac", ".ogg", ".opus", ".mp3"])
def test_compressed_formats_decode(tmp_path: Path, suffix: str) -> None:
    container = {".flac": "FLAC", ".ogg": "OGG", ".opus": "OGG", ".mp3": "MP3"}[suffix]
    if container not in soundfile.available_formats():
        pytest.skip(f"libsndfile here cannot write {container}")
    signal = tone(1.0)
    path = save_audio(tmp_path / f"x{suffix}", signal, RATE)
    loaded, rate = load_audio(path, sample_rate=RATE)
    assert rate == RATE and loaded.dtype == np.float32
    assert abs(len(loaded) - len(signal)) < 0.1 * RATE  # codecs add priming/padding
    assert 0.2 < float(np.sqrt(np.mean(loaded**2))) < 0.5  # a tone of RMS 0.354 survives
    assert audio_duration(path) == pytest.approx(len(loaded) / RATE, abs=0.1)


def test_stereo_policies(tmp_path: Path) -> None:
    left, right = tone(), np.zeros(RATE // 2, dtype=np.float32) + tone(frequency=1000.0) * 0.5
    path = save_audio(tmp_path / "stereo.wav", np.stack([left, right]), RATE, subtype="FLOAT")
    mean, _ = load_audio(path)
    first, _ = load_audio(path, channels="first")
    np.testing.assert_allclose(mean, (left + right) / 2, atol=1e-6)
    np.testing.assert_allclose(first, left, atol=1e-7)
    with pytest.raises(SqaError, match="channel policy"):
        load_audio(path, channels="last")


def test_load_resamples_to_requested_rate(tmp_path: Path) -> None:
    path = save_audio(tmp_path / "x.wav", tone(1.0, 48000), 48000, subtype="FLOAT")
    loaded, rate = load_audio(path, sample_rate=RATE)
    assert rate == RATE and len(loaded) == RATE
    np.testing.assert_allclose(loaded[800:-800], tone(1.0)[800:-800], atol=1e-3)
    assert audio_duration(path) == pytest.approx(1.0)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableAudioError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(UnreadableAudioError, match="does not exist"):
        audio_duration(tmp_path / "nope.wav")


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    with pytest.raises(UnreadableAudioError, match="notes.wav"):
        load_audio(path)
    with pytest.raises(UnreadableAudioError):
        audio_duration(path)


def test_corrupt_header(tmp_path: Path) -> None:
    path = save_audio(tmp_path / "corrupt.wav", tone(), RATE)
    data = bytearray(path.read_bytes())
    data[8:16] = b"XXXXXXXX"  # destroy "WAVEfmt "
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableAudioError, match="corrupt.wav"):
        load_audio(path)


def test_zero_byte_and_header_only_files_are_empty(tmp_path: Path) -> None:
    zero = tmp_path / "zero.wav"
    zero.write_bytes(b"")
    header_only = tmp_path / "header.wav"
    soundfile.write(header_only, np.zeros(0, dtype=np.float32), RATE)
    for path in (zero, header_only):
        with pytest.raises(EmptyAudioError, match=path.name):
            load_audio(path)


@pytest.mark.parametrize("value", [0.0, 0.25])
def test_silent_or_constant(tmp_path: Path, value: float) -> None:
    path = tmp_path / "flat.wav"
    soundfile.write(path, np.full(RATE, value, dtype=np.float32), RATE, subtype="FLOAT")
    with pytest.raises(SilentAudioError, match="flat.wav"):
        load_audio(path)
    assert load_audio(path, validate=False)[0].shape == (RATE,)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_float_wav(tmp_path: Path, bad: float) -> None:
    signal = tone()
    signal[100] = bad
    path = tmp_path / "bad.wav"
    soundfile.write(path, signal, RATE, subtype="FLOAT")
    with pytest.raises(NonFiniteAudioError, match="bad.wav"):
        load_audio(path)


def test_too_short_and_configurable_minimum(tmp_path: Path) -> None:
    path = save_audio(tmp_path / "short.wav", tone(0.05), RATE)
    with pytest.raises(TooShortAudioError, match="short.wav"):
        load_audio(path)
    assert len(load_audio(path, min_duration=0.01)[0]) == 800
    assert DEFAULT_MIN_DURATION == 0.1


def test_errors_are_value_errors_and_sqa_errors() -> None:
    with pytest.raises(ValueError):
        validate_audio(np.zeros(0, dtype=np.float32), RATE)
    for error in (EmptyAudioError, SilentAudioError, NonFiniteAudioError, TooShortAudioError):
        assert issubclass(error, AudioError) and issubclass(error, SqaError)


def test_validate_array_source_name() -> None:
    with pytest.raises(SilentAudioError, match="<array>"):
        validate_audio(np.zeros((2, RATE), dtype=np.float32), RATE)
    validate_audio(tone(), RATE)


def test_save_clips_with_warning_and_refuses_nan(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="clipping"):
        path = save_audio(tmp_path / "loud.wav", tone() * 4, RATE, subtype="FLOAT")
    assert np.abs(load_audio(path)[0]).max() <= 1.0
    signal = tone()
    signal[0] = math.nan
    with pytest.raises(NonFiniteAudioError):
        save_audio(tmp_path / "nan.wav", signal, RATE)
    with pytest.raises(SqaError, match="suffix"):
        save_audio(tmp_path / "x.txt", tone(), RATE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loud.wav"]  # no temporary left


def test_audio_extensions() -> None:
    assert AUDIO_EXTENSIONS == (".wav", ".flac", ".ogg", ".mp3", ".opus")
    assert is_audio_file("A.WAV") and not is_audio_file("a.txt")


def test_numpy_resample_shapes() -> None:
    mono = resample(tone(), RATE, 8000)
    stereo = resample(np.stack([tone(), tone()]), RATE, 8000)
    assert mono.shape == (4000,) and stereo.shape == (2, 4000) and mono.dtype == np.float32
    np.testing.assert_allclose(stereo[0], mono)
    assert resample(np.zeros(0, np.float32), RATE, 8000).shape == (0,)


RATES = [8000, 16000, 22050, 24000, 44100, 48000]


@pytest.mark.parametrize("orig", RATES)
@pytest.mark.parametrize("target", RATES)
def test_resample_torch_matches_soxr(orig: int, target: int) -> None:
    signal = tone(0.25, orig) + tone(0.25, orig, frequency=0.3 * min(orig, target)) * 0.5
    result = resample_torch(torch.from_numpy(signal), orig, target).numpy()
    reference = resample(signal, orig, target)
    assert result.shape == (math.floor(len(signal) * target / orig + 0.5),)
    assert abs(len(result) - len(reference)) <= 1  # soxr rounds exact halves either way
    edge = int(0.02 * target)  # zero padding makes the ends differ
    middle = slice(edge, min(len(result), len(reference)) - edge)
    assert np.abs(result[middle] - reference[middle]).max() < 1e-3


def test_resample_torch_removes_aliases_and_keeps_batch_shape() -> None:
    above_nyquist = torch.from_numpy(tone(0.25, 48000, frequency=12000.0)).repeat(2, 3, 1)
    output = resample_torch(above_nyquist, 48000, RATE, window="hann")
    assert output.shape == (2, 3, RATE // 4)
    assert float(output[..., 400:-400].abs().max()) < 1e-2
    same = torch.ones(5)
    assert resample_torch(same, RATE, RATE) is same


def test_resample_torch_gradients_flow() -> None:
    waveform = torch.from_numpy(tone(0.1, 44100)).double().requires_grad_(True)
    output = resample_torch(waveform, 44100, RATE)
    output.pow(2).sum().backward()
    assert waveform.grad is not None and torch.isfinite(waveform.grad).all()
    assert float(waveform.grad.abs().sum()) > 0
    with pytest.raises(SqaError, match="window"):
        resample_torch(waveform, 44100, RATE, window="box")
