"""Homologous systems (`sqa simulate-systems`), procedural noise and simulated RIRs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile

from se_finetune.noise import NOISE_KINDS, coloured_noise, procedural_noise, simulated_rir
from se_finetune.systems import SystemBuilder, parse_system_set
from sqa import cli
from sqa.errors import SqaError
from sqa.fileio import read_rows
from sqa.simulation.simulate import SimulationConfig
from sqa.synthetic import speech_like

DESCRIPTION = """
base: {reverb_probability: 0.0, codec_probability: 0.0, packet_loss_probability: 0.0,
       clipping_probability: 0.0, bandlimit_probability: 0.0, secondary_probability: 0.0,
       noise_probability: 1.0}
systems:
  snr20: {degradation: {snr_range: [20, 20]}}
  snr0: {degradation: {snr_range: [0, 0]}}
  wiener: {input: snr0, enhancer: wiener}
"""


@pytest.fixture()
def corpus(tmp_path: Path) -> dict[str, Path]:
    speech, noise = tmp_path / "speech", tmp_path / "noise"
    speech.mkdir()
    noise.mkdir()
    for index in range(3):
        soundfile.write(speech / f"s{index}.wav", speech_like(1.0, seed=index), 16000)
    rng = np.random.default_rng(0)
    soundfile.write(noise / "n.wav", 0.1 * coloured_noise(32000, 1.0, rng), 16000)
    (tmp_path / "systems.yaml").write_text(DESCRIPTION)
    return {"speech": speech, "noise": noise, "systems": tmp_path / "systems.yaml"}


def test_degradation_systems_share_everything_but_the_snr(corpus: dict[str, Path]) -> None:
    import yaml

    system_set = parse_system_set(yaml.safe_load(corpus["systems"].read_text()))
    speech = sorted(corpus["speech"].glob("*.wav"))
    config = SimulationConfig(segment_seconds=1.0)
    builder = SystemBuilder(system_set, config, speech, [corpus["noise"] / "n.wav"], [])
    target, signals, infos = builder.build_utterance(7)
    assert set(signals) == {"snr20", "snr0", "wiener"}
    assert infos["snr20"]["speech"] == infos["snr0"]["speech"]
    assert (infos["snr20"]["snr_db"], infos["snr0"]["snr_db"]) == (20.0, 0.0)
    assert infos["wiener"]["input"] == "snr0" and infos["wiener"]["enhancer"] == "wiener"

    def snr(signal: np.ndarray) -> float:
        gain = float(np.dot(signal, target) / np.dot(target, target))
        return 10 * np.log10(np.sum((gain * target) ** 2) / np.sum((signal - gain * target) ** 2))

    # Same clean segment and noise excerpt: the measured SNRs are 20 dB apart.
    assert snr(signals["snr20"]) - snr(signals["snr0"]) == pytest.approx(20.0, abs=0.5)
    again = builder.build_utterance(7, {"wiener"})[1]
    np.testing.assert_array_equal(again["wiener"], signals["wiener"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("systems: {}", "non-empty"),
        ("systems: {a: {input: b, enhancer: wiener}, b: {}}", "defined before"),
        ("systems: {a: {}, b: {input: a}}", "needs only an enhancer"),
        ("systems: {a: {enhancer: wiener}}", "needs an input"),
        ("systems: {'../x': {}}", "bad name"),
        ("systems: {a: {colour: red}}", "unknown field"),
        ("reference: b\nsystems: {a: {}, b: {input: a, enhancer: wiener}}", "not a degradation"),
    ],
)
def test_bad_descriptions_are_refused_clearly(text: str, message: str) -> None:
    import yaml

    with pytest.raises(SqaError, match=message):
        parse_system_set(yaml.safe_load(text))


def test_command_writes_homologous_folders_and_resumes(corpus: dict[str, Path], tmp_path: Path):
    output = tmp_path / "out"
    arguments = [
        "simulate-systems", "--speech", str(corpus["speech"]), "--noise", str(corpus["noise"]),
        "--systems", str(corpus["systems"]), "--output", str(output), "--count", "2",
        "--duration", "1", "--tag", "synthetic=false",
    ]  # fmt: skip
    assert cli.main(arguments) == 0
    rows = read_rows(output / "systems.jsonl")
    assert len(rows) == 6 and {row["synthetic"] for row in rows} == {False}
    assert sorted(p.name for p in (output / "systems").iterdir()) == ["snr0", "snr20", "wiener"]
    first = (output / "systems" / "wiener" / "utt000000.wav").read_bytes()
    (output / "systems" / "wiener" / "utt000000.wav").unlink()
    stamp = (output / "systems" / "snr0" / "utt000000.wav").stat().st_mtime_ns
    assert cli.main(arguments) == 0  # only the missing file is written again, identically
    assert (output / "systems" / "wiener" / "utt000000.wav").read_bytes() == first
    assert (output / "systems" / "snr0" / "utt000000.wav").stat().st_mtime_ns == stamp
    assert len(list((output / "clean").glob("*.wav"))) == 2


def test_bad_tag_and_missing_description_are_one_line_errors(
    corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["simulate-systems", "--speech", str(corpus["speech"]), "--output", str(tmp_path)]
    assert cli.main([*base, "--systems", str(tmp_path / "none.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main([*base, "--systems", str(corpus["systems"]), "--tag", "oops"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_procedural_noise_is_seeded_unit_rms_and_finite(kind: str) -> None:
    talkers = [speech_like(0.5, seed=seed) for seed in range(4)]
    first = procedural_noise(kind, 16000, 16000, np.random.default_rng(3), talkers)
    second = procedural_noise(kind, 16000, 16000, np.random.default_rng(3), talkers)
    np.testing.assert_array_equal(first, second)
    assert first.shape == (16000,) and np.isfinite(first).all()
    assert np.std(first) == pytest.approx(1.0, rel=1e-3)


def test_coloured_noise_slope_follows_beta() -> None:
    rng = np.random.default_rng(0)
    brown = coloured_noise(1 << 16, 2.0, rng)
    spectrum = np.abs(np.fft.rfft(brown)) ** 2
    low, high = spectrum[10:100].mean(), spectrum[10000:20000].mean()
    assert 10 * np.log10(low / high) > 30  # about 20 dB per decade over two decades


def test_unknown_noise_kind_and_babble_without_speech_are_clear_errors() -> None:
    with pytest.raises(SqaError, match="unknown noise kind"):
        procedural_noise("rain", 100, 16000, np.random.default_rng(0))
    with pytest.raises(SqaError, match="babble"):
        procedural_noise("babble", 100, 16000, np.random.default_rng(0))


@pytest.mark.skipif(
    importlib.util.find_spec("pyroomacoustics") is None, reason="pyroomacoustics not installed"
)
def test_simulated_rir_has_a_direct_path_and_decays() -> None:
    rir, description = simulated_rir(16000, np.random.default_rng(1))
    assert 0.2 <= description["rt60"] <= 1.0 and 0.5 <= description["distance"] <= 4.0
    peak = int(np.argmax(np.abs(rir)))
    early = np.sum(rir[peak : peak + 800] ** 2)
    assert early > np.sum(rir[peak + 8000 :] ** 2)


def test_make_noise_writes_files_and_a_listing(tmp_path: Path) -> None:
    output = tmp_path / "noise"
    arguments = ["make-noise", "--output", str(output), "--count", "3", "--kinds",
                 "coloured,hum,clicks", "--duration", "0.5"]  # fmt: skip
    assert cli.main(arguments) == 0
    rows = read_rows(output / "noise.jsonl")
    assert [row["kind"] for row in rows] == ["coloured", "hum", "clicks"]
    for row in rows:
        samples, rate = soundfile.read(output / row["file"])
        assert rate == 16000 and samples.shape == (8000,) and np.max(np.abs(samples)) <= 0.9 + 1e-3
