"""The smoke stage of each recipe (`recipes/<name>/run.sh smoke`) end to end, outside the repo.

Each recipe runs its whole chain on synthetic data (espeak-ng speech, procedural noise, systems of
known quality order, a tiny or compact model) into a temporary ``WORK`` folder, with this venv's
``sqa``. The tests check the exit status and that the outputs exist and are sane; the numbers
themselves are not asserted (a few training steps on synthetic data rank nothing reliably).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sqa.fileio import read_rows

REPOSITORY = Path(__file__).resolve().parents[1]
TIMEOUT_SECONDS = 900
SMOKE_TEAMS = ("snr30", "snr20", "snr10", "snr5", "snr0")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="the smoke data needs espeak-ng"),
]


def run_smoke(recipe: str, work: Path) -> subprocess.CompletedProcess[str]:
    """Run ``recipes/<recipe>/run.sh smoke`` from the repository root with ``WORK=work``."""
    binaries = Path(sys.executable).parent
    environment = {
        **os.environ,
        "PATH": f"{binaries}{os.pathsep}{os.environ.get('PATH', '')}",
        "SQA": str(binaries / "sqa"),
        "PYTHON": sys.executable,
        "WORK": str(work),
    }
    return subprocess.run(
        ["bash", str(REPOSITORY / "recipes" / recipe / "run.sh"), "smoke"],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def untracked_files() -> set[str]:
    """Paths ``git status`` reports as new or changed in the repository (empty without git)."""
    if shutil.which("git") is None or not (REPOSITORY / ".git").exists():
        return set()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
    )
    return set(status.stdout.splitlines())


def smoke_run(recipe: str, factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run one smoke stage; assert exit 0 and no new files in the repository; (work, stdout)."""
    work = factory.mktemp(recipe) / "work"
    before = untracked_files()
    completed = run_smoke(recipe, work)
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert untracked_files() - before == set(), "the smoke stage wrote into the repository"
    return work, completed.stdout


@pytest.fixture(scope="module")
def track2_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The Track-2 recipe's smoke stage, run once for this module."""
    return smoke_run("track2", tmp_path_factory)


@pytest.fixture(scope="module")
def urgent_pk_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The URGENT-PK recipe's smoke stage, run once for this module."""
    return smoke_run("urgent_pk", tmp_path_factory)


def assert_finite_correlations(row: dict) -> None:
    """Utterance- and system-level LCC and SRCC of an evaluation row are finite, in [-1, 1]."""
    for statistic in ("utt_lcc", "utt_srcc", "sys_lcc", "sys_srcc"):
        value = float(row[statistic])
        assert math.isfinite(value) and -1.0 <= value <= 1.0, (statistic, row)


def test_track2_submission_validates(track2_run: tuple[Path, str]) -> None:
    from sqa.data import load_records
    from sqa.track2.submission import expected_sample_ids, validate_submission

    work, _ = track2_run
    evaluation = work / "data" / "smoke" / "test" / "data.jsonl"
    expected = expected_sample_ids(load_records(str(evaluation)))
    assert len(expected) == 16
    assert validate_submission(work / "submission.zip", expected) == []
    assert (work / "predictor" / "last.pt").is_file()
    predictions = read_rows(work / "predictions.jsonl")
    assert len(predictions) == len(expected)


def test_track2_evaluation_is_finite(track2_run: tuple[Path, str]) -> None:
    work, stdout = track2_run
    submitted = json.loads((work / "evaluation_mos.json").read_text())
    assert submitted["missing_predictions"] == []
    assert submitted["metrics"]["mos"]["count"] == 16
    assert_finite_correlations(submitted["metrics"]["mos"])
    every_metric = json.loads((work / "evaluation_all.json").read_text())["metrics"]
    assert set(every_metric) == {"mos", "pesq", "estoi", "sdr"}
    for row in every_metric.values():
        assert row["count"] == 16 and row["unlabelled"] == 0
        assert_finite_correlations(row)
    assert "is valid" in stdout


@pytest.mark.parametrize("scoring", ["bs", "nbs", "dnsmos"])
def test_urgent_pk_ranks_every_team(urgent_pk_run: tuple[Path, str], scoring: str) -> None:
    work, _ = urgent_pk_run
    ranking = read_rows(work / f"rank_pk_test_{scoring}.csv")
    assert sorted(row["system"] for row in ranking) == sorted(SMOKE_TEAMS)
    ranks = [int(row["rank"]) for row in ranking]  # best first; tied systems share a rank
    assert ranks == sorted(ranks) and ranks[0] == 1 and ranks[-1] <= len(SMOKE_TEAMS)
    scores = [float(row["ecs_score"]) for row in ranking]
    assert all(math.isfinite(score) for score in scores) and scores == sorted(scores, reverse=True)
    summary = json.loads((work / f"rank_pk_test_{scoring}_summary.json").read_text())
    correlation = summary["correlation_ecs"]
    assert correlation["systems"] == len(SMOKE_TEAMS)
    for statistic in ("krcc", "srcc", "lcc"):
        assert math.isfinite(correlation[statistic]), (statistic, correlation)


def first_column(path: Path) -> list[str]:
    """The first field of every non-empty line of a Kaldi-style ``.scp`` file."""
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def test_urgent_pk_layout_and_checkpoint(urgent_pk_run: tuple[Path, str]) -> None:
    work, stdout = urgent_pk_run
    for root, part in (("pk_train", "tr"), ("pk_test", "tt")):
        split = json.loads((work / root / "split.json").read_text())
        assert split[part], split
        for team in SMOKE_TEAMS:
            ids = first_column(work / root / team / "wav.scp")
            assert ids == first_column(work / root / team / "mos.scp")
            assert set(split[part]) <= set(ids)
    assert (work / "ranker" / "best.pt").is_file()
    assert stdout.count("system-level vs MOS (5 systems)") == 3
