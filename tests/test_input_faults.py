"""Awkward input listings (repeated stems, dead links, unreadable files, blanks in names) and
faults while writing (full disk, read-only or removed output folder, Ctrl-C, SIGTERM).

The contract: a warning or a per-file reason that names the file, good files still processed, one
line on stderr for an error (never a traceback), no temporary or half-written output, and for
``sqa score`` a journal that ``--resume`` turns into exactly the uninterrupted output.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import soundfile

from sqa.audio import load_audio
from sqa.cli import main as sqa_main
from sqa.data.kaldi import read_kaldi_dir, read_scp, write_kaldi_dir, write_scp
from sqa.data.records import AudioRecord
from sqa.errors import DataFormatError, UnreadableAudioError
from sqa.fileio import read_jsonl, read_rows
from sqa.metrics import runner
from sqa.synthetic import write_labelled_clips, write_system_folders

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = {"sysA": 10.0, "sysB": 20.0}
SPACED = "with space"


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from sqa.checkpoint import save_checkpoint
    from sqa.predictors import MODEL_KIND, TrunkConfig, UniVersa, UniVersaConfig

    torch.manual_seed(0)
    trunk = TrunkConfig(num_layers=1, num_heads=2, d_model=16, ffn_dim=32, dropout=0.0)
    model = UniVersa(UniVersaConfig(front_end="mel", trunk=trunk, metrics=("mos",))).eval()
    folder = tmp_path_factory.mktemp("model")
    return save_checkpoint(folder / "tiny.pt", model, model.config, kind=MODEL_KIND)


def _corpus(root: Path, utterances: int = 2) -> Path:
    """Two systems (plus ``_reference``) with ``utt000.wav`` + ``utt000.flac`` in ``sysA`` and a
    name with a blank in both systems."""
    write_system_folders(
        root, SYSTEMS, [*(f"utt{i:03d}" for i in range(utterances)), SPACED], duration=0.5
    )
    samples, rate = soundfile.read(root / "sysA" / "utt000.wav")
    soundfile.write(root / "sysA" / "utt000.flac", samples[::-1], rate)
    return root


def _command(name: str, root: Path, output: Path, predictor: Path) -> list[str]:
    """Each audio-reading command on the folder root, writing under ``output``."""
    source = ["--root", str(root), "--no-progress"]
    if name == "score":
        reference = ["--ref-dir", str(root / "_reference")]
        return ["score", *source, *reference, "--metrics", "si_snr", "-o", str(output / "s.jsonl")]
    if name == "predict":
        return [
            "predict",
            *source,
            "--checkpoint",
            str(predictor),
            "--output",
            str(output / "p.jsonl"),
        ]
    if name == "rank":
        rows = ["--per-file", str(output / "per_file.csv")]
        return [
            "rank",
            *source,
            "--ranker",
            "ranker-default",
            "--output",
            str(output / "r.csv"),
            *rows,
        ]
    return ["enhance", *source, "--model", "restorer-default", "--output", str(output / "enhanced")]


def _written_keys(name: str, output: Path) -> list[tuple[str, str]]:
    if name == "enhance":
        files = sorted((output / "enhanced").rglob("*.*"))
        return [(path.parent.name, path.name) for path in files]
    table = {"score": "s.jsonl", "predict": "p.jsonl", "rank": "per_file.csv"}[name]
    return [(row["system_id"], row["sample_id"]) for row in read_rows(output / table)]


@pytest.fixture
def shipped_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQA_CHECKPOINT_DIR", str(ROOT / "checkpoints"))


@pytest.mark.parametrize("name", ["score", "predict", "rank", "enhance"])
def test_repeated_stems_warn_once_and_keep_one_file_per_key(
    tmp_path: Path, name: str, predictor: Path, shipped_models: None
) -> None:
    root = _corpus(tmp_path / "corpus")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sqa_main(_command(name, root, tmp_path / "out", predictor)) == 0
    repeated = [str(w.message) for w in caught if "utt000.flac" in str(w.message)]
    assert len(repeated) == 1 and "utt000.wav" in repeated[0]
    keys = _written_keys(name, tmp_path / "out")
    assert len(keys) == len(set(keys)) == 6  # 2 systems x (utt000, utt001, "with space")
    if name == "enhance":  # the .wav was used, and a blank is fine in a file name
        assert ("sysA", "utt000.wav") in keys and ("sysA", f"{SPACED}.wav") in keys


def _dead_links(folder: Path) -> None:
    (folder / "loop.wav").symlink_to("loop.wav")
    (folder / "gone.wav").symlink_to("no_such_target.wav")


@pytest.mark.parametrize("name", ["score", "predict"])
def test_dead_links_are_named_in_a_warning_and_the_rest_is_processed(
    tmp_path: Path, name: str, predictor: Path
) -> None:
    root = _corpus(tmp_path / "corpus")
    _dead_links(root / "sysB")
    with pytest.warns(UserWarning) as caught:
        assert sqa_main(_command(name, root, tmp_path / "out", predictor)) == 0
    messages = " ".join(str(w.message) for w in caught)
    assert "loop.wav: symbolic link loop" in messages
    assert "gone.wav: broken symbolic link: its target no_such_target.wav" in messages
    assert len(_written_keys(name, tmp_path / "out")) == 6


def test_a_dead_link_given_in_a_listing_gets_a_reason(tmp_path: Path) -> None:
    _dead_links(tmp_path)
    with pytest.raises(UnreadableAudioError, match="symbolic link loop"):
        load_audio(tmp_path / "loop.wav")
    with pytest.raises(UnreadableAudioError, match="broken symbolic link"):
        load_audio(tmp_path / "gone.wav")


def _deny_reading(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """What the OS says for a chmod 000 file (tests run as root, who may read anything)."""
    real_open = builtins.open

    def guarded_open(file: object, *arguments: object, **options: object) -> object:
        if isinstance(file, (str, os.PathLike)) and Path(file).resolve() == denied.resolve():
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, *arguments, **options)

    monkeypatch.setattr(builtins, "open", guarded_open)


def test_an_unreadable_file_is_reported_as_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _corpus(tmp_path / "corpus")
    denied = root / "sysB" / "utt001.wav"
    _deny_reading(monkeypatch, denied)
    with pytest.raises(UnreadableAudioError, match="permission denied") as caught:
        load_audio(denied)
    assert "corrupt" not in str(caught.value)
    assert sqa_main(_command("score", root, tmp_path / "out", Path())) == 0
    reasons = read_jsonl(tmp_path / "out" / "s.jsonl.errors.jsonl")
    assert [row["sample_id"] for row in reasons] == ["utt001"]
    assert "permission denied" in reasons[0]["reason"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file")
def test_a_chmod_000_file_is_reported_as_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "locked.wav"
    soundfile.write(path, [0.1, -0.1] * 1000, 16000)
    path.chmod(0)
    with pytest.raises(UnreadableAudioError, match="permission denied"):
        load_audio(path)


def test_kaldi_output_refuses_blank_ids_before_any_scoring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _corpus(tmp_path / "corpus")
    monkeypatch.setattr(runner, "score_task", _never_called)
    command = _command("score", root, tmp_path / "out", Path())
    assert sqa_main([*command[:-1], str(tmp_path / "out" / "kaldi")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "'sysA-with space'" in error and "Kaldi ids" in error
    assert not (tmp_path / "out").exists()  # no journal, no half-written Kaldi dir


def test_predict_scp_dir_refuses_blank_ids_before_predicting(
    tmp_path: Path, predictor: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _corpus(tmp_path / "corpus")
    command = _command("predict", root, tmp_path / "out", predictor)
    assert sqa_main([*command, "--scp-dir", str(tmp_path / "out" / "scp")]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "'sysA-with space'" in error and "--scp-dir" in error
    assert not (tmp_path / "out").exists()


def _never_called(task: runner.ScoreTask) -> dict:
    raise AssertionError("scored although the output cannot hold the result")


def test_scp_lines_take_blanks_in_values_but_not_in_ids(tmp_path: Path) -> None:
    write_scp(tmp_path / "x.scp", {"a": "/data/my files/a b.wav", "b": "1.5"})
    assert read_scp(tmp_path / "x.scp") == {"a": "/data/my files/a b.wav", "b": "1.5"}
    for bad in ({"a b": "1"}, {"": "1"}, {"a": "two\nlines"}, {"a": " lead"}):
        with pytest.raises(DataFormatError):
            write_scp(tmp_path / "y.scp", bad)
    assert not (tmp_path / "y.scp").exists()
    folder = tmp_path / "my audio"
    folder.mkdir()
    soundfile.write(folder / "a b.wav", [0.1, -0.1] * 800, 16000)
    records = [AudioRecord("utt1", "sys", str(folder / "a b.wav"))]
    write_kaldi_dir(tmp_path / "kaldi", records)
    assert read_kaldi_dir(tmp_path / "kaldi")[0].path == str(folder / "a b.wav")


# ---- faults while writing ------------------------------------------------------------------


def _full_disk(monkeypatch: pytest.MonkeyPatch, fails: Callable[[str], bool]) -> None:
    """``fsync`` of the files chosen by path fails with ENOSPC, as on a full disk."""
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        if fails(os.readlink(f"/proc/self/fd/{descriptor}")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)


def _read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Opening a file for writing, or making a folder, below ``folder`` fails with EROFS."""
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
    base = str(folder.resolve())

    def refuse(path: object) -> None:
        if os.path.abspath(os.fspath(path)).startswith(base):  # type: ignore[arg-type]
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))  # type: ignore[arg-type]

    def guarded_open(
        file: object, mode: str = "r", *arguments: object, **options: object
    ) -> object:
        if isinstance(file, (str, os.PathLike)) and set(mode) & set("wax+"):
            refuse(file)
        return real_open(file, mode, *arguments, **options)

    def guarded_os_open(path: object, flags: int, *arguments: object, **options: object) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *arguments, **options)

    def guarded_mkdir(path: object, *arguments: object, **options: object) -> None:
        if not os.path.exists(os.fspath(path)):  # type: ignore[arg-type]
            refuse(path)
        real_mkdir(path, *arguments, **options)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)


def _train_command(tmp_path: Path) -> list[str]:
    write_labelled_clips(tmp_path / "clips", 2)
    data = str(tmp_path / "clips" / "data.jsonl")
    options = ["--preset", "compact-mel", "--metrics", "mos", "--max-steps", "1"]
    return [
        "train-predictor",
        "--train",
        data,
        "--valid",
        data,
        "--output-dir",
        str(tmp_path / "out" / "run"),
        *options,
    ]


FAULTS = {"ENOSPC": "No space left on device", "EROFS": "Read-only file system"}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("name", ["score", "predict", "rank", "enhance", "train-predictor"])
def test_a_full_disk_or_read_only_output_is_one_line_and_leaves_no_partial_file(
    tmp_path: Path,
    name: str,
    fault: str,
    predictor: Path,
    shipped_models: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "out"
    if name == "train-predictor":
        command = _train_command(tmp_path)
    else:
        command = _command(name, _corpus(tmp_path / "corpus", utterances=1), output, predictor)
    output.mkdir()
    if fault == "ENOSPC":
        _full_disk(monkeypatch, lambda path: path.startswith(str(output)))
    else:
        _read_only(monkeypatch, output)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = sqa_main(command)
    monkeypatch.undo()
    assert code == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    lines = [line for line in error.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0] == error.strip().splitlines()[-1]
    assert lines[0].startswith(f"sqa {name}: error: ") and FAULTS[fault] in lines[0]
    assert str(output) in lines[0]  # names the file that could not be written
    left = [path.name for path in output.rglob("*") if path.is_file()]
    assert not [item for item in left if item.endswith(".tmp")]
    assert not [item for item in left if item.rsplit(".", 1)[-1] in ("jsonl", "csv", "wav", "pt")]


def _score(root: Path, output: Path, *extra: str) -> int:
    return sqa_main(
        [
            "score",
            "--root",
            str(root),
            "--ref-dir",
            str(root / "_reference"),
            "--metrics",
            "si_snr,lsd",
            "-o",
            str(output),
            "--no-progress",
            *extra,
        ]
    )


@pytest.fixture
def scored(tmp_path: Path) -> tuple[Path, str]:
    """A corpus and the output of an uninterrupted ``sqa score`` run on it."""
    root = tmp_path / "corpus"
    write_system_folders(root, SYSTEMS, 3, duration=0.5)
    assert _score(root, tmp_path / "whole.jsonl") == 0
    return root, (tmp_path / "whole.jsonl").read_text()


@pytest.mark.parametrize("where", ["journal", "output"])
def test_score_after_a_full_disk_resumes_to_the_uninterrupted_output(
    tmp_path: Path,
    where: str,
    scored: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, whole = scored
    output = tmp_path / "out" / "scores.jsonl"
    appended: list[str] = []

    def fails(path: str) -> bool:
        if where == "output":
            return path.endswith(".tmp")
        appended.append(path)
        return path.endswith(".partial") and len(appended) == 3

    _full_disk(monkeypatch, fails)
    capsys.readouterr()
    assert _score(root, output) == 2
    monkeypatch.undo()
    error = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(error) and "No space left on device" in error[-1]
    assert "--resume" in error[-1] and ".partial" in error[-1]
    assert not output.exists() and not list(output.parent.glob("*.tmp"))
    assert _score(root, output, "--resume") == 0
    assert output.read_text() == whole
    assert not output.with_name("scores.jsonl.partial").exists()


def test_score_stops_with_one_line_when_its_output_folder_is_removed(
    tmp_path: Path, scored: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root, _ = scored
    output = tmp_path / "out" / "scores.jsonl"
    real_score_task, done = runner.score_task, []

    def score_then_remove(task: runner.ScoreTask) -> dict:
        done.append(task)
        if len(done) == 2:
            shutil.rmtree(output.parent)
        return real_score_task(task)

    monkeypatch.setattr(runner, "score_task", score_then_remove)
    capsys.readouterr()
    assert _score(root, output) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(error)
    assert error[-1].startswith("sqa score: error: cannot write") and "deleted" in error[-1]
    assert len(done) == 2  # stopped at once, not after scoring everything


def test_ctrl_c_in_score_keeps_a_journal_that_resume_completes(
    tmp_path: Path, scored: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root, whole = scored
    output = tmp_path / "scores.jsonl"
    real_score_task, done = runner.score_task, []

    def interrupted(task: runner.ScoreTask) -> dict:
        done.append(task)
        if len(done) == 3:
            raise KeyboardInterrupt
        return real_score_task(task)

    monkeypatch.setattr(runner, "score_task", interrupted)
    capsys.readouterr()
    assert _score(root, output) == 130
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("sqa score: interrupted; 2 of 6 file(s) are kept in")
    assert line.endswith("rerun the same command with --resume to continue")
    monkeypatch.undo()
    assert _score(root, output, "--resume") == 0 and output.read_text() == whole


SLOW_SQA = """
import runpy, time
import sqa.metrics.runner as runner
score_task = runner.score_task
def slow(task):
    time.sleep(0.4)  # time to send the signal while files are being scored
    return score_task(task)
runner.score_task = slow
runpy.run_module("sqa", run_name="__main__", alter_sys=True)
"""


def test_sigterm_stops_score_cleanly_and_resume_completes(
    tmp_path: Path, scored: tuple[Path, str]
) -> None:
    root, whole = scored
    output = tmp_path / "scores.jsonl"
    journal = output.with_name("scores.jsonl.partial")
    arguments = [
        "score",
        "--root",
        str(root),
        "--ref-dir",
        str(root / "_reference"),
        "--metrics",
        "si_snr,lsd",
        "-o",
        str(output),
        "--no-progress",
    ]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_SQA, *arguments],
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    deadline = time.monotonic() + 60
    while not (journal.exists() and len(journal.read_text().splitlines()) >= 2):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 143
    assert "Traceback" not in error
    assert "sqa score: interrupted;" in error and "--resume to continue" in error
    assert journal.exists() and not output.exists()
    assert _score(root, output, "--resume") == 0 and output.read_text() == whole
