"""SHEET / official listening-test CSVs and VERSA result files, built in their official layout."""

from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sqa.data import (
    VERSA_NAMES,
    describe_source,
    load_records,
    metric_matrix,
    read_listening_csv,
    read_versa_results,
    write_track2_jsonl,
)
from sqa.errors import DataFormatError
from sqa.metrics.registry import METRIC_SPECS

RATE = 8000
# The columns of a SHEET training CSV (BVCC data_prep.py with --generate-listener-id).
SHEET_COLUMNS = [
    "wav_path", "system_id", "sample_id", "phoneme", "cluster", "reference", "listener_idx",
    "score", "listener_id",
]  # fmt: skip


def write_wav(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, RATE // 2).astype(np.float32)
    soundfile.write(path, noise, RATE)
    return path


def write_csv(path: Path, columns: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


# --- SHEET -------------------------------------------------------------------------------------


def sheet_rows() -> list[list[object]]:
    rating = ["ph", "c1", "ref"]
    return [
        ["wav/sys64e2f-utt9c1.wav", "sys64e2f", "utt9c1", *rating, 0, 4, "VDP1ovyrBzg8_1"],
        ["wav/sys64e2f-utt9c1.wav", "sys64e2f", "utt9c1", *rating, 1, 3, "qZbyQbnrzkc_2"],
        ["wav/sys64e2f-utt9c1.wav", "sys64e2f", "utt9c1", *rating, 2, 2, "1NkZDSfGCbq_3"],
        ["wav/sys7a1b0-utt01.wav", "sys7a1b0", "utt01", *rating, 0, 5, "VDP1ovyrBzg8_1"],
        ["wav/sys7a1b0-utt01.wav", "sys7a1b0", "utt01", *rating, 0, 4, "VDP1ovyrBzg8_1"],
    ]


def test_sheet_training_csv_averages_ratings_per_file(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "bvcc_train.csv", SHEET_COLUMNS, sheet_rows())
    assert describe_source(source) == "sheet"
    records = load_records(source)
    assert [(r.system_id, r.sample_id) for r in records] == [
        ("sys64e2f", "utt9c1"),
        ("sys7a1b0", "utt01"),
    ]
    assert records[0].metrics == {"mos": 3.0} and records[0].listeners == 3
    assert records[1].metrics == {"mos": 4.5} and records[1].listeners == 1  # two ratings
    assert records[0].path == str(tmp_path / "wav" / "sys64e2f-utt9c1.wav")
    again = load_records(write_track2_jsonl(tmp_path / "data.jsonl", records))
    assert again == records


def test_sheet_test_csv_with_averaged_scores_and_metric_columns(tmp_path: Path) -> None:
    columns = ["wav_path", "system_id", "sample_id", "avg_score", "utmos", "phoneme"]
    rows = [["/data/a.wav", "s1", "a", 3.25, 3.1, "x"], ["/data/b.wav", "s1", "b", "", "", "y"]]
    records = read_listening_csv(write_csv(tmp_path / "test.csv", columns, rows))
    assert records[0].metrics == {"mos": 3.25, "utmos": 3.1}
    assert records[1].metrics == {}  # empty cells are missing labels
    assert np.isnan(metric_matrix(records, ["mos"])[1, 0])


def test_sheet_paths_relative_to_the_recipe_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_wav(tmp_path / "downloads" / "wav" / "a.wav")
    columns = ["wav_path", "system_id", "sample_id", "score", "listener_id"]
    source = write_csv(
        tmp_path / "data" / "train.csv", columns, [["downloads/wav/a.wav", "s", "a", 2, "L"]]
    )
    monkeypatch.chdir(tmp_path)  # SHEET and the official scripts open wav_path from here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resolve_path notes the working-directory fallback
        records = read_listening_csv(source)
    assert Path(records[0].path) == tmp_path / "downloads" / "wav" / "a.wav"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["a.wav", "s", "a", 3, "L1"], ["b.wav", "s", "a", 4, "L2"]], "has wav_path"),
        ([["a.wav", "s", "a", "good", "L1"]], "expected a number"),
        ([["a.wav", "s", "", 3, "L1"]], "empty 'sample_id'"),
    ],
)
def test_sheet_errors(tmp_path: Path, rows: list[list[object]], message: str) -> None:
    columns = ["wav_path", "system_id", "sample_id", "score", "listener_id"]
    with pytest.raises(DataFormatError, match=message):
        read_listening_csv(write_csv(tmp_path / "x.csv", columns, rows))
    with pytest.raises(DataFormatError, match="needs a rating column"):
        read_listening_csv(write_csv(tmp_path / "y.csv", columns[:3], [["a.wav", "s", "a"]]))


# --- VERSA -------------------------------------------------------------------------------------


def make_pred_dir(tmp_path: Path) -> Path:
    """The wav.scp given to VERSA as --pred, with an utt2sys."""
    folder = tmp_path / "data" / "enhanced"
    for seed, name in enumerate(("u1", "u2", "u3")):
        write_wav(folder / "wav" / f"{name}.wav", seed)
    (folder / "wav.scp").write_text("".join(f"{n} wav/{n}.wav\n" for n in ("u1", "u2", "u3")))
    (folder / "utt2sys").write_text("u1 bsrnn\nu2 bsrnn\nu3 bsrnn\n")
    return folder


def versa_row(key: str, offset: float) -> dict[str, object]:
    return {
        "key": key,
        "dns_overall": 3.0 + offset,
        "dns_p808": 3.5 + offset,
        "utmos": 2.5 + offset,
        "speech_bert": 0.9,
        "spk_similarity": 0.75,
        "pesq": 0.0 if key == "u3" else 2.0 + offset,  # VERSA's value for a failed PESQ
        "stoi": 0.8,
        "sdr": 12.0,
        "mcd": 6.5,
        "whisper_hyp_text": "hello world",
        "vad_info": [[0.0, 0.4]],
        "plcmos": math.nan,
    }


def test_versa_jsonl_maps_names_and_joins_the_scored_wav_scp(tmp_path: Path) -> None:
    pred = make_pred_dir(tmp_path)
    results = tmp_path / "score" / "utt_result.txt"
    results.parent.mkdir()
    rows = [versa_row(key, index / 10) for index, key in enumerate(("u1", "u2", "u3"))]
    results.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert describe_source(results) == "versa"
    with pytest.warns(UserWarning) as caught:
        records = load_records(results, audio=pred / "wav.scp")
    notes = " ".join(str(item.message) for item in caught)
    assert "kept as mcd->versa_mcd, stoi" in notes and "0.0 values of pesq" in notes
    assert [(r.system_id, r.sample_id) for r in records] == [("bsrnn", f"u{i}") for i in (1, 2, 3)]
    assert records[1].path == str(pred / "wav" / "u2.wav")
    assert records[1].metrics == {
        "dnsmos_ovrl": 3.1, "dnsmos_p808": 3.6, "utmos": 2.6, "sbert": 0.9, "spksim": 0.75,
        "pesq": 2.1, "stoi": 0.8, "sdr": 12.0, "versa_mcd": 6.5,
    }  # fmt: skip
    assert "pesq" not in records[2].metrics  # a failure is missing, never 0.0
    labels = metric_matrix(records, ["dnsmos_ovrl", "sbert", "spksim", "pesq"])
    assert np.isfinite(labels[:2]).all()  # ready for sqa train-predictor --metrics ...


def test_versa_old_dict_lines_and_wav_scp_beside_them(tmp_path: Path) -> None:
    pred = make_pred_dir(tmp_path)
    results = pred / "result.1.txt"
    results.write_text(
        "{'key': 'u2', 'utmos': np.float64(3.25), 'dns_overall': nan, 'SIGMOS_OVRL': -1.5}\n"
        "{'key': 'u1', 'nisqa_mos_pred': 4.0, 'scoreq_nr': float('nan')}\n"
    )
    records = load_records(results)  # no audio listing given: the wav.scp beside it
    assert [r.sample_id for r in records] == ["u2", "u1"]
    assert records[0].metrics == {"utmos": 3.25, "sigmos_ovrl": -1.5}
    assert records[1].metrics == {"nisqa_mos": 4.0}


def test_versa_folder_mode_keys_are_file_names(tmp_path: Path) -> None:
    write_wav(tmp_path / "pred" / "a.wav")
    write_wav(tmp_path / "pred" / "sub" / "b.flac", 1)
    results = tmp_path / "out.jsonl"
    results.write_text('{"key": "b.flac", "utmos": 3.0}\n{"key": "a.wav", "utmos": 2.0}\n')
    records = read_versa_results(results, tmp_path / "pred")
    assert [(r.system_id, r.sample_id, r.metrics["utmos"]) for r in records] == [
        ("pred", "b", 3.0),
        ("pred", "a", 2.0),
    ]
    custom = read_versa_results(results, tmp_path / "pred", names={"utmos": "mos"})
    assert custom[0].metrics == {"mos": 3.0}


def test_versa_errors(tmp_path: Path) -> None:
    pred = make_pred_dir(tmp_path)
    lonely = tmp_path / "lonely.txt"
    lonely.write_text('{"key": "u1", "utmos": 3.0}\n')
    with pytest.raises(DataFormatError, match="name no audio files; give the wav.scp"):
        load_records(lonely)
    unknown = tmp_path / "unknown.txt"
    unknown.write_text('{"key": "u9", "utmos": 3.0}\n')
    with pytest.raises(DataFormatError, match="key.*not in"):
        read_versa_results(unknown, pred)
    repeated = tmp_path / "repeated.txt"
    repeated.write_text('{"key": "u1"}\n{"key": "u1"}\n')
    with pytest.raises(DataFormatError, match="duplicate key 'u1'"):
        read_versa_results(repeated, pred)
    clash = tmp_path / "clash.txt"
    clash.write_text('{"key": "u1", "dns_overall": 3.0, "dnsmos_overall": 3.2}\n')
    with pytest.raises(DataFormatError, match="disagrees"):
        read_versa_results(clash, pred)
    with pytest.raises(DataFormatError, match="only used with VERSA"):
        load_records(pred, audio=pred)


def test_versa_names_target_registry_keys_and_track2_files_stay_track2(tmp_path: Path) -> None:
    assert set(VERSA_NAMES.values()) <= set(METRIC_SPECS)
    track2 = tmp_path / "data.jsonl"
    track2.write_text('{"audio_path": "a.wav", "system_id": "s", "sample_id": "a", "key": 1}\n')
    assert describe_source(track2) == "track2"
