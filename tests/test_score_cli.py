"""`sqa score`: outputs, NaN side log, missing references, resume, shards and merge."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sqa.commands import score
from sqa.errors import MissingWeightsError, SqaError
from sqa.fileio import read_jsonl
from sqa.metrics import runner
from sqa.synthetic import write_system_folders

CHEAP = "sdr,si_snr,lsd,pesq"


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    write_system_folders(
        tmp_path / "systems", {"good": 20.0, "bad": 0.0}, 3, duration=1.0, sample_rate=16000
    )
    return tmp_path / "systems"


def _run(corpus: Path, output: Path, *extra: str, metrics: str = CHEAP) -> int:
    arguments = [
        "--systems", str(corpus / "good"), str(corpus / "bad"),
        "--ref-dir", str(corpus / "_reference"),
        "--metrics", metrics, "--output", str(output), "--no-progress", *extra,
    ]  # fmt: skip
    return score.main(arguments)


def test_jsonl_output_has_track2_shape_and_summary(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "scores.jsonl"
    assert _run(corpus, output, metrics=f"{CHEAP},rank_score") == 0
    rows = read_jsonl(output)
    assert len(rows) == 6
    assert {row["system_id"] for row in rows} == {"good", "bad"}
    assert set(rows[0]["metrics"]) == {"sdr", "si_snr", "lsd", "pesq", "rank_score"}
    by_key = {(row["system_id"], row["sample_id"]): row["metrics"] for row in rows}
    assert by_key[("good", "utt000")]["rank_score"] == 1.0
    assert by_key[("bad", "utt000")]["rank_score"] == 0.0
    summary = capsys.readouterr().err
    assert "system" in summary and "good" in summary and "bad" in summary
    assert not output.with_name("scores.jsonl.partial").exists()
    with pytest.raises(SqaError, match="exists"):
        _run(corpus, output)


def test_csv_and_kaldi_outputs(corpus: Path, tmp_path: Path) -> None:
    from sqa.data import read_kaldi_dir
    from sqa.fileio import read_rows

    assert _run(corpus, tmp_path / "scores.csv", metrics="si_snr") == 0
    table = read_rows(tmp_path / "scores.csv")
    assert len(table) == 6 and "si_snr" in table[0]
    assert _run(corpus, tmp_path / "kaldi", metrics="si_snr") == 0
    assert (tmp_path / "kaldi" / "si_snr.scp").is_file()
    records = read_kaldi_dir(tmp_path / "kaldi")
    assert len(records) == 6 and all("si_snr" in record.metrics for record in records)


def test_failures_are_nan_with_side_log(corpus: Path, tmp_path: Path) -> None:
    soundfile.write(corpus / "bad" / "utt001.wav", np.zeros(16000, np.float32), 16000)
    (corpus / "_reference" / "utt002.wav").unlink()
    output = tmp_path / "scores.jsonl"
    assert _run(corpus, output, metrics="si_snr,plcmos") == 0
    # A failed value is left out of the row (absent = missing label, as Track-2 files have it)
    assert "NaN" not in output.read_text() and "null" not in output.read_text()
    from sqa.metrics.outputs import read_scores

    rows = {
        (r["system_id"], r["sample_id"]): {
            n: r["metrics"].get(n, math.nan) for n in ("si_snr", "plcmos")
        }
        for r in read_scores(output)
    }
    assert math.isnan(rows[("bad", "utt001")]["si_snr"])
    assert math.isnan(rows[("bad", "utt001")]["plcmos"])
    # A missing reference skips only the reference metrics.
    assert math.isnan(rows[("good", "utt002")]["si_snr"])
    assert not math.isnan(rows[("good", "utt002")]["plcmos"])
    assert rows[("good", "utt000")]["si_snr"] > 10
    errors = read_jsonl(tmp_path / "scores.jsonl.errors.jsonl")
    reasons = {(e["system_id"], e["sample_id"], e["metric"]): e["reason"] for e in errors}
    assert "SilentAudioError" in reasons[("bad", "utt001", "si_snr")]
    assert reasons[("good", "utt002", "si_snr")] == "no reference for this file"


def test_resume_gives_the_same_file_as_an_uninterrupted_run(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    complete = tmp_path / "complete.jsonl"
    assert _run(corpus, complete) == 0
    original = runner.score_task
    calls = {"count": 0}

    def interrupted(task: runner.ScoreTask) -> dict:
        calls["count"] += 1
        if calls["count"] > 4:
            raise KeyboardInterrupt
        return original(task)

    monkeypatch.setattr(runner, "score_task", interrupted)
    resumed = tmp_path / "resumed.jsonl"
    with pytest.raises(KeyboardInterrupt):
        _run(corpus, resumed, "--jobs", "0")  # the interruption is patched into this process
    journal = tmp_path / "resumed.jsonl.partial"
    assert not resumed.exists() and len(journal.read_text().splitlines()) == 5
    with pytest.raises(SqaError, match="--resume"):
        _run(corpus, resumed)
    with pytest.raises(SqaError, match="other metrics"):
        _run(corpus, resumed, "--resume", metrics="sdr")
    monkeypatch.setattr(runner, "score_task", original)
    calls["count"] = 0
    assert _run(corpus, resumed, "--resume") == 0
    assert resumed.read_bytes() == complete.read_bytes()
    assert not journal.exists()


def test_shards_merge_to_the_unsharded_output(corpus: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole.jsonl"
    assert _run(corpus, whole, metrics="si_snr,lsd,rank_score") == 0
    shards = [tmp_path / f"shard{i}.jsonl" for i in range(3)]
    for index, shard in enumerate(shards):
        assert _run(corpus, shard, "--shard", f"{index}/3", metrics="si_snr,lsd") == 0
    assert sum(len(read_jsonl(shard)) for shard in shards) == 6
    merged = tmp_path / "merged.jsonl"
    arguments = [*map(str, shards), "--output", str(merged), "--rank-score"]
    assert score.main(["merge", *arguments]) == 0
    assert merged.read_bytes() == whole.read_bytes()
    with pytest.raises(SqaError, match="rank_score needs every system"):
        _run(corpus, tmp_path / "x.jsonl", "--shard", "0/2", metrics="sdr,rank_score")


def test_parallel_jobs_match_single_process(corpus: Path, tmp_path: Path) -> None:
    single, parallel = tmp_path / "single.jsonl", tmp_path / "parallel.jsonl"
    assert _run(corpus, single, metrics="si_snr,lsd") == 0
    assert _run(corpus, parallel, "--jobs", "2", metrics="si_snr,lsd") == 0
    assert parallel.read_bytes() == single.read_bytes()


def test_user_errors(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="needs weights: pass --utmos-weights"):
        _run(corpus, tmp_path / "a.jsonl", metrics="utmos")
    with pytest.raises(SqaError, match="need references"):
        score.main(["--systems", str(corpus / "good"), "--metrics", "pesq", "-o", "x.jsonl"])
    with pytest.raises(SqaError, match="--shard"):
        _run(corpus, tmp_path / "b.jsonl", "--shard", "3/2")
    assert not (tmp_path / "a.jsonl.partial").exists()


def test_data_jsonl_input(corpus: Path, tmp_path: Path) -> None:
    listing = tmp_path / "data.jsonl"
    lines = [
        {"audio_path": str(path), "system_id": path.parent.name, "sample_id": path.stem}
        for path in sorted(corpus.glob("[gb]*/*.wav"))
    ]
    listing.write_text("".join(json.dumps(line) + "\n" for line in lines))
    output = tmp_path / "scores.jsonl"
    arguments = ["--data", str(listing), "--ref-dir", str(corpus / "_reference")]
    assert score.main([*arguments, "--metrics", "si_snr", "-o", str(output), "--no-progress"]) == 0
    assert [row["sample_id"] for row in read_jsonl(output)] == [line["sample_id"] for line in lines]


def test_rank_metrics_weights_are_parsed() -> None:
    assert score.parse_rank_metrics(None, ["pesq", "sdr"]) == {"pesq": 1.0, "sdr": 1.0}
    weights = score.parse_rank_metrics("pesq=2,dnsmos", [])
    assert weights["pesq"] == 2.0 and weights["dnsmos_ovrl"] == 1.0 and len(weights) == 5
    with pytest.raises(SqaError, match="positive"):
        score.parse_rank_metrics("pesq=-1", [])


def test_output_paths_resolve_from_the_output_folder(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inputs named relative to the working directory, output in another folder: the written paths
    # must still point at the audio when the table is read back (relative to its own folder).
    monkeypatch.chdir(tmp_path)
    arguments = [
        "--systems", "systems/good", "--metrics", "si_snr,sdr",
        "--ref-dir", "systems/_reference", "--output", "labels/scores.jsonl", "--no-progress",
    ]  # fmt: skip
    assert score.main(arguments) == 0
    from sqa.data import load_records

    records = load_records(tmp_path / "labels" / "scores.jsonl")
    assert records and all(Path(record.path).is_file() for record in records)
    assert read_jsonl(tmp_path / "labels" / "scores.jsonl")[0]["audio_path"].startswith("/")
