"""Ids from listings never make a command write outside its output folder (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqa.audio import save_audio
from sqa.cli import main as sqa_main
from sqa.data import (
    AudioRecord,
    write_kaldi_dir,
    write_system_folders,
    write_track2_jsonl,
    write_urgentpk,
)
from sqa.errors import DataFormatError
from sqa.fileio import check_metric_name, inside
from sqa.synthetic import speech_like

HOSTILE_IDS = ["../../escaped", "..", ".", "", "/tmp/escaped", "a/../../escaped", "..\\escaped"]


@pytest.mark.parametrize("name", HOSTILE_IDS)
def test_inside_refuses_every_name_that_is_not_one_component(name: str, tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="cannot name a file inside"):
        inside(tmp_path, "system", name, suffix=".wav")
    with pytest.raises(DataFormatError, match="cannot name a file inside"):
        inside(tmp_path, name, "sample")


def test_inside_keeps_plain_names(tmp_path: Path) -> None:
    assert inside(tmp_path, "sys A", "utt.1", suffix=".wav") == tmp_path / "sys A" / "utt.1.wav"
    assert check_metric_name("dnsmos_ovrl", "x") == "dnsmos_ovrl"
    for name in ("../x", "/tmp/x", ".hidden", "a b", "", "x/y"):
        with pytest.raises(DataFormatError, match="not a plain name"):
            check_metric_name(name, "x")


def _listing(tmp_path: Path, system: str, sample: str) -> tuple[Path, Path]:
    audio = save_audio(tmp_path / "in" / "a.wav", speech_like(0.3, 16000, 0), 16000)
    folder = tmp_path / "work" / "deep"
    folder.mkdir(parents=True)
    listing = write_track2_jsonl(folder / "data.jsonl", [AudioRecord(sample, system, str(audio))])
    return listing, audio


@pytest.mark.parametrize(
    ("system", "sample"), [("sys", "../../escaped"), ("../..", "escaped"), ("sys", "..\\x")]
)
def test_enhance_never_writes_outside_output(
    system: str, sample: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing, _ = _listing(tmp_path, system, sample)
    output = tmp_path / "work" / "deep" / "out"
    command = ["enhance", "--model", "rnnoise", "--data", str(listing), "--output", str(output)]
    assert sqa_main(command) == 2  # refused while planning, before any model is loaded
    assert "cannot name a file inside" in capsys.readouterr().err
    assert not output.exists()
    assert not list(tmp_path.rglob("escaped*")) and not list(tmp_path.rglob("x.wav"))


def test_writers_of_listings_refuse_ids_that_leave_the_root(tmp_path: Path) -> None:
    audio = save_audio(tmp_path / "a.wav", speech_like(0.3, 16000, 0), 16000)
    root = tmp_path / "root" / "inner"
    with pytest.raises(DataFormatError, match="cannot name a file inside"):
        write_system_folders(root, [AudioRecord("../../escaped", "sys", str(audio))])
    with pytest.raises(DataFormatError, match="cannot name a file inside"):
        write_urgentpk(root, [AudioRecord("s", "../../escaped", str(audio))])
    bad_metric = AudioRecord("s", "sys", str(audio), metrics={"../../escaped": 1.0})
    with pytest.raises(DataFormatError, match="not a plain name"):
        write_kaldi_dir(root, [bad_metric])
    assert not list(tmp_path.rglob("escaped*"))
