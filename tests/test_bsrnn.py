"""BSRNN restorer: size of the baseline configuration, shapes at several rates, band plan, I/O."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

from se_finetune.bsrnn import (
    BAND_WIDTHS_48K,
    BSRNN,
    BSRNNConfig,
    band_plan,
    compact_config,
    count_parameters,
    stft_sizes,
)
from sqa.checkpoint import load_model, save_checkpoint
from sqa.errors import SqaError

TINY = BSRNNConfig(sample_rate=48000, num_channels=8, num_layers=1, mask_hidden_factor=1)


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    # The suite runs on shared CPUs; several intra-op threads only spin against each other.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_baseline_configuration_has_about_36_million_parameters() -> None:
    model = BSRNN(BSRNNConfig())
    # URGENT baseline: N=196, 6 dual-path layers, 34 bands at 48 kHz (37.8 M by construction).
    assert 35_000_000 <= count_parameters(model) <= 40_000_000
    assert len(model.band_widths) == 34
    assert sum(model.band_widths) == 481


def test_stft_is_20_ms_window_10_ms_hop_at_every_rate() -> None:
    assert stft_sizes(48000, 20.0, 10.0) == (960, 480)
    assert stft_sizes(16000, 20.0, 10.0) == (320, 160)
    assert stft_sizes(8000, 20.0, 10.0) == (160, 80)


@pytest.mark.parametrize(
    ("rate", "bands", "last_used"), [(48000, 34, 60), (16000, 27, 20), (8000, 20, 4)]
)
def test_band_plan_is_truncated_for_lower_rates(rate: int, bands: int, last_used: int) -> None:
    n_fft, _ = stft_sizes(rate, 20.0, 10.0)
    plan = band_plan(BAND_WIDTHS_48K, n_fft // 2 + 1)
    assert len(plan) == bands
    assert plan[-1][1] == last_used
    assert plan[-1][0] + plan[-1][1] == n_fft // 2 + 1


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_shape_round_trip(rate: int) -> None:
    torch.manual_seed(0)
    model = BSRNN(TINY).eval()
    waveform = 0.1 * torch.randn(2, rate // 4 + 37)  # a length that is not a hop multiple
    with torch.no_grad():
        output = model(waveform, rate)
    assert output.shape == waveform.shape
    assert torch.isfinite(output).all()


def test_compact_model_at_its_own_rate_and_rate_limit() -> None:
    model = BSRNN(compact_config(16000)).eval()
    assert count_parameters(model) < 1_000_000
    with pytest.raises(SqaError, match="at most 16000 Hz"):
        model(torch.zeros(1, 4800), 48000)
    with pytest.raises(SqaError, match="batch, samples"):
        model(torch.zeros(4800))


def test_output_scales_with_input_level() -> None:
    # Input RMS normalisation makes the restorer level-equivariant.
    torch.manual_seed(1)
    model = BSRNN(TINY).eval()
    waveform = 0.1 * torch.randn(1, 4000)
    with torch.no_grad():
        louder, reference = model(4 * waveform, 16000), model(waveform, 16000)
    assert torch.allclose(louder, 4 * reference, atol=1e-5)


def test_checkpoint_round_trip(tmp_path) -> None:
    torch.manual_seed(2)
    model = BSRNN(TINY).eval()
    path = save_checkpoint(tmp_path / "tiny.pt", model, TINY, kind="bsrnn")
    loaded = load_model(path)
    waveform = 0.1 * torch.randn(1, 3200)
    with torch.no_grad():
        assert torch.allclose(loaded(waveform, 16000), model(waveform, 16000))
    assert loaded.config == TINY


def test_enhance_command_keeps_names_lengths_and_rates(tmp_path) -> None:
    from se_finetune.commands import enhance_main
    from sqa.audio import save_audio
    from sqa.synthetic import speech_like

    torch.manual_seed(3)
    config = BSRNNConfig(sample_rate=16000, num_channels=8, num_layers=1, mask_hidden_factor=1)
    checkpoint = save_checkpoint(tmp_path / "r.pt", BSRNN(config), config, kind="bsrnn")
    inputs = tmp_path / "in"
    save_audio(inputs / "a.wav", speech_like(0.5, 16000, seed=0), 16000)
    save_audio(inputs / "sub" / "b.flac", speech_like(0.3, 48000, seed=1), 48000)  # > model rate
    arguments = [
        "--model",
        str(checkpoint),
        "--input",
        str(inputs),
        "--output",
        str(tmp_path / "out"),
    ]
    assert enhance_main(arguments) == 0
    for name, rate, length in (("a.wav", 16000, 8000), ("sub/b.flac", 48000, 14400)):
        info = soundfile.info(str(tmp_path / "out" / name))
        assert (info.samplerate, info.frames) == (rate, length)
        assert np.max(np.abs(soundfile.read(str(tmp_path / "out" / name))[0])) <= 0.99 + 1e-4
    with pytest.raises(SqaError, match="exists"):
        enhance_main(arguments)


def test_enhance_takes_the_shared_inputs_and_never_writes_outside_its_output(tmp_path) -> None:
    from se_finetune.commands import enhance_main
    from sqa.data import AudioRecord, write_track2_jsonl
    from sqa.synthetic import write_system_folders

    torch.manual_seed(3)
    config = BSRNNConfig(sample_rate=16000, num_channels=8, num_layers=1, mask_hidden_factor=1)
    checkpoint = save_checkpoint(tmp_path / "r.pt", BSRNN(config), config, kind="bsrnn")
    write_system_folders(tmp_path / "root", {"a": 20.0, "b": 5.0}, 2, duration=0.3)
    output = tmp_path / "out"
    model = ["--model", str(checkpoint), "--no-progress"]
    assert enhance_main([*model, "--root", str(tmp_path / "root"), "--output", str(output)]) == 0
    assert sorted(p.relative_to(output).as_posix() for p in output.rglob("*.wav")) == [
        "a/utt000.wav", "a/utt001.wav", "b/utt000.wav", "b/utt001.wav",
    ]  # fmt: skip
    hostile = AudioRecord("../../escape", "a", str(tmp_path / "root" / "a" / "utt000.wav"))
    listing = write_track2_jsonl(tmp_path / "data.jsonl", [hostile])
    with pytest.raises(SqaError, match="cannot name a file inside"):
        enhance_main([*model, "--data", str(listing), "--output", str(tmp_path / "out2")])
    assert not (tmp_path / "escape.wav").exists()
