"""Round trips and error reports of every data format in sqa.data."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sqa.data import (
    AudioRecord,
    describe_source,
    discover_systems,
    load_records,
    match_homologous,
    metric_matrix,
    metric_names,
    read_csv_table,
    read_kaldi_dir,
    read_split,
    read_track2_jsonl,
    read_urgentpk,
    records_by_system,
    systems_from_paths,
    write_csv_table,
    write_kaldi_dir,
    write_system_folders,
    write_track2_jsonl,
    write_urgentpk,
)
from sqa.data.records import parse_float
from sqa.errors import DataFormatError, SqaError

RATE = 8000


def write_wav(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, RATE // 5).astype(np.float32)
    soundfile.write(path, noise, RATE, format="WAV" if path.suffix == ".wav" else "FLAC")
    return path


def sample_records(tmp_path: Path, shared_ids: bool = False) -> list[AudioRecord]:
    """Two systems x three utterances with some labels missing (no audio needed)."""
    records = []
    for system in ("sysA", "sysB"):
        for index in range(3):
            utterance = f"utt{index}"
            metrics = {"mos": 1.5 + index, "pesq": 2.0 + 0.25 * index}
            if index == 1:
                del metrics["pesq"]  # a missing label
            records.append(
                AudioRecord(
                    sample_id=utterance if shared_ids else f"{system}-{utterance}",
                    system_id=system,
                    path=str(tmp_path / "audio" / system / f"{utterance}.wav"),
                    utterance_id=utterance,
                    duration=1.0 + index / 8,
                    metrics=metrics,
                )
            )
    return records


def make_system_tree(root: Path, layout: dict[str, list[str]]) -> Path:
    for seed, (system, names) in enumerate(layout.items()):
        for name in names:
            write_wav(root / system / name, seed)
    return root


# --- records -----------------------------------------------------------------------------------


def test_metric_matrix_reads_missing_as_nan(tmp_path: Path) -> None:
    records = sample_records(tmp_path)
    assert metric_names(records) == ["mos", "pesq"]
    matrix = metric_matrix(records, ["pesq", "mos", "absent"])
    assert matrix.shape == (6, 3)
    assert np.isnan(matrix[1, 0]) and matrix[2, 0] == 2.5 and matrix[0, 1] == 1.5
    assert np.isnan(matrix[:, 2]).all()
    assert list(records_by_system(records)) == ["sysA", "sysB"]


def test_parse_float_cells() -> None:
    assert math.isnan(parse_float("", "x")) and math.isnan(parse_float("NaN", "x"))
    assert math.isnan(parse_float(None, "x")) and parse_float(" 3.5 ", "x") == 3.5
    with pytest.raises(DataFormatError, match="here: expected a number"):
        parse_float("good", "here")


# --- folder per system ---------------------------------------------------------------------------


def test_discover_and_match_complete_set(tmp_path: Path) -> None:
    root = make_system_tree(
        tmp_path / "root", {"b": ["u1.wav", "u2.wav"], "a": ["u2.wav", "u1.wav"]}
    )
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not audio")
    (root / ".hidden").mkdir()
    write_wav(root / ".hidden" / "u1.wav")
    systems = discover_systems(root)
    assert list(systems) == ["a", "b"]
    matched = match_homologous(systems)
    assert matched.utterances == ["u1", "u2"] and not matched.missing and not matched.duplicates
    records = matched.records()
    assert [(r.system_id, r.sample_id) for r in records] == [
        ("a", "u1"),
        ("a", "u2"),
        ("b", "u1"),
        ("b", "u2"),
    ]
    assert all(r.utterance_id == r.sample_id for r in records)
    assert Path(records[0].path) == root / "a" / "u1.wav"


def test_missing_files_warn_and_intersect_or_fail_when_strict(tmp_path: Path) -> None:
    root = make_system_tree(
        tmp_path, {"a": ["u1.wav", "u2.wav", "u3.wav"], "b": ["u1.wav", "u3.wav"], "c": ["u1.wav"]}
    )
    systems = discover_systems(root)
    with pytest.warns(UserWarning, match=r"2 utterance\(s\) not in every system"):
        matched = match_homologous(systems)
    assert matched.utterances == ["u1"]
    assert matched.missing == {"u2": ["b", "c"], "u3": ["c"]}
    with pytest.raises(DataFormatError, match=r"u2 \(missing in b, c\)"):
        match_homologous(systems, strict=True)


def test_duplicate_stems_are_reported(tmp_path: Path) -> None:
    root = make_system_tree(tmp_path, {"a": ["u1.wav", "u1.flac"], "b": ["u1.flac"]})
    with pytest.warns(UserWarning, match="a/u1"):
        matched = match_homologous(discover_systems(root))
    assert matched.duplicates == {"a/u1": [root / "a" / "u1.wav", root / "a" / "u1.flac"]}
    assert matched.paths["a"]["u1"].suffix == ".wav"
    with pytest.raises(DataFormatError, match="several files"):
        match_homologous(discover_systems(root), strict=True)


def test_explicit_system_folders(tmp_path: Path) -> None:
    one = make_system_tree(tmp_path / "x", {"enh": ["u1.wav"]}) / "enh"
    two = make_system_tree(tmp_path / "y", {"enh": ["u1.wav"]}) / "enh"
    three = make_system_tree(tmp_path / "z", {"other": ["u1.wav"]}) / "other"
    assert list(systems_from_paths([one, three])) == ["enh", "other"]
    with pytest.raises(DataFormatError, match="both named 'enh'"):
        systems_from_paths([one, two])
    with pytest.raises(DataFormatError, match="does not exist"):
        systems_from_paths([tmp_path / "nowhere"])


def test_no_common_utterance_and_empty_root(tmp_path: Path) -> None:
    root = make_system_tree(tmp_path / "r", {"a": ["u1.wav"], "b": ["u2.wav"]})
    with pytest.warns(UserWarning), pytest.raises(DataFormatError, match="no utterance"):
        match_homologous(discover_systems(root))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no sub-folder with audio"):
        discover_systems(tmp_path / "empty")


def test_system_folders_round_trip(tmp_path: Path) -> None:
    source = make_system_tree(
        tmp_path / "src", {"a": ["u1.wav", "u2.flac"], "b": ["u1.wav", "u2.wav"]}
    )
    records = match_homologous(discover_systems(source)).records()
    copies = write_system_folders(tmp_path / "out", records)
    again = load_records(tmp_path / "out")
    assert [(r.system_id, r.sample_id) for r in again] == [
        (r.system_id, r.sample_id) for r in records
    ]
    assert [r.path for r in again] == [r.path for r in copies]
    assert Path(again[1].path).read_bytes() == (source / "a" / "u2.flac").read_bytes()
    with pytest.raises(SqaError, match="exists"):
        write_system_folders(tmp_path / "out", records)
    write_system_folders(tmp_path / "out", records, force=True)


# --- Kaldi -------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric_json", [False, True])
@pytest.mark.parametrize("shared_ids", [False, True])
def test_kaldi_round_trip(tmp_path: Path, metric_json: bool, shared_ids: bool) -> None:
    records = sample_records(tmp_path, shared_ids=shared_ids)
    folder = write_kaldi_dir(tmp_path / "kaldi", records, metric_json=metric_json)
    assert (folder / "metric.scp").exists() == metric_json
    assert (folder / "pesq.scp").exists() != metric_json
    assert (folder / "utt2sample").exists() == shared_ids
    assert read_kaldi_dir(folder) == records
    assert load_records(folder / "wav.scp") == records


def test_kaldi_hand_written_dir(tmp_path: Path) -> None:
    folder = tmp_path / "dev"
    folder.mkdir()
    (folder / "wav.scp").write_text("u1 audio/u1.wav\nu2 /abs/path with space.wav\n\n")
    (folder / "utmos.scp").write_text("u1 3.25\nu2 nan\n")
    (folder / "metric.scp").write_text('u1 {"mos": 4.0, "utmos": 3.25}\nu2 {"mos": null}\n')
    (folder / "utt2dur").write_text("u1 2.5\n")
    (folder / "feats.scp").write_text("u1 feats.ark:12\n")  # a Kaldi file that is no metric
    records = read_kaldi_dir(folder)
    assert records[0].path == str(folder / "audio" / "u1.wav")
    assert records[1].path == "/abs/path with space.wav"
    assert records[0].metrics == {"mos": 4.0, "utmos": 3.25} and records[1].metrics == {}
    assert records[0].duration == 2.5 and records[1].duration is None
    assert {r.system_id for r in records} == {"dev"}  # no utt2sys: the directory's name
    (folder / "utmos.scp").write_text("u1 3.0\n")
    with pytest.raises(DataFormatError, match="disagrees"):
        read_kaldi_dir(folder)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"wav.scp": "u1 sox in.wav -t wav - |\n"}, "pipes are not supported"),
        ({"wav.scp": "u1 a.wav\nu1 b.wav\n"}, "duplicate id 'u1'"),
        ({"wav.scp": "u1\n"}, "expected '<id> <value>'"),
        ({"wav.scp": "u1 a.wav\n", "mos.scp": "u1 good\n"}, "expected a number"),
        ({"wav.scp": "u1 a.wav\n", "utt2sys": "u9 s\n"}, "ids not in wav.scp"),
        ({"wav.scp": "u1 a.wav\n", "metric.scp": "u1 {oops\n"}, "metric.scp"),
        ({"utt2sys": "u1 s\n"}, "no wav.scp"),
    ],
)
def test_kaldi_errors(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(DataFormatError, match=message):
        read_kaldi_dir(tmp_path)


def test_kaldi_writer_refuses_overwrite_and_duplicates(tmp_path: Path) -> None:
    records = sample_records(tmp_path)
    write_kaldi_dir(tmp_path / "k", records)
    with pytest.raises(SqaError, match="exists"):
        write_kaldi_dir(tmp_path / "k", records)
    only_mos = [records[1]]  # has no pesq label: a stale pesq.scp would leak into it
    write_kaldi_dir(tmp_path / "k", only_mos, force=True)
    assert not (tmp_path / "k" / "pesq.scp").exists()
    assert read_kaldi_dir(tmp_path / "k") == only_mos
    with pytest.raises(DataFormatError, match="duplicate"):
        write_kaldi_dir(tmp_path / "k2", [records[0], records[0]])


# --- Track 2 -----------------------------------------------------------------------------------


def test_track2_round_trip_and_missing_labels(tmp_path: Path) -> None:
    records = sample_records(tmp_path)
    path = write_track2_jsonl(tmp_path / "data.jsonl", records)
    again = read_track2_jsonl(path)
    assert again == records
    assert np.isnan(metric_matrix(again, ["pesq"])[1, 0])
    assert load_records(tmp_path) == records and load_records(path) == records
    with pytest.raises(SqaError, match="exists"):
        write_track2_jsonl(path, records)


def test_track2_hand_written_lines(tmp_path: Path) -> None:
    lines = [
        {"audio_path": "wav/a.wav", "system_id": "s1", "sample_id": "s1-a", "duration": 2.0,
         "sr": 16000, "metrics": {"mos": 3.5, "utmos": None}},
        {"audio_path": "/data/b.wav", "system_id": "s1", "sample_id": "s1-b"},
    ]  # fmt: skip
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    first, second = read_track2_jsonl(path)
    assert first.path == str(tmp_path / "wav" / "a.wav") and second.path == "/data/b.wav"
    assert first.metrics == {"mos": 3.5} and second.metrics == {} and second.duration is None
    np.testing.assert_array_equal(metric_matrix([first, second], ["mos"]), [[3.5], [np.nan]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"audio_path": "a", "system_id": "s", "sample_id": "x"}\n' * 2, "duplicate id"),
        ('{"audio_path": "a", "system_id": "s"}\n', "missing key.*sample_id"),
        ('{"audio_path": "a", "system_id": "s", "sample_id": "x"}\n{broken\n', "data.jsonl:2"),
        ('{"audio_path": "a", "system_id": "s", "sample_id": "x", "metrics": [1]}\n', "metrics"),
        (
            '{"audio_path": "a", "system_id": "s", "sample_id": "x", "metrics": {"m": "hi"}}\n',
            "number",
        ),
    ],
)
def test_track2_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "data.jsonl").write_text(text)
    with pytest.raises(DataFormatError, match=message):
        read_track2_jsonl(tmp_path / "data.jsonl")


# --- URGENT-PK ---------------------------------------------------------------------------------


def test_urgentpk_round_trip(tmp_path: Path) -> None:
    records = sample_records(tmp_path, shared_ids=True)
    for record in records:
        record.duration = None
        record.metrics = {"mos": record.metrics["mos"]} if record.sample_id != "utt2" else {}
    split = {"tr": ["utt0", "utt1"], "cv": ["utt2"], "tt": []}
    write_urgentpk(tmp_path / "pk", records, split)
    assert not (tmp_path / "pk" / "sysA" / "utt2sys").exists()
    again, split_again = read_urgentpk(tmp_path / "pk")
    assert again == records and split_again == split
    assert describe_source(tmp_path / "pk") == "urgentpk"
    assert load_records(tmp_path / "pk") == records
    with pytest.raises(SqaError, match="exists"):
        write_urgentpk(tmp_path / "pk", records, split)


def test_urgentpk_split_errors(tmp_path: Path) -> None:
    (tmp_path / "split.json").write_text('{"tr": ["a", "b"], "cv": ["b"]}')
    with pytest.raises(DataFormatError, match="both 'tr' and 'cv'"):
        read_split(tmp_path / "split.json")
    (tmp_path / "split.json").write_text('{"train": ["a"]}')
    with pytest.raises(DataFormatError, match="keys among"):
        read_split(tmp_path / "split.json")
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "wav.scp").write_text("a a.wav\n")
    (tmp_path / "split.json").write_text('{"tr": ["a", "zz"]}')
    with pytest.warns(UserWarning, match="not found in any team"):
        records, split = read_urgentpk(tmp_path)
    assert records[0].system_id == "team" and split == {"tr": ["a", "zz"], "cv": [], "tt": []}


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_round_trip_with_empty_cells(tmp_path: Path) -> None:
    records = sample_records(tmp_path)
    records[0].utterance_id = None
    records[0].duration = None
    path = write_csv_table(tmp_path / "table.csv", records)
    header = path.read_text().splitlines()[0]
    assert header == "sample_id,system_id,path,utterance_id,duration,mos,pesq"
    assert read_csv_table(path) == records
    assert load_records(path) == records
    with pytest.raises(SqaError, match="exists"):
        write_csv_table(path, records)
    empty = write_csv_table(tmp_path / "empty.csv", [])
    assert read_csv_table(empty) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sample_id,path\na,a.wav\n", "missing column.*system_id"),
        ("sample_id,system_id,path,mos\na,s,a.wav,bad\n", "table.csv:2 column 'mos'"),
        ("sample_id,system_id,path\na,s,a.wav\na,s,b.wav\n", "duplicate id"),
        ("sample_id,system_id,path\n,s,a.wav\n", "empty 'sample_id'"),
    ],
)
def test_csv_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "table.csv").write_text(text)
    with pytest.raises(DataFormatError, match=message):
        read_csv_table(tmp_path / "table.csv")


def test_csv_relative_paths_and_missing_cells(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("sample_id,system_id,path,mos\na,s,x/a.wav,\nb,s,/b.wav,NA\n")
    first, second = read_csv_table(tmp_path / "t.csv")
    assert first.path == str(tmp_path / "x" / "a.wav") and second.path == "/b.wav"
    assert np.isnan(metric_matrix([first, second], ["mos"])).all()


def test_load_records_rejects_unknown_sources(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataFormatError, match="expected a .jsonl"):
        load_records(tmp_path / "notes.txt")
    with pytest.raises(DataFormatError, match="no such file"):
        load_records(tmp_path / "missing")


def test_listed_paths_follow_the_path_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqa.data.records import listed_path, resolve_path, set_path_rule

    monkeypatch.chdir(tmp_path)
    inside = str(tmp_path / "set" / "audio" / "a.wav")
    outside = str(tmp_path / "elsewhere" / "b.wav")
    # Default: absolute paths, which open from any directory, as every official loader needs.
    assert listed_path(inside, tmp_path / "set") == inside
    assert listed_path(outside, tmp_path / "set") == outside
    try:
        set_path_rule("relative-to-listing")
        assert listed_path(inside, tmp_path / "set") == "audio/a.wav"
        assert listed_path(outside, tmp_path / "set") == "../elsewhere/b.wav"
        for path in (inside, outside):  # written, then read back: the same file
            read = resolve_path(listed_path(path, tmp_path / "set"), tmp_path / "set")
            assert os.path.normpath(read) == path
        set_path_rule("relative-to-cwd")
        assert listed_path(inside, tmp_path / "set") == "set/audio/a.wav"
        assert resolve_path("set/audio/a.wav", tmp_path / "other") == inside
        set_path_rule("absolute")
        with pytest.raises(DataFormatError, match="relative path"):
            resolve_path("audio/a.wav", tmp_path / "set")
        with pytest.raises(DataFormatError, match="unknown path rule"):
            set_path_rule("relative")
    finally:
        set_path_rule("auto")


def test_track2_writer_keeps_cwd_relative_paths_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audio").mkdir()
    soundfile.write(tmp_path / "audio" / "a.wav", np.full(1600, 0.1, dtype=np.float32), 16000)
    record = AudioRecord("a", "sys", "audio/a.wav")
    write_track2_jsonl(tmp_path / "lists" / "data.jsonl", [record])
    (read,) = read_track2_jsonl(tmp_path / "lists" / "data.jsonl")
    assert Path(read.path).resolve() == (tmp_path / "audio" / "a.wav").resolve()
