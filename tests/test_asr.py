"""Offline word accuracy: text normalisation, WER, transcript listings, PocketSphinx teachers."""

from __future__ import annotations

import importlib.util
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sqa.data.transcripts import read_transcripts, transcript_for
from sqa.metrics import asr
from sqa.metrics.asr import normalise_words, word_error_rate
from sqa.metrics.scorer import MetricScorer

SENTENCE = "the quick brown fox jumps over the lazy dog"
HAS_POCKETSPHINX = importlib.util.find_spec("pocketsphinx") is not None
TTS = shutil.which("flite") or shutil.which("espeak-ng")
needs_asr = pytest.mark.skipif(not HAS_POCKETSPHINX, reason="pocketsphinx is not installed")
needs_tts = pytest.mark.skipif(TTS is None, reason="no English TTS (flite or espeak-ng)")


def test_normalisation_and_word_error_rate() -> None:
    assert normalise_words("Don't, STOP! re-enter") == ["dont", "stop", "reenter"]
    assert word_error_rate("The cat sat", "the cat sat down.") == pytest.approx(0.25)
    assert word_error_rate("a b c d e", "a") == pytest.approx(4.0)  # insertions: WAcc < 0
    with pytest.raises(ValueError, match="no word"):
        word_error_rate("hello", " ,. ")


def test_transcript_listings(tmp_path: Path) -> None:
    kaldi = tmp_path / "text"
    kaldi.write_text("utt1 Hello world\nutt2\n", encoding="utf-8")
    transcripts = read_transcripts(kaldi)
    assert transcripts == {"utt1": "Hello world", "utt2": ""}
    assert transcript_for(transcripts, "utt1", "sys_utt1") == "Hello world"
    assert transcript_for(transcripts, None, "utt3") is None
    data = tmp_path / "data.jsonl"
    data.write_text(
        '{"system_id": "a", "sample_id": "a1", "utterance_id": "u1", "text": "one"}\n'
        '{"system_id": "b", "sample_id": "b1", "utterance_id": "u1", "text": "one"}\n',
        encoding="utf-8",
    )
    assert transcript_for(read_transcripts(data), "u1", "b1") == "one"
    data.write_text(
        '{"sample_id": "a1", "utterance_id": "u1", "text": "one"}\n'
        '{"sample_id": "b1", "utterance_id": "u1", "text": "two"}\n',
        encoding="utf-8",
    )
    with pytest.raises(Exception, match="two different transcripts"):
        read_transcripts(data)


def test_missing_pocketsphinx_gives_nan_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # import fails like an absent package
    asr._decoder.cache_clear()
    try:
        signal = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
        result = MetricScorer(["wacc", "wer"]).score(signal, 16000, signal)
    finally:
        asr._decoder.cache_clear()
    assert math.isnan(result.values["wacc"]) and math.isnan(result.values["wer"])
    assert 'pip install "sqa-suite[asr]"' in result.errors["wacc"]


def test_text_replaces_the_reference_requirement() -> None:
    scorer = MetricScorer(["wacc"])
    silent = np.zeros(1600, dtype=np.float32)
    result = scorer.score(silent, 16000, None)
    assert result.errors["wacc"] == "no reference for this file"
    if HAS_POCKETSPHINX:  # with a transcript the file is scored (or fails on its own merits)
        with_text = scorer.score(silent, 16000, None, text=SENTENCE)
        assert with_text.errors.get("wacc") != "no reference for this file"


def _synthesise(folder: Path) -> tuple[np.ndarray, int]:
    from sqa.audio import load_audio

    path = folder / "clean.wav"
    if Path(TTS).name == "flite":
        command = [TTS, "-t", SENTENCE, "-o", str(path)]
    else:
        command = [TTS, "-w", str(path), SENTENCE]
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    return load_audio(path, min_duration=0.0, validate=False)


@needs_asr
@needs_tts
def test_wacc_of_a_synthetic_utterance(tmp_path: Path) -> None:
    clean, rate = _synthesise(tmp_path)
    scorer = MetricScorer(["wacc", "wer"])
    itself = scorer.score(clean, rate, clean)
    assert itself.values["wacc"] == pytest.approx(1.0)
    assert itself.values["wer"] == pytest.approx(0.0)
    noise = np.random.default_rng(0).standard_normal(clean.size) * 4.0 * np.std(clean)
    noisy = ((clean + noise) / np.max(np.abs(clean + noise)) * 0.9).astype(np.float32)
    degraded = scorer.score(noisy, rate, clean)
    assert degraded.values["wacc"] < 1.0
    with_text = scorer.score(clean, rate, None, text=SENTENCE)
    assert with_text.values["wacc"] <= 1.0 and math.isfinite(with_text.values["wacc"])


@needs_asr
@needs_tts
def test_score_command_records_the_transcript_source(tmp_path: Path) -> None:
    import soundfile

    from sqa.commands.score import main
    from sqa.metrics.outputs import read_scores

    clean, rate = _synthesise(tmp_path)
    system = tmp_path / "systems" / "tts"
    system.mkdir(parents=True)
    soundfile.write(system / "utt1.wav", clean, rate)
    soundfile.write(system / "utt2.wav", clean, rate)
    text = tmp_path / "text"
    text.write_text(f"utt1 {SENTENCE.upper()}.\n", encoding="utf-8")
    output = tmp_path / "scores.csv"
    arguments = ["--systems", str(system), "--metrics", "wacc", "--text", str(text)]
    assert main([*arguments, "--ref-dir", str(system), "-o", str(output), "--no-progress"]) == 0
    rows = {row["sample_id"]: row for row in read_scores(output)}
    assert rows["utt1"]["wacc_source"] == "text"
    assert rows["utt2"]["wacc_source"] == "reference_audio"
    assert rows["utt2"]["metrics"]["wacc"] == pytest.approx(1.0)
