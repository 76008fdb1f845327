"""A teacher whose package is missing gives NaN plus one stderr line; the other metrics go on."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sqa.commands import score
from sqa.compat import torchaudio_fallback
from sqa.fileio import read_jsonl
from sqa.metrics import torch_models
from sqa.metrics.runner import ScoreTask, run_tasks
from sqa.metrics.scorer import MetricScorer, ScoringOptions
from sqa.synthetic import speech_like, write_system_folders

RATE = 16000


@pytest.fixture()
def fresh_distill_mos(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget the cached Distill-MOS model and torchaudio mode (before and after the test)."""
    torch_models.distill_mos_model.cache_clear()
    monkeypatch.setattr(torchaudio_fallback, "_MODE", None)
    yield
    torch_models.distill_mos_model.cache_clear()


def _hide(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``import package`` raise ``ModuleNotFoundError`` (as if it were not installed)."""
    for name in [name for name in sys.modules if name.split(".")[0] == package]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)


def test_missing_distillmos_is_nan_with_install_hint(
    monkeypatch: pytest.MonkeyPatch, fresh_distill_mos: None
) -> None:
    _hide(monkeypatch, "distillmos")
    clean = speech_like(1.0, seed=0)
    scorer = MetricScorer(["si_snr", "distill_mos"])
    for _ in range(2):  # the second file reuses the verdict instead of importing again
        result = scorer.score(clean + 0.01, RATE, clean)
        assert math.isfinite(result.values["si_snr"])
        assert math.isnan(result.values["distill_mos"])
    reason = result.errors["distill_mos"]
    assert "distillmos" in reason and 'pip install "sqa-suite[metrics]"' in reason
    assert set(scorer.unavailable) == {"distill_mos"}


def test_missing_torchaudio_names_torchaudio(
    monkeypatch: pytest.MonkeyPatch, fresh_distill_mos: None
) -> None:
    _hide(monkeypatch, "torchaudio")
    result = MetricScorer(["distill_mos"]).score(speech_like(1.0, seed=1), RATE)
    reason = result.errors["distill_mos"]
    assert math.isnan(result.values["distill_mos"])
    assert "torchaudio is not installed" in reason and "pip install torchaudio" in reason
    assert "make install" not in reason


def test_missing_plain_import_names_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "pesq")
    clean = speech_like(1.0, seed=2)
    result = MetricScorer(["pesq", "sdr"]).score(clean, RATE, clean)
    assert math.isnan(result.values["pesq"]) and math.isfinite(result.values["sdr"])
    assert "'pesq', which is not installed" in result.errors["pesq"]
    assert "(or: pip install pesq)" in result.errors["pesq"]


def test_run_tasks_announces_once_and_keeps_entries_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _hide(monkeypatch, "pesq")
    write_system_folders(tmp_path, {"a": 10.0}, 3, duration=1.0, sample_rate=RATE)
    tasks = [
        ScoreTask("a", path.stem, str(path), str(tmp_path / "_reference" / path.name))
        for path in sorted((tmp_path / "a").glob("*.wav"))
    ]
    entries = list(run_tasks(tasks, ["pesq", "si_snr"], ScoringOptions(), jobs=0, progress=False))
    assert len(entries) == 3 and all("unavailable" not in entry for entry in entries)
    assert all(math.isnan(entry["metrics"]["pesq"]) for entry in entries)
    assert all(np.isfinite(entry["metrics"]["si_snr"]) for entry in entries)
    lines = [line for line in capsys.readouterr().err.splitlines() if "unavailable" in line]
    assert len(lines) == 1
    assert lines[0].startswith("sqa score: pesq unavailable (NaN)") and "pip install" in lines[0]


def test_sqa_score_finishes_without_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _hide(monkeypatch, "pesq")
    write_system_folders(tmp_path / "s", {"a": 10.0, "b": 0.0}, 2, duration=1.0, sample_rate=RATE)
    output = tmp_path / "scores.jsonl"
    arguments = [
        "--systems", str(tmp_path / "s" / "a"), str(tmp_path / "s" / "b"),
        "--ref-dir", str(tmp_path / "s" / "_reference"),
        "--metrics", "pesq,sdr", "--output", str(output), "--no-progress",
        "--jobs", "0",  # the package is hidden in this process only
    ]  # fmt: skip
    assert score.main(arguments) == 0
    rows = read_jsonl(output)
    assert len(rows) == 4 and all(math.isfinite(row["metrics"]["sdr"]) for row in rows)
    assert all("pesq" not in row["metrics"] for row in rows)  # a failed value is left out
    error = capsys.readouterr().err
    assert sum("pesq unavailable" in line for line in error.splitlines()) == 1
