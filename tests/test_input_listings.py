"""Awkward input listings for every audio-reading command: repeated stems (``a.wav`` +
``a.flac``), dead symbolic links, unreadable files and blanks in names.

The contract: a warning or a per-file reason that names the file, one file per key, good files
still processed, and an output format that cannot hold a name refused before any work.
"""

from __future__ import annotations

import builtins
import errno
import os
import warnings
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
from sqa.synthetic import write_system_folders

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


def corpus(root: Path, utterances: int = 2) -> Path:
    """Two systems (plus ``_reference``) with ``utt000.wav`` + ``utt000.flac`` in ``sysA`` and a
    name with a blank in both systems."""
    write_system_folders(
        root, SYSTEMS, [*(f"utt{i:03d}" for i in range(utterances)), SPACED], duration=0.5
    )
    samples, rate = soundfile.read(root / "sysA" / "utt000.wav")
    soundfile.write(root / "sysA" / "utt000.flac", samples[::-1], rate)
    return root


def audio_command(name: str, root: Path, output: Path, predictor: Path) -> list[str]:
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
    root = corpus(tmp_path / "corpus")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sqa_main(audio_command(name, root, tmp_path / "out", predictor)) == 0
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
    root = corpus(tmp_path / "corpus")
    _dead_links(root / "sysB")
    with pytest.warns(UserWarning) as caught:
        assert sqa_main(audio_command(name, root, tmp_path / "out", predictor)) == 0
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
    root = corpus(tmp_path / "corpus")
    denied = root / "sysB" / "utt001.wav"
    _deny_reading(monkeypatch, denied)
    with pytest.raises(UnreadableAudioError, match="permission denied") as caught:
        load_audio(denied)
    assert "corrupt" not in str(caught.value)
    in_process = [*audio_command("score", root, tmp_path / "out", Path()), "--jobs", "0"]
    assert sqa_main(in_process) == 0  # reading is denied in this process only
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
    root = corpus(tmp_path / "corpus")
    monkeypatch.setattr(runner, "score_task", _never_called)
    command = audio_command("score", root, tmp_path / "out", Path())
    assert sqa_main([*command[:-1], str(tmp_path / "out" / "kaldi")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "'sysA-with space'" in error and "Kaldi ids" in error
    assert not (tmp_path / "out").exists()  # no journal, no half-written Kaldi dir


def test_predict_scp_dir_refuses_blank_ids_before_predicting(
    tmp_path: Path, predictor: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = corpus(tmp_path / "corpus")
    command = audio_command("predict", root, tmp_path / "out", predictor)
    assert sqa_main([*command, "--scp-dir", str(tmp_path / "out" / "scp")]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "'sysA-with space'" in error and "--scp-dir" in error
    assert not (tmp_path / "out").exists()


def test_predict_scp_dir_refuses_an_existing_scp_before_predicting(
    tmp_path: Path, predictor: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "corpus"
    write_system_folders(root, SYSTEMS, 2, duration=0.5)
    scp_dir = tmp_path / "out" / "scp"
    scp_dir.mkdir(parents=True)
    (scp_dir / "mos.scp").write_text("kept 1.0\n")
    command = [*audio_command("predict", root, tmp_path / "out", predictor), "--scp-dir"]
    assert sqa_main([*command, str(scp_dir)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert "mos.scp exists" in error[-1] and "--force" in error[-1] and "Traceback" not in error
    assert not (tmp_path / "out" / "p.jsonl").exists()  # stopped before predicting anything
    assert (scp_dir / "mos.scp").read_text() == "kept 1.0\n"
    assert sqa_main([*command, str(scp_dir), "--force"]) == 0
    assert len(read_scp(scp_dir / "mos.scp")) == 4


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
