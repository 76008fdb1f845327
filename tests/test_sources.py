"""One vocabulary for audio inputs: every audio-reading subcommand takes the same flags, and every
input form names the same files."""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import pytest

from sqa.cli import _resolve, subcommands
from sqa.commands.sources import add_run_arguments, add_source_arguments, records_from_arguments
from sqa.data import write_kaldi_dir, write_track2_jsonl
from sqa.data.folders import list_audio
from sqa.data.records import AudioRecord
from sqa.synthetic import write_system_folders

AUDIO_COMMANDS = ("score", "predict", "rank", "enhance")  # one set of audio: the source flags
POOL_COMMANDS = {  # pools of speech/noise/RIRs to mix from: pool_files (folder, *.scp, listing)
    "simulate": "--speech",
    "simulate-systems": "--speech",
    "make-noise": "--babble-speech",
}
LISTING_COMMANDS = {"train-predictor": "--train", "train-ranker": "--train"}  # labelled listings
NO_AUDIO_FLAGS = {  # tables, zips, checkpoints or a config (finetune: pools as config keys)
    "pairs",
    "evaluate",
    "agreement",
    "track2",
    "checkpoint",
    "demo",
    "synthesize",
    "finetune",
    "challenge-score",  # score tables
    "import",  # official checkpoints
    "export",  # checkpoints -> ONNX graphs
    "report",  # a run folder (log.jsonl, config.yaml)
}


def _help(name: str) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.suppress(SystemExit):
        _resolve(name)(["--help"])
    return " ".join(printed.getvalue().split())


def test_every_subcommand_is_classified_by_the_audio_it_reads() -> None:
    # A new subcommand must say which input vocabulary it takes before this test passes.
    classified = {*AUDIO_COMMANDS, *POOL_COMMANDS, *LISTING_COMMANDS, *NO_AUDIO_FLAGS}
    assert set(subcommands()) == classified
    for name, flag in POOL_COMMANDS.items():
        text = _help(name)
        assert flag in text and "*.scp" in text, f"sqa {name} {flag}"
    for name, flag in LISTING_COMMANDS.items():
        text = _help(name)
        assert all(form in text for form in (flag, "data.jsonl", "Kaldi dir", "CSV")), name


SOURCE_FLAGS = ("--dir", "--systems", "--root", "--scp", "--data")
RUN_FLAGS = ("--force", "--no-progress")


@pytest.mark.parametrize("name", AUDIO_COMMANDS)
def test_every_audio_command_takes_the_same_input_and_run_flags(name: str) -> None:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.suppress(SystemExit):
        _resolve(name)(["--help"])
    text = printed.getvalue()
    missing = [flag for flag in (*SOURCE_FLAGS, *RUN_FLAGS) if f"{flag} " not in text]
    assert not missing, f"sqa {name} lacks {missing}"
    assert "--quiet" not in text  # the deprecated spelling works but is not advertised


def _parse(*arguments: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_source_arguments(parser)
    add_run_arguments(parser)
    return parser.parse_args(list(arguments))


def _keys(records: list) -> list[tuple[str, str, str]]:
    return sorted((r.system_id, r.sample_id, str(Path(r.path).resolve())) for r in records)


def test_every_input_form_names_the_same_files(tmp_path: Path) -> None:
    write_system_folders(tmp_path / "root", {"a": 20.0, "b": 5.0}, 3, duration=0.2)
    (tmp_path / "root" / "a" / ".hidden.wav").write_bytes(b"")  # hidden files never count
    expected = _keys(records_from_arguments(_parse("--root", str(tmp_path / "root"))))
    assert len(expected) == 6 and {key[0] for key in expected} == {"a", "b"}  # no _reference
    records = records_from_arguments(_parse("--root", str(tmp_path / "root")))
    write_kaldi_dir(tmp_path / "kaldi", records)
    write_track2_jsonl(tmp_path / "data.jsonl", records)
    forms = {
        "--dir root": _parse("--dir", str(tmp_path / "root")),
        "--systems a b": _parse("--systems", str(tmp_path / "root/a"), str(tmp_path / "root/b")),
        "--systems root": _parse("--systems", str(tmp_path / "root")),
        "--scp": _parse("--scp", str(tmp_path / "kaldi" / "wav.scp")),
        "--data jsonl": _parse("--data", str(tmp_path / "data.jsonl")),
        "--data kaldi": _parse("--data", str(tmp_path / "kaldi")),
        "--root listing": _parse("--root", str(tmp_path / "data.jsonl")),
    }
    for form, arguments in forms.items():
        assert _keys(records_from_arguments(arguments)) == expected, form
    one = records_from_arguments(_parse("--dir", str(tmp_path / "root" / "a")))
    assert {r.system_id for r in one} == {"a"} and len(one) == 3


def test_old_spellings_still_work_with_a_warning() -> None:
    with pytest.warns(FutureWarning, match="--quiet is deprecated; use --no-progress"):
        arguments = _parse("--dir", ".", "--quiet")
    assert arguments.no_progress is True


def test_list_audio_is_the_one_lister(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.wav", "a.FLAC", "notes.txt", ".hidden.wav", "sub/c.wav"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_audio(tmp_path)] == ["a.FLAC", "b.wav"]
    assert [p.name for p in list_audio(tmp_path, recursive=True)] == ["a.FLAC", "b.wav", "c.wav"]
    held_out = list_audio(tmp_path, recursive=True, every=2, holdout=True)
    assert [p.name for p in held_out] == ["a.FLAC", "c.wav"]


def test_a_pool_is_named_like_any_other_audio_input(tmp_path: Path) -> None:
    from sqa.errors import DataFormatError
    from sqa.simulation.files import pool_files

    write_system_folders(tmp_path / "root", {"a": 10.0}, 4, duration=0.3)
    folder = tmp_path / "root" / "a"
    expected = [path.resolve() for path in list_audio(folder)]
    scp = tmp_path / "pool.scp"
    scp.write_text("".join(f"u{i} {path}\n" for i, path in enumerate(expected)))
    records = [AudioRecord(p.stem, "a", str(p), utterance_id=p.stem) for p in expected]
    write_track2_jsonl(tmp_path / "data.jsonl", records)
    for form in (folder, scp, tmp_path / "data.jsonl"):
        assert [path.resolve() for path in pool_files(form)] == expected, form
    assert pool_files(None) == [] and pool_files("") == []
    assert pool_files(scp, every=2, holdout=True) == [expected[0], expected[2]]
    scp.write_text("u0 /nonexistent/a.wav\n")
    with pytest.raises(DataFormatError, match="not audio files on disk"):
        pool_files(scp)
