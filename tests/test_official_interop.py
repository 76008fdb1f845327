"""Files in the official tools' layouts, as they are: paths, exit status, Track-2 references,
mos.scp predictions, the official evaluator's edge cases and ranking, README.yaml checks."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy import stats as scipy_stats

from sqa.cli import main as sqa_main
from sqa.commands import evaluate, score
from sqa.data.records import set_path_rule
from sqa.stats import rank_systems
from sqa.synthetic import write_system_folders
from sqa.track2.submission import (
    HIGHER_IS_BETTER,
    RANKING_CATEGORIES,
    readme_template,
    validate_submission,
)

RATE = 16000


@pytest.fixture(autouse=True)
def _default_path_rule():
    yield
    set_path_rule("auto")


def _official_tree(root: Path) -> list[dict[str, object]]:
    """``db/systems/<system>/<utt>.wav`` plus rows whose ``audio_path`` is relative to ``root``
    (the working directory of the official data preparation)."""
    write_system_folders(
        root / "db" / "systems",
        {"system_a": 20.0, "system_b": 5.0},
        2,
        duration=0.5,
        sample_rate=RATE,
    )
    rows = []
    for path in sorted((root / "db" / "systems").glob("system_*/*.wav")):
        rows.append(
            {
                "audio_path": str(path.relative_to(root)),
                "system_id": path.parent.name,
                "sample_id": path.stem,
                "metrics": {},
            }
        )
    return rows


def _official_loader(listing: Path) -> list[np.ndarray]:
    """What the official loaders do with a listing: open every ``audio_path`` as given."""
    audio = []
    for line in listing.read_text().splitlines():
        audio.append(soundfile.read(json.loads(line)["audio_path"])[0])
    return audio


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_cwd_relative_official_listing_is_read_and_our_output_opens_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    listing = _write_jsonl(tmp_path / "data" / "test" / "data.jsonl", _official_tree(tmp_path))
    output = tmp_path / "exp" / "scores.jsonl"
    with pytest.warns(UserWarning, match="relative to the working directory") as caught:
        code = score.main(
            [
                "--data",
                str(listing),
                "--metrics",
                "si_snr,lsd",
                "--no-progress",
                "--ref-dir",
                "db/systems/_reference",
                "-o",
                str(output),
            ]
        )
    assert code == 0
    assert len([w for w in caught if "working directory" in str(w.message)]) == 1  # once
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 4 and all(math.isfinite(row["metrics"]["lsd"]) for row in rows)
    # Our paths are absolute by default: the official loader opens them from anywhere.
    assert all(Path(row["audio_path"]).is_absolute() for row in rows)
    monkeypatch.chdir(tmp_path / "exp")
    assert len(_official_loader(output)) == 4


def test_paths_relative_to_cwd_are_written_as_the_official_preparation_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    listing = _write_jsonl(tmp_path / "lists" / "data.jsonl", _official_tree(tmp_path))
    output = tmp_path / "exp" / "scores.jsonl"

    def arguments(rule: str, destination: str) -> list[str]:
        common = ["--data", str(listing), "--metrics", "lsd", "--no-progress", "--paths", rule]
        return [*common, "--ref-dir", "db/systems/_reference", "-o", destination]

    assert score.main(arguments("relative-to-cwd", str(output))) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert rows[0]["audio_path"] == "db/systems/system_a/utt000.wav"
    assert len(_official_loader(output)) == 4
    # relative-to-listing does not fall back to the working directory
    assert sqa_main(["score", *arguments("relative-to-listing", "x.jsonl")]) == 1


def test_score_exits_non_zero_when_nothing_usable(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "systems" / "broken"
    folder.mkdir(parents=True)
    for name in ("a.wav", "b.wav"):
        (folder / name).write_bytes(b"not audio at all")
    output = tmp_path / "scores.jsonl"
    code = sqa_main(
        [
            "score",
            "--systems",
            str(folder),
            "--metrics",
            "plcmos",
            "--no-progress",
            "-o",
            str(output),
        ]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and not output.exists()
    assert error[-1].startswith("sqa score: error: no usable value: all 2 file(s) failed")
    assert (tmp_path / "scores.jsonl.errors.jsonl").is_file()


def _references(tmp_path: Path, labels: dict[str, float]) -> Path:
    """References in the schema of the official eval.py: ids and metrics, no audio_path."""
    rows = [
        {"sample_id": sample, "system_id": sample.split("-")[0], "metrics": {"mos": value}}
        for sample, value in labels.items()
    ]
    return _write_jsonl(tmp_path / "ref.jsonl", rows)


LABELS = {
    f"sys{s}-utt{u}": 1.0 + s + 0.3 * u + 0.1 * ((s * u) % 3) for s in range(3) for u in range(4)
}


def test_evaluate_takes_reference_rows_without_audio_and_mos_scp(tmp_path: Path, capsys) -> None:
    reference = _references(tmp_path, LABELS)
    predictions = tmp_path / "mos.scp"
    predictions.write_text(
        "".join(f"{k} {v + 0.2 * math.sin(i)}\n" for i, (k, v) in enumerate(LABELS.items()))
    )
    arguments = ["--pred", str(predictions), "--ref", str(reference), "--ref-metric", "mos"]
    assert evaluate.main([*arguments, "--output", str(tmp_path / "r.json")]) == 0
    from_scp = json.loads((tmp_path / "r.json").read_text())["metrics"]["mos"]
    rows = [
        {"sample_id": k, "system_id": k.split("-")[0], "metrics": {"score": float(line.split()[1])}}
        for k, line in zip(LABELS, predictions.read_text().splitlines(), strict=True)
    ]
    table = _write_jsonl(tmp_path / "results.jsonl", rows)
    assert (
        evaluate.main(
            [
                "--pred",
                str(table),
                "--ref",
                str(reference),
                "--ref-metric",
                "mos",
                "--pred-metric",
                "score",
                "--output",
                str(tmp_path / "s.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "s.json").read_text())["metrics"]["mos"] == from_scp
    assert from_scp["count"] == 12 and from_scp["utt_lcc"] > 0.9


def test_evaluate_reports_references_left_out(tmp_path: Path, capsys) -> None:
    reference = _references(tmp_path, {**LABELS, "sys0-utt0": math.nan})
    predictions = _write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"sample_id": k, "system_id": k.split("-")[0], "metrics": {"mos": v}}
            for k, v in LABELS.items()
        ],
    )
    assert evaluate.main(["--pred", str(predictions), "--ref", str(reference)]) == 0
    assert (
        "1 reference row(s) without a finite 'mos' label were left out" in capsys.readouterr().err
    )


def _official_numbers(rows: list[tuple[str, str, float]], labels: dict[str, float]) -> dict:
    """The official algorithm, written out from its description: a left join of predictions on
    references keeps duplicates, utterance statistics over the joined rows (NaN propagates),
    system means that skip NaN (pandas ``mean``)."""
    predictions = np.array([value for _, _, value in rows])
    references = np.array([labels[sample] for _, sample, _ in rows])
    systems = sorted({system for system, _, _ in rows})

    def four(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        return {
            "mse": float(np.mean((x - y) ** 2)),
            "lcc": float(np.corrcoef(x, y)[0, 1]),
            "srcc": float(scipy_stats.spearmanr(x, y).statistic),
            "ktau": float(scipy_stats.kendalltau(x, y).statistic),
        }

    member = [np.array([system == s for s, _, _ in rows]) for system in systems]
    system_predictions = np.array([np.nanmean(predictions[m]) for m in member])
    system_references = np.array([references[m].mean() for m in member])
    utterance, system = four(predictions, references), four(system_predictions, system_references)
    return {
        **{f"utt_{k}": v for k, v in utterance.items()},
        **{f"sys_{k}": v for k, v in system.items()},
    }


def _evaluate_official(predictions: Path, reference: Path, output: Path) -> dict:
    """``sqa evaluate --official``'s numbers for the reference metric ``mos``."""
    arguments = ["--pred", str(predictions), "--ref", str(reference), "--official"]
    assert evaluate.main([*arguments, "--output", str(output)]) == 0
    return json.loads(output.read_text())["metrics"]["mos"]


def test_official_mode_propagates_nan_and_counts_duplicates(tmp_path: Path) -> None:
    reference = _references(tmp_path, LABELS)
    rows = [
        (k.split("-")[0], k, v + 0.3 * math.cos(3 * i)) for i, (k, v) in enumerate(LABELS.items())
    ]
    rows += [rows[0], rows[5]]  # duplicates
    rows[3] = (rows[3][0], rows[3][1], math.nan)
    predictions = _write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"sample_id": sample, "system_id": system, "metrics": {"mos": value}}
            for system, sample, value in rows
        ],
    )
    ours = _evaluate_official(predictions, reference, tmp_path / "official.json")
    expected = _official_numbers(rows, LABELS)
    for key, value in expected.items():
        if math.isnan(value):
            assert ours[key] is None, key  # NaN is written as null
        else:
            assert ours[key] == pytest.approx(value, abs=1e-12), key
    assert all(ours[f"utt_{name}"] is None for name in ("mse", "lcc", "srcc", "ktau"))
    assert ours["count"] == 14
    # Without --official: the duplicate is refused, never counted twice.
    assert sqa_main(["evaluate", "--pred", str(predictions), "--ref", str(reference)]) == 2


# Eight statistics of four submissions where the two procedures disagree: averaging category
# averages puts T1 first alone; ranking each category average again ties T1, T2 and T4.
CASE = {
    "T1": (0.4, 0.2, 0.4, 0.3, 0.3, 0.2, 0.3, 0.2),
    "T2": (0.1, 0.3, 0.3, 0.1, 0.2, 0.3, 0.3, 0.3),
    "T3": (0.4, 0.2, 0.1, 0.2, 0.4, 0.3, 0.3, 0.1),
    "T4": (0.2, 0.4, 0.4, 0.1, 0.4, 0.4, 0.4, 0.2),
}
KEYS = ("sys_mse", "utt_mse", "sys_lcc", "utt_lcc", "sys_srcc", "utt_srcc", "sys_ktau", "utt_ktau")


def test_official_ranking_reranks_category_averages() -> None:
    scores = {name: dict(zip(KEYS, values, strict=True)) for name, values in CASE.items()}
    averaged = rank_systems(scores, RANKING_CATEGORIES, HIGHER_IS_BETTER)
    official = rank_systems(scores, RANKING_CATEGORIES, HIGHER_IS_BETTER, rerank_categories=True)
    assert averaged.final_rank == {"T1": 1, "T2": 3, "T3": 4, "T4": 2}
    assert official.category_ranks["error"] == {"T1": 2.0, "T2": 1.0, "T3": 2.0, "T4": 3.0}
    assert official.final_rank == {"T1": 1, "T2": 1, "T3": 2, "T4": 1}


def _zip(path: Path, readme: str, ids: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mos.scp", "".join(f"{i} 3.0\n" for i in ids))
        archive.writestr("README.yaml", readme)
    return path


def test_empty_readme_warns_on_validate_and_placeholders_are_refused_on_submit(
    tmp_path: Path, capsys
) -> None:
    example = _zip(tmp_path / "example.zip", "", ["a", "b"])  # the organisers' example: empty
    with pytest.warns(UserWarning, match="README.yaml is empty"):
        assert validate_submission(example) == []
    template = tmp_path / "README.yaml"
    template.write_text(readme_template())
    scores = tmp_path / "mos.scp"
    scores.write_text("a 3.1\nb 2.9\n")
    code = sqa_main(
        [
            "track2",
            "submit",
            "--predictions",
            str(scores),
            "--readme",
            str(template),
            "--output",
            str(tmp_path / "s.zip"),
        ]
    )
    assert code == 2 and not (tmp_path / "s.zip").exists()
    assert "template placeholder(s): email_for_notifications" in capsys.readouterr().err


def _ranked_systems(output: Path) -> list[str]:
    return [row["system"] for row in (json.loads(line) for line in output.read_text().splitlines())]


def _quality_table(root: Path) -> Path:
    """Per-file scores that order the systems s1 > s2 > s3 (any scalar scorer would do)."""
    quality = {"s1": 4.0, "s2": 3.0, "s3": 2.0}
    rows = [
        {
            "system_id": system,
            "sample_id": f"utt{index:03d}",
            "utterance_id": f"utt{index:03d}",
            "metrics": {"q": value + 0.01 * index},
        }
        for system, value in quality.items()
        for index in range(3)
    ]
    return _write_jsonl(root / "scores.jsonl", rows)


def test_rank_root_skips_reference_folders_and_reads_listings(tmp_path: Path) -> None:
    from sqa.data import load_records, write_kaldi_dir, write_track2_jsonl, write_urgentpk

    write_system_folders(
        tmp_path / "systems", {"s1": 30.0, "s2": 10.0, "s3": 0.0}, 3, duration=0.3, sample_rate=RATE
    )
    scores = _quality_table(tmp_path)
    common = ["--scores", str(scores), "--score-column", "q", "--bootstrap", "20"]
    output = tmp_path / "ranking.jsonl"
    with pytest.warns(UserWarning, match="reference folder"):
        assert (
            sqa_main(
                ["rank", "--root", str(tmp_path / "systems"), *common, "--output", str(output)]
            )
            == 0
        )
    assert _ranked_systems(output) == ["s1", "s2", "s3"]  # _reference is not a system
    records = load_records(scores)
    for record in records:
        record.path = str(tmp_path / "systems" / record.system_id / f"{record.sample_id}.wav")
    listings = {
        "urgentpk": write_urgentpk(tmp_path / "pk", records) and tmp_path / "pk",
        "kaldi": write_kaldi_dir(tmp_path / "kaldi", records) and tmp_path / "kaldi",
        "track2": write_track2_jsonl(tmp_path / "data.jsonl", records),
    }
    for name, listing in listings.items():
        destination = tmp_path / f"ranking_{name}.jsonl"
        for flag in ("--data", "--root"):
            assert (
                sqa_main(
                    ["rank", flag, str(listing), *common, "--output", str(destination), "--force"]
                )
                == 0
            ), (name, flag)
            assert _ranked_systems(destination) == ["s1", "s2", "s3"], (name, flag)


def test_official_urgentpk_split_with_tt_overlapping_tr_is_accepted(tmp_path: Path) -> None:
    from sqa.data import read_split
    from sqa.errors import DataFormatError

    split = tmp_path / "split.json"
    ids = [f"utt{i}" for i in range(5)]
    split.write_text(json.dumps({"tr": ids[:4], "cv": ids[4:], "tt": ids}))  # as the official
    with pytest.warns(UserWarning, match="5 of the 5 'tt' ids are also training"):
        assert read_split(split)["tt"] == ids
    split.write_text(json.dumps({"tr": ids[:4], "cv": ids[3:]}))
    with pytest.raises(DataFormatError, match="in both 'tr' and 'cv'"):
        read_split(split)


def test_rank_reads_an_official_track2_listing_and_flags_a_foreign_system(tmp_path: Path) -> None:
    # Official Track-2 lists name files uniquely per system and carry no utterance_id.
    write_system_folders(
        tmp_path / "db", {"s1": 30.0, "s2": 10.0, "s3": 0.0}, 3, duration=0.3, sample_rate=RATE
    )
    rows, scores = [], []
    for system, quality in (("s1", 4.0), ("s2", 3.0), ("s3", 2.0)):
        for index in range(3):
            sample = f"urgent25_{system}_x_fileid{index}"
            audio = str(tmp_path / "db" / system / f"utt{index:03d}.wav")
            rows.append({"audio_path": audio, "system_id": system, "sample_id": sample})
            scores.append({"system_id": system, "sample_id": sample, "metrics": {"q": quality}})
    listing = _write_jsonl(tmp_path / "data.jsonl", rows)
    table = _write_jsonl(tmp_path / "q.jsonl", scores)
    output = tmp_path / "ranking.jsonl"
    arguments = [
        "rank",
        "--data",
        str(listing),
        "--scores",
        str(table),
        "--score-column",
        "q",
        "--bootstrap",
        "10",
        "--output",
        str(output),
    ]
    assert sqa_main(arguments) == 0
    assert _ranked_systems(output) == ["s1", "s2", "s3"]
    from sqa.data.folders import homologous_from_records
    from sqa.data.records import AudioRecord

    records = [AudioRecord(f"u{i}", s, "x.wav") for s in ("a", "b") for i in range(10)]
    records += [AudioRecord(f"other{i}", "c", "x.wav") for i in range(8)] + [
        AudioRecord(f"u{i}", "c", "x.wav") for i in range(2)
    ]
    with pytest.warns(UserWarning) as caught:
        homologous_from_records(records)
    flagged = [str(w.message) for w in caught if "homologous" in str(w.message)]
    assert len(flagged) == 1 and "system 'c' shares only 2 of its 10" in flagged[0]


def test_official_mode_reads_zips_and_tab_separated_scp(tmp_path: Path) -> None:
    reference = _references(tmp_path, LABELS)
    lines = "".join(f"{k}\t{v + 0.1 * (i % 3)}\n" for i, (k, v) in enumerate(LABELS.items()))
    scp = tmp_path / "mos.scp"
    scp.write_text(lines)
    archive = tmp_path / "submission.zip"
    with zipfile.ZipFile(archive, "w") as stream:
        stream.writestr("mos.scp", lines)
        stream.writestr("README.yaml", "team: t\n")
    reports = []
    for predictions in (scp, archive):
        output = tmp_path / f"{predictions.suffix[1:]}.json"
        reports.append(_evaluate_official(predictions, reference, output))
    assert reports[0] == reports[1] and reports[0]["count"] == len(LABELS)
    with pytest.raises(Exception, match="one metric"):
        evaluate.main(
            [
                "--pred",
                str(scp),
                "--ref",
                str(reference),
                "--official",
                "--metric",
                "mos",
                "--metric",
                "pesq",
            ]
        )
