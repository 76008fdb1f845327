"""The catalogue of bad and odd inputs, run through every subcommand that reads audio folders.

One corpus (built once) holds, in two systems, good files next to every kind of problem a user's
folder can have; each command runs once over it. For every case and command: a person-readable
reason naming the file (never a foreign exception name such as ``AxisError``, never a traceback),
no value for invalid audio, every valid file processed, no partial output, and exit 0 because
something usable was produced. A corpus of bad files only makes every command exit non-zero and
write no output. The pool commands (``simulate``, ``make-noise``) leave bad pool files out with a
reason. An unreadable (chmod 000) file is tested in ``test_input_listings.py`` (tests run as
root, who may read it, so the OS refusal is simulated there).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile
import test_input_listings as listings

import sqa.errors
from sqa.cli import main as sqa_main
from sqa.fileio import read_jsonl, read_rows
from sqa.synthetic import speech_like

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
COMMANDS = ("score", "predict", "rank", "enhance")
# Invalid cases: file name -> words the reason must contain.
INVALID = {
    "empty.wav": "file is empty",
    "header_only.wav": "zero samples",
    "zeros.wav": "silent",
    "dc.wav": "silent",
    "nan.wav": "NaN/Inf",
    "inf.wav": "NaN/Inf",
    "short.wav": "shorter than the minimum",
    "truncated.wav": "shorter than the minimum",  # data chunk cut to 94 ms
    "garbage_header.wav": "corrupt or not an audio file",
    "text.wav": "corrupt or not an audio file",
}
VALID = [
    "good1.wav", "good2.wav", "rate8000.wav", "rate22050.wav", "rate44100.wav", "stereo.wav",
    "pcm24.wav", "float32.wav", "mp3.mp3", "ogg.ogg", "ünï cödé name.wav", "long.wav", "dup.wav",
]  # fmt: skip
ONLY_IN_A = ["rate48000.wav", "flac.flac"]  # files missing in system B
OUR_ERRORS = {name for name in dir(sqa.errors) if name.endswith("Error")}
FOREIGN_NAME = re.compile(r"\b([A-Z]\w*(?:Error|Exception))\b")


def _write_valid(folder: Path, name: str, seed: int) -> None:
    stem, suffix = os.path.splitext(name)
    if stem == "long":  # longer than predict's 20 s window; cheap to build and to score
        soundfile.write(folder / name, np.tile(speech_like(1.0, 8000, seed=seed), 25), 8000)
    elif stem.startswith("rate"):
        rate = int(stem[4:])
        soundfile.write(folder / name, speech_like(1.0, rate, seed=seed), rate)
    elif stem == "stereo":
        soundfile.write(folder / name, np.stack([speech_like(1.0, RATE, seed=seed)] * 2, 1), RATE)
    else:
        subtype = {"pcm24": "PCM_24", "float32": "FLOAT"}.get(stem)
        file_format = {".mp3": "MP3", ".ogg": "OGG"}.get(suffix)
        audio = speech_like(1.0, RATE, seed=seed)
        soundfile.write(folder / name, audio, RATE, subtype=subtype, format=file_format)


def _write_invalid(folder: Path) -> None:
    (folder / "empty.wav").write_bytes(b"")
    soundfile.write(folder / "header_only.wav", np.zeros(0), RATE)
    soundfile.write(folder / "zeros.wav", np.zeros(RATE), RATE)
    soundfile.write(folder / "dc.wav", np.full(RATE, 0.25), RATE)
    for name, bad in (("nan.wav", np.nan), ("inf.wav", np.inf)):
        audio = speech_like(1.0, RATE, seed=3)
        audio[100] = bad
        soundfile.write(folder / name, audio, RATE, subtype="FLOAT")
    soundfile.write(folder / "short.wav", speech_like(0.02, RATE, seed=4), RATE)
    soundfile.write(folder / "truncated.wav", speech_like(1.0, RATE, seed=5), RATE)
    data = (folder / "truncated.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(data[: 44 + 2 * int(0.094 * RATE)])
    (folder / "garbage_header.wav").write_bytes(b"RIFF\xff\xff\xff\xffWAVEjunk" + bytes(2000))
    (folder / "text.wav").write_text("this is not audio\n" * 50)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalogue")
    for system in ("sysA", "sysB", "sysEmpty"):
        (root / system).mkdir()
    for seed, name in enumerate([*VALID, *ONLY_IN_A]):
        for system in ("sysA", "sysB") if name not in ONLY_IN_A else ("sysA",):
            _write_valid(root / system, name, seed)
    for system in ("sysA", "sysB"):
        _write_invalid(root / system)
        soundfile.write(root / system / "dup.flac", speech_like(1.0, RATE, seed=40), RATE)
        (root / system / "loop.wav").symlink_to("loop.wav")
    (root / "_reference").mkdir()
    for path in (root / "sysA").iterdir():
        stem = os.path.splitext(path.name)[0]
        soundfile.write(root / "_reference" / f"{stem}.wav", speech_like(1.0, RATE, seed=9), RATE)
    return root


def _command(name: str, root: Path, output: Path) -> list[str]:
    """The listing tests' command line, with the shipped predictor-default."""
    return listings.audio_command(name, root, output, Path("predictor-default"))


def _values(name: str, output: Path) -> dict[tuple[str, str], bool]:
    """(system, file stem) -> whether the command produced a value for it."""
    if name == "enhance":
        return {(path.parent.name, path.stem): True for path in (output / "enhanced").rglob("*.*")}
    if name == "rank":
        rows = read_rows(output / "per_file.csv")
        return {
            (row["system_id"], row["sample_id"]): row["score"] not in ("", None) for row in rows
        }
    rows = read_jsonl(output / {"score": "s.jsonl", "predict": "p.jsonl"}[name])
    return {(row["system_id"], row["sample_id"]): bool(row["metrics"]) for row in rows}


@pytest.fixture(scope="module")
def runs(catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Each command run once over the catalogue: exit code, stderr + warnings, values, output."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SQA_CHECKPOINT_DIR", str(ROOT / "checkpoints"))
        return {name: _run(name, catalogue, tmp_path_factory.mktemp(name)) for name in COMMANDS}


def _capture(argv: list[str]) -> tuple[int, str]:
    """Run ``sqa ARGV`` here; returns the exit code and stderr plus every warning's message."""
    stderr = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(stderr):
        warnings.simplefilter("always")
        code = sqa_main(argv)
    return code, stderr.getvalue() + "\n".join(str(warning.message) for warning in caught)


def _run(name: str, root: Path, output: Path) -> dict:
    code, text = _capture(_command(name, root, output))
    if name == "score" and (output / "s.jsonl.errors.jsonl").exists():
        for row in read_jsonl(output / "s.jsonl.errors.jsonl"):
            text += f"\n{row['system_id']}/{row['sample_id']}: {row['reason']}"
    return {"code": code, "text": text, "output": output}


@pytest.mark.parametrize("name", COMMANDS)
def test_the_run_succeeds_without_traceback_or_partial_files(runs: dict, name: str) -> None:
    run = runs[name]
    assert run["code"] == 0, run["text"][-2000:]
    assert "Traceback" not in run["text"]
    left = [path.name for path in run["output"].rglob("*")]
    assert not [item for item in left if item.endswith((".partial", ".tmp"))]


@pytest.mark.parametrize("case", sorted(INVALID))
@pytest.mark.parametrize("name", COMMANDS)
def test_invalid_audio_gets_a_reason_and_no_value(runs: dict, name: str, case: str) -> None:
    run, stem = runs[name], os.path.splitext(case)[0]
    values = _values(name, run["output"])
    assert not values.get(("sysA", stem)) and not values.get(("sysB", stem))
    # One reason per line, or per "; "-separated item (rank lists its skipped utterances so).
    items = re.split(r"\n|; (?=sys)", run["text"])
    lines = [line for line in items if f"/{case}" in line or f"/{stem}:" in line]
    assert lines and all(INVALID[case] in line for line in lines), run["text"][-3000:]
    foreign = {word for line in lines for word in FOREIGN_NAME.findall(line)} - OUR_ERRORS
    assert not foreign, lines


@pytest.mark.parametrize("case", VALID)
@pytest.mark.parametrize("name", COMMANDS)
def test_valid_audio_is_processed(runs: dict, name: str, case: str) -> None:
    values = _values(name, runs[name]["output"])
    stem = os.path.splitext(case)[0]
    assert values.get(("sysA", stem)) and values.get(("sysB", stem))


@pytest.mark.parametrize("name", COMMANDS)
def test_folder_problems_are_named(runs: dict, name: str) -> None:
    text, values = runs[name]["text"], _values(name, runs[name]["output"])
    assert "loop.wav: symbolic link loop" in text
    assert "dup (dup.wav, dup.flac)" in text  # one file per name, and which one
    assert "without audio files, not taken as systems: sysEmpty" in text
    if name == "rank":  # a ranking compares the utterances every system has
        assert "flac (missing in sysB)" in text and "rate48000 (missing in sysB)" in text
        assert ("sysA", "flac") not in values
    else:
        assert values.get(("sysA", "flac")) and values.get(("sysA", "rate48000"))


@pytest.mark.parametrize("name", COMMANDS)
def test_nothing_usable_exits_non_zero_and_writes_nothing(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SQA_CHECKPOINT_DIR", str(ROOT / "checkpoints"))
    root = tmp_path / "bad"
    for system in ("sysA", "sysB"):
        (root / system).mkdir(parents=True)
        _write_invalid(root / system)
    (root / "_reference").mkdir()
    for case in INVALID:
        stem = os.path.splitext(case)[0]
        soundfile.write(root / "_reference" / f"{stem}.wav", speech_like(1.0, RATE, seed=9), RATE)
    output = tmp_path / "out"
    output.mkdir()
    run = _run(name, root, output)
    assert run["code"] == 1 and "Traceback" not in run["text"]  # 1: nothing usable
    tables = [p for p in output.rglob("*") if p.suffix in (".jsonl", ".csv", ".wav", ".json")]
    assert [p.name for p in tables if not p.name.endswith(".errors.jsonl")] == []


POOL_COMMANDS = {
    "simulate": lambda root, output: ["simulate", "--speech", str(root / "sysA"), "--noise",
                                      str(root / "sysB"), "--count", "6", "--duration", "1",
                                      "--output", str(output / "sim")],
    "make-noise": lambda root, output: ["make-noise", "--kinds", "babble", "--babble-speech",
                                        str(root / "sysA"), "--count", "2", "--duration", "1",
                                        "--output", str(output / "noise")],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(POOL_COMMANDS))
def test_pool_commands_leave_out_bad_pool_files_with_a_reason(
    catalogue: Path, tmp_path: Path, name: str
) -> None:
    code, text = _capture(POOL_COMMANDS[name](catalogue, tmp_path))
    assert code == 0 and "Traceback" not in text, text[-2000:]
    for case, words in INVALID.items():
        lines = [line for line in text.splitlines() if f"sysA/{case}" in line]
        assert lines and all(words in line for line in lines), (case, text[-2000:])
    written = [path for path in tmp_path.rglob("*.wav")]
    assert written and all(soundfile.info(path).frames > 0 for path in written)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", ["score", "predict", "enhance"])
def test_a_ten_minute_file_is_processed_within_bounded_memory(tmp_path: Path, name: str) -> None:
    root = tmp_path / "long"
    for system in ("sysA", "_reference"):
        (root / system).mkdir(parents=True)
        audio = np.tile(speech_like(1.0, RATE, seed=1), 600)
        soundfile.write(root / system / "long.wav", audio, RATE)
    output = tmp_path / "out"
    output.mkdir()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SQA_CHECKPOINT_DIR", str(ROOT / "checkpoints"))
        argv = _command(name, root, output)
        if name == "score":  # PESQ refuses over 60 s with a reason; the others give values
            argv[argv.index("si_snr")] = "si_snr,lsd,pesq,dnsmos_ovrl"
        code, text = _capture(argv)
    assert code == 0 and "Traceback" not in text, text[-2000:]
    assert _values(name, output).get(("sysA", "long"))
