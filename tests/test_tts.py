"""`sqa synthesize`: seeded texts, voice discovery, resumable synthesis (offline, fast)."""

from __future__ import annotations

import json
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from se_finetune import tts_command
from se_finetune.tts import (
    Voice,
    espeak_voices,
    festival_voices,
    parse_espeak_variants,
    parse_espeak_voices,
    parse_flite_voices,
    synthesize,
)
from se_finetune.tts_text import make_text, spoken_words
from sqa.audio import load_audio
from sqa.cli import main as sqa_main
from sqa.errors import SilentAudioError, SqaError
from sqa.fileio import read_jsonl

ESPEAK_VOICES = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  af              --/M      Afrikaans          gmw/af
 5  de              --/M      German             gmw/de
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  yue             --/M      Chinese_(Cantonese) sit/yue              (zh-yue 5)(zh 8)
 5  yue             --/M      Chinese_(Cantonese,_latin_as_Jyutping) sit/yue-Latn-jyutping (zh 8)
"""
ESPEAK_VARIANTS = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  variant         --/M      Mr_Serious         !v/Mr serious
 5  variant         --/M      Storm              !v/Storm             (en-us 5)
 5  variant         --/F      female2            !v/f2
 5  variant         --/F      female4            !v/f4
 5  variant         --/M      male1              !v/m1
 5  variant         --/M      male3              !v/m3
"""
FLITE_VOICES = "Voices available: kal awb_time kal16 awb rms slt \n"
RATE = 16000


def test_texts_are_seeded_and_their_length_follows_the_budget() -> None:
    for language in ("en-us", "de", "cs", "ar", "cmn"):
        first = [make_text(language, random.Random(7), words) for words in (4, 9, 15)]
        again = [make_text(language, random.Random(7), words) for words in (4, 9, 15)]
        assert first == again
        assert make_text(language, random.Random(8), 9) != first[1]
        for words, text in zip((4, 9, 15), first, strict=True):
            # At least the budget, and at most one more sentence/phrase than needed.
            assert words <= spoken_words(text) <= words + 25
    assert "?" in " ".join(make_text("en", random.Random(s), 20) for s in range(20))


def test_other_languages_use_phrases_and_digits() -> None:
    arabic = make_text("ar", random.Random(1), 10)
    assert set(arabic) <= set("0123456789 :.")
    russian = make_text("ru", random.Random(1), 10, digits=False)
    assert not any(character.isdigit() for character in russian)
    assert any("а" <= character <= "я" for character in russian)
    assert make_text("pt-br", random.Random(2), 30) != make_text("pt-br", random.Random(3), 30)
    with pytest.raises(SqaError, match="digit-free"):
        make_text("xx", random.Random(1), 5, digits=False)


def test_discovery_parses_engine_listings() -> None:
    assert parse_espeak_voices(ESPEAK_VOICES) == ["af", "de", "en-gb", "en-us", "yue"]
    # "!v/Mr serious" cannot follow a "+" in a voice name.
    assert parse_espeak_variants(ESPEAK_VARIANTS) == ["Storm", "f2", "f4", "m1", "m3"]
    assert parse_flite_voices(FLITE_VOICES) == ["kal", "awb_time", "kal16", "awb", "rms", "slt"]
    assert parse_flite_voices("no voices here") == []


def test_curated_espeak_voices_rotate_variants() -> None:
    languages = parse_espeak_voices(ESPEAK_VOICES)
    voices = espeak_voices(languages, parse_espeak_variants(ESPEAK_VARIANTS))
    names = [voice.name for voice in voices]
    assert "af" not in names and "yue" not in names  # not in the curated list
    assert len([n for n in names if n.startswith("en-us")]) == 5  # English: two pairs
    assert len([n for n in names if n.startswith("de")]) == 3
    assert {n.partition("+")[2] for n in names} <= {"", "m1", "m3", "f2", "f4"}
    every = espeak_voices(languages, parse_espeak_variants(ESPEAK_VARIANTS), every_language=True)
    assert {"af", "yue"} <= {voice.language for voice in every}
    assert [v.name for v in espeak_voices(["de"], [])] == ["de"]


def test_festival_voice_folders(tmp_path: Path) -> None:
    for language, name in (("english", "kal_diphone"), ("russian", "msu_ru_nsh_clunits")):
        (tmp_path / language / name / "festvox").mkdir(parents=True)
        (tmp_path / language / name / "festvox" / f"{name}.scm").write_text("")
    (tmp_path / "finnish" / "suopuhe.common").mkdir(parents=True)
    voices = {voice.name: voice for voice in festival_voices(tmp_path)}
    assert set(voices) == {"kal_diphone", "msu_ru_nsh_clunits"}
    assert voices["kal_diphone"].language == "en" and voices["kal_diphone"].digits
    russian = voices["msu_ru_nsh_clunits"]
    assert (russian.language, russian.encoding, russian.digits) == ("ru", "utf-8", False)


def test_plan_spreads_files_evenly_and_is_seeded() -> None:
    voices = [Voice("espeak-ng", f"v{i}", "en") for i in range(7)]
    items = tts_command.plan(voices, 30, seed=3)
    counts = [sum(item.voice == voice for item in items) for voice in voices]
    assert max(counts) - min(counts) <= 1
    assert items == tts_command.plan(voices, 30, seed=3)
    assert items != tts_command.plan(voices, 30, seed=4)
    assert len({item.utterance_id for item in items}) == 30


def _fake_engine(calls: list[str]) -> Callable[..., np.ndarray]:
    """A stand-in for the engines: a tone whose length grows with the text."""

    def speak(voice: Voice, text: str, sample_rate: int, *, timeout: float) -> np.ndarray:
        calls.append(text)
        seconds = min(5.0, 0.5 + 0.3 * spoken_words(text))
        time_axis = np.arange(int(seconds * sample_rate)) / sample_rate
        return (0.5 * np.sin(2 * np.pi * 220 * time_axis)).astype(np.float32)

    return speak


def test_resume_keeps_complete_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    voices = [Voice("espeak-ng", "en-us", "en-us"), Voice("flite", "slt", "en")]
    monkeypatch.setattr(tts_command, "engine_voices", lambda engine, *_: (voices, {}))
    monkeypatch.setattr(tts_command, "synthesize_voice", _fake_engine(calls))
    arguments = ["--output", str(tmp_path), "--count", "4", "--engines", "flite"]
    assert tts_command.main(arguments) == 0
    rows = read_jsonl(tmp_path / "utterances.jsonl")
    assert [row["speaker_id"] for row in rows].count("flite:slt") == 2
    assert all(2.0 <= row["duration"] <= 6.0 and row["synthetic"] for row in rows)
    first_calls = len(calls)
    (tmp_path / rows[1]["file"]).unlink()  # an incomplete corpus: one file lost
    assert tts_command.main(arguments) == 0
    # Only the probes (one per voice) and the one missing file were synthesised again.
    assert len(calls) - first_calls == len(voices) + 1
    assert read_jsonl(tmp_path / "utterances.jsonl") == rows
    assert tts_command.main([*arguments, "--seed", "1"]) == 0  # another seed: new texts
    assert read_jsonl(tmp_path / "utterances.jsonl")[0]["text"] != rows[0]["text"]


def test_no_engine_on_path_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert sqa_main(["synthesize", "--output", str(tmp_path / "out"), "--count", "2"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "nothing could be synthesised" in error and "espeak-ng not found on PATH" in error
    assert not (tmp_path / "out").exists()


def test_silent_engine_output_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in espeak-ng that writes one second of digital silence where -w points.
    fake = tmp_path / "espeak-ng"
    fake.write_text(
        f"#!{sys.executable}\nimport sys, numpy, soundfile\n"
        "soundfile.write(sys.argv[sys.argv.index('-w') + 1], numpy.zeros(16000), 16000)\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SilentAudioError):
        synthesize(Voice("espeak-ng", "en-us", "en-us"), "-v --help; rm -rf /", RATE)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_real_espeak_synthesis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["--output", str(tmp_path), "--count", "2", "--engines", "espeak-ng"]
    assert tts_command.main([*arguments, "--voices", "en-us,espeak-ng:de+f2"]) == 0
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert summary["files"] == 2 and summary["languages"] == 2
    for row in read_jsonl(tmp_path / "utterances.jsonl"):
        samples, rate = load_audio(tmp_path / row["file"])
        assert rate == RATE and 2.0 <= samples.shape[0] / rate <= 6.0
        assert row["engine"] == "espeak-ng" and row["speaker_id"] == f"espeak-ng:{row['voice']}"
