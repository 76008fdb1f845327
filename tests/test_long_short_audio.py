"""Long and short audio: per-metric limits and windows, worker crashes, the 0.1 s minimum."""

from __future__ import annotations

import importlib.util
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from sqa.audio import save_audio
from sqa.commands import score
from sqa.data.records import AudioRecord
from sqa.errors import TooLongAudioError
from sqa.fileio import read_jsonl
from sqa.metrics import perceptual
from sqa.metrics.process_pool import map_isolating_crashes
from sqa.metrics.scorer import MetricScorer, describe_error
from sqa.predictors import TrunkConfig, UniVersa, UniVersaConfig, inference
from sqa.synthetic import speech_like

RATE = 16000


@pytest.fixture()
def alarm() -> Iterator[None]:
    """Fail instead of hanging forever (what a lost worker used to do)."""

    def expire(*_: object) -> None:
        raise TimeoutError("the run hung")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _reason(entries: list[dict], sample: str, metric: str) -> str:
    return next(e["reason"] for e in entries if e["sample_id"] == sample and e["metric"] == metric)


def test_short_files_get_no_metric_value_and_a_reason(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    system, references = tmp_path / "system", tmp_path / "reference"
    system.mkdir()
    references.mkdir()
    clean = speech_like(1.0, RATE, seed=1)
    for name, seconds in (("good", 1.0), ("tiny", 0.02)):
        samples = clean[: int(seconds * RATE)]
        save_audio(system / f"{name}.wav", samples + 0.01, RATE)
        save_audio(references / f"{name}.wav", samples, RATE)
    # A WAV whose header promises 1 s but whose data chunk stops after 94 ms.
    save_audio(system / "cut.wav", clean, RATE)
    save_audio(references / "cut.wav", clean, RATE)
    with open(system / "cut.wav", "r+b") as stream:
        stream.truncate(44 + int(0.094 * RATE) * 2)
    assert soundfile.info(str(system / "cut.wav")).frames < 0.1 * RATE
    output = tmp_path / "scores.jsonl"
    metrics = "pesq,estoi,sdr,si_snr,lsd,mcd,dnsmos_ovrl,plcmos"
    arguments = ["--dir", str(system), "--ref-dir", str(references), "--metrics", metrics]
    assert score.main([*arguments, "--output", str(output), "--no-progress"]) == 0
    rows = {row["sample_id"]: row["metrics"] for row in read_jsonl(output)}
    assert rows["tiny"] == {} and rows["cut"] == {}
    assert len(rows["good"]) == len(metrics.split(","))
    errors = read_jsonl(tmp_path / "scores.jsonl.errors.jsonl")
    for sample in ("tiny", "cut"):
        for metric in metrics.split(","):
            assert "shorter than the minimum 0.1 s" in _reason(errors, sample, metric)
    assert "onnxruntime" not in capfd.readouterr().err


def test_a_foreign_exception_becomes_a_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> float:
        raise np.exceptions.AxisError(1, 1)

    monkeypatch.setattr(perceptual, "estoi_score", broken)
    signal_ = speech_like(0.5, RATE)
    reason = MetricScorer(["estoi"]).score(signal_, RATE, signal_).errors["estoi"]
    assert reason.startswith("estoi failed on this file: ") and "AxisError" not in reason
    assert "without a message" in describe_error(RuntimeError())


def test_pesq_refuses_long_pairs_instead_of_crashing() -> None:
    noise = np.random.default_rng(0).standard_normal(130 * RATE).astype(np.float32) * 0.1
    result = MetricScorer(["pesq", "si_snr"]).score(noise, RATE, noise)
    assert math.isnan(result.values["pesq"]) and result.values["si_snr"] > 40
    assert "limited to 60 s" in result.errors["pesq"]
    with pytest.raises(TooLongAudioError):
        perceptual.pesq_score(noise, noise, sample_rate=RATE)


@pytest.mark.slow
def test_pesq_at_its_limit_does_not_crash() -> None:
    program = (
        "import numpy as np; from sqa.synthetic import speech_like;"
        "from sqa.metrics.perceptual import PESQ_MAX_SECONDS, pesq_score;"
        "x = speech_like(PESQ_MAX_SECONDS, 16000, seed=0);"
        "print(pesq_score(x + 0.05 * np.random.default_rng(1).standard_normal(x.size), x,"
        " sample_rate=16000))"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_mcd_refuses_an_alignment_beyond_its_cell_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    clean = speech_like(1.0, RATE, seed=2)
    assert perceptual.mcd_score(clean + 0.01, clean, sample_rate=RATE) > 0
    monkeypatch.setattr(perceptual, "MCD_MAX_DTW_CELLS", 50)
    result = MetricScorer(["mcd"]).score(clean + 0.01, RATE, clean)
    assert math.isnan(result.values["mcd"])
    assert "MCD alignment" in result.errors["mcd"] and "TooLongAudioError" in result.errors["mcd"]


@pytest.mark.slow
def test_distill_mos_windows_long_input_in_small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("distillmos") is None:  # importing it here would skip the shim
        pytest.skip("distillmos is not installed")
    from sqa.metrics import torch_models

    monkeypatch.setattr(torch_models, "DISTILL_MOS_CROPS_PER_BATCH", 2)
    model = torch_models.distill_mos_model()
    clip = speech_like(9.5, RATE, seed=3)  # 7.68 s crops at most 1 s apart: 3 of them
    with torch.inference_mode():
        reference = float(model(torch.from_numpy(clip)[None]).reshape(-1)[0])
    sizes: list[int] = []
    handle = model.register_forward_pre_hook(lambda _, inputs: sizes.append(inputs[0].shape[0]))
    try:
        windowed = torch_models.distill_mos_score(clip, sample_rate=RATE)
    finally:
        handle.remove()
    assert windowed == pytest.approx(reference, abs=1e-5)
    assert sizes == [2, 1]


def test_a_worker_crash_costs_one_item_never_a_hang(alarm: None) -> None:
    # The workers import only this small module, not the test module (torch), to stay quick.
    from crashing_worker import CRASHING_ITEM, crash_on_one, no_setup

    results = list(
        map_isolating_crashes(crash_on_one, list(range(8)), 2, (no_setup, ()), lambda i: -i)
    )
    expected = [item * 10 for item in range(8) if item != CRASHING_ITEM] + [-CRASHING_ITEM]
    assert sorted(results) == sorted(expected)


def test_score_turns_a_worker_crash_into_nan_with_a_reason() -> None:
    from sqa.metrics import runner

    task = runner.ScoreTask("system", "x", "x.wav", None)
    entry = runner.failed_entry(task, ["pesq", "sdr"], runner.WORKER_CRASH_REASON)
    assert all(math.isnan(value) for value in entry["metrics"].values())
    assert "died on this file" in entry["errors"]["pesq"]


def test_predict_windows_long_files_and_averages(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    trunk = TrunkConfig(num_layers=1, num_heads=2, d_model=16, ffn_dim=32, dropout=0.0)
    model = UniVersa(UniVersaConfig(front_end="mel", trunk=trunk, metrics=("mos",))).eval()
    monkeypatch.setattr(inference, "WINDOW_SECONDS", 1.0)
    waveform = speech_like(2.5, RATE, seed=4)
    lengths: list[int] = []
    original = inference._forward

    def recording(model_: object, waveforms: list, names: list, device: str) -> dict:
        lengths.extend(piece.size for piece in waveforms)
        return original(model_, waveforms, names, device)

    monkeypatch.setattr(inference, "_forward", recording)
    settings = inference.PredictionSettings(batch_seconds=2.0)
    found = inference.predict_long(model, waveform, ["mos"], settings)
    assert max(lengths) <= RATE and sum(lengths) == waveform.size
    pieces = inference.split_windows(waveform, RATE)
    with torch.no_grad():
        each = [original(model, [piece], ["mos"], "cpu")["mos"][0] for piece in pieces]
    expected = np.average(each, weights=[piece.size for piece in pieces])
    assert found["mos"] == pytest.approx(expected, abs=1e-5)


def test_predict_keeps_short_files_whole_and_windows_long_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trunk = TrunkConfig(num_layers=1, num_heads=2, d_model=16, ffn_dim=32, dropout=0.0)
    model = UniVersa(UniVersaConfig(front_end="mel", trunk=trunk, metrics=("mos",))).eval()
    monkeypatch.setattr(inference, "WINDOW_SECONDS", 1.0)
    records = []
    for name, seconds in (("short", 0.8), ("long", 3.0)):
        save_audio(tmp_path / f"{name}.wav", speech_like(seconds, RATE), RATE)
        records.append(AudioRecord(path=tmp_path / f"{name}.wav", system_id="s", sample_id=name))
    failures: list[str] = []
    rows = inference.prediction_rows(
        model, records, inference.PredictionSettings(), lambda _, why: failures.append(why)
    )
    assert [row["sample_id"] for row in rows] == ["short", "long"] and not failures
    assert all(1.0 <= row["metrics"]["mos"] <= 5.0 for row in rows)


# Loaded into every process of the run below through PYTHONPATH: in a scoring worker (never the
# parent), reading a file whose name starts with "crash" kills the process as a native fault would.
CRASHING_SITECUSTOMIZE = """
import multiprocessing, os, signal
import soundfile

_read = soundfile.read

def _read_or_die(file, *args, **kwargs):
    worker = multiprocessing.current_process().name != "MainProcess"
    if worker and os.path.basename(os.fspath(file)).startswith("crash"):
        os.kill(os.getpid(), signal.SIGSEGV)
    return _read(file, *args, **kwargs)

soundfile.read = _read_or_die
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_native_crash_costs_one_file_with_any_number_of_jobs(tmp_path: Path, jobs: str) -> None:
    estimates = tmp_path / "estimates"
    for index, name in enumerate(("a", "crash", "b")):
        save_audio(estimates / f"{name}.wav", speech_like(1.0, RATE, seed=index), RATE)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASHING_SITECUSTOMIZE)
    output = tmp_path / "scores.jsonl"
    command = [sys.executable, "-m", "sqa", "score", "--dir", str(estimates), "--metrics", "lsd"]
    command += ["--ref-dir", str(estimates)]
    command += ["--no-progress", "--jobs", jobs, "--output", str(output)]
    environment = {**os.environ, "PYTHONPATH": str(hooks)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert done.returncode == 0, done.stderr
    entries = {entry["sample_id"]: entry for entry in read_jsonl(output)}
    reasons = read_jsonl(Path(f"{output}.errors.jsonl"))
    assert [(error["sample_id"], error["metric"]) for error in reasons] == [("crash", "lsd")]
    assert "died on this file" in reasons[0]["reason"]
    assert "lsd" not in entries["crash"]["metrics"]  # score JSONL leaves failed values out
    assert all(entries[name]["metrics"]["lsd"] is not None for name in ("a", "b"))
