"""``sqa track2``: README template, submission zip, validator, 3-category ranking."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from sqa.audio import save_audio
from sqa.checkpoint import save_checkpoint
from sqa.cli import main as sqa_main
from sqa.data import write_track2_jsonl
from sqa.data.records import AudioRecord
from sqa.errors import DataFormatError
from sqa.predictors import MODEL_KIND, TrunkConfig, UniVersa, UniVersaConfig
from sqa.synthetic import speech_like
from sqa.track2.submission import (
    README_KEYS,
    readme_template,
    validate_submission,
    write_submission,
)

TINY = TrunkConfig(num_layers=1, num_heads=2, d_model=16, ffn_dim=32, dropout=0.0)
FILLED = {
    "your_team_name": "team_x",
    "email_for_notifications": "team_x@example.org",
    "member_name": "A. Author",
    "member_affiliation": "Example University",
}


def _filled(text: str) -> str:
    """A README.yaml with every template placeholder replaced."""
    for placeholder, value in FILLED.items():
        text = text.replace(placeholder, value)
    return text


README = _filled(readme_template())


def _dataset(folder: Path, count: int = 4) -> tuple[Path, list[AudioRecord]]:
    records = []
    for index in range(count):
        path = save_audio(folder / f"f{index}.wav", speech_like(0.3, 16000, seed=index), 16000)
        records.append(
            AudioRecord(f"id{index}", f"sys{index % 2}", str(path), metrics={"mos": 1.0 + index})
        )
    return write_track2_jsonl(folder / "data.jsonl", records), records


def _zip(path: Path, scores_text: str, readme: str = README) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mos.scp", scores_text)
        archive.writestr("README.yaml", readme)
    return path


def test_validator_catches_missing_duplicate_extra_and_non_finite(tmp_path: Path):
    expected = ["a", "b", "c"]
    assert validate_submission(_zip(tmp_path / "ok.zip", "a 1.0\nb 2.5\nc 3\n"), expected) == []
    problems = validate_submission(
        _zip(tmp_path / "bad.zip", "a 1.0\na 2.0\nd nan\nb inf\n"), expected
    )
    text = " | ".join(problems)
    assert (
        "duplicate id 'a'" in text and "'d' is not finite" in text and "'b' is not finite" in text
    )
    assert "1 sample ids missing" in text and "not in the dataset" in text
    no_readme = tmp_path / "no_readme.zip"
    with zipfile.ZipFile(no_readme, "w") as archive:
        archive.writestr("mos.scp", "a 1\n")
    assert validate_submission(no_readme) == ["the zip lacks README.yaml at its root"]
    assert any(
        "lacks 'team_members'" in p
        for p in validate_submission(_zip(tmp_path / "r.zip", "a 1\n", "team: t\n"))
    )


def test_write_submission_refuses_invalid_scores_without_writing(tmp_path: Path):
    destination = tmp_path / "sub.zip"
    with pytest.raises(DataFormatError, match="not finite"):
        write_submission(destination, {"a": 1.0, "b": math.nan}, README, ["a", "b"])
    with pytest.raises(DataFormatError, match="missing"):
        write_submission(destination, {"a": 1.0}, README, ["a", "b"])
    assert not destination.exists()
    write_submission(destination, {"b": 2.0, "a": 1.0}, README, ["a", "b"])
    with zipfile.ZipFile(destination) as archive:
        assert archive.read("mos.scp").decode() == "b 2.000000\na 1.000000\n"


def test_template_and_submit_from_predictions(tmp_path: Path, capsys):
    data, records = _dataset(tmp_path)
    torch.manual_seed(0)
    model = UniVersa(UniVersaConfig(front_end="mel", trunk=TINY, metrics=("pesq",))).eval()
    checkpoint = save_checkpoint(tmp_path / "m.pt", model, model.config, kind=MODEL_KIND)
    template = tmp_path / "README.yaml"
    assert (
        sqa_main(["track2", "template", "--output", str(template), "--checkpoint", str(checkpoint)])
        == 0
    )
    fields = yaml.safe_load(template.read_text())
    assert set(README_KEYS) <= set(fields) and fields["model_size"].endswith("[M]")
    template.write_text(_filled(template.read_text()))
    # A checkpoint without a human-MOS head is refused with the available heads named.
    command = [
        "track2",
        "submit",
        "--checkpoint",
        str(checkpoint),
        "--data",
        str(data),
        "--readme",
        str(template),
    ]
    assert sqa_main([*command, "--output", str(tmp_path / "a.zip")]) == 2
    assert "no 'mos' head (available: pesq)" in capsys.readouterr().err
    assert sqa_main([*command, "--output", str(tmp_path / "a.zip"), "--metric", "pesq"]) == 0
    assert validate_submission(tmp_path / "a.zip", [r.sample_id for r in records]) == []
    predictions = tmp_path / "preds.jsonl"
    lines = [
        {"sample_id": r.sample_id, "system_id": r.system_id, "metrics": {"mos": 2.0 + i}}
        for i, r in enumerate(records)
    ]
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    output = tmp_path / "sub.zip"
    submit = [
        "track2",
        "submit",
        "--predictions",
        str(predictions),
        "--data",
        str(data),
        "--readme",
        str(template),
    ]
    assert sqa_main([*submit, "--output", str(output)]) == 0
    assert sqa_main(["track2", "validate", str(output), "--data", str(data)]) == 0
    with zipfile.ZipFile(output) as archive:
        assert archive.read("mos.scp").decode().splitlines() == [
            f"id{i} {2.0 + i:.6f}" for i in range(4)
        ]


def test_rank_orders_submissions_by_three_categories(tmp_path: Path, capsys):
    data, records = _dataset(tmp_path, count=6)
    labels = [r.metrics["mos"] for r in records]
    good = tmp_path / "good.scp"
    good.write_text(
        "".join(f"{r.sample_id} {y + 0.1}\n" for r, y in zip(records, labels, strict=True))
    )
    noisy = tmp_path / "noisy.scp"
    noisy.write_text(
        "".join(
            f"{r.sample_id} {y + (1.5 if i % 2 else -1.0)}\n"
            for i, (r, y) in enumerate(zip(records, labels, strict=True))
        )
    )
    reverse = tmp_path / "reverse.scp"
    reverse.write_text(
        "".join(f"{r.sample_id} {7 - y}\n" for r, y in zip(records, labels, strict=True))
    )
    output = tmp_path / "ranking.csv"
    arguments = ["track2", "rank", "--ref", str(data), "--output", str(output)]
    for name, path in (("reverse", reverse), ("good", good), ("noisy", noisy)):
        arguments += ["--submission", f"{name}={path}"]
    assert sqa_main(arguments) == 0
    lines = output.read_text().splitlines()
    header = lines[0].split(",")
    order = [line.split(",")[header.index("submission")] for line in lines[1:]]
    assert order == ["good", "noisy", "reverse"]
    assert {"rank_error", "rank_linear", "rank_rank", "utt_mse", "sys_ktau"} <= set(header)
