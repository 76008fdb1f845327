"""`sqa train-predictor`: warm-up scaled to short runs, a step progress bar on stderr, and the
Track-2 baseline's options (linear decay, unstandardised targets)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from sqa.errors import SqaError
from sqa.predictors import TrunkConfig, UniVersaConfig
from sqa.predictors.schedule import (
    bar_postfix,
    effective_warmup,
    schedule_factor,
    total_steps,
    warmup_factor,
)
from sqa.predictors.train import PredictorTrainer, TrainConfig
from sqa.synthetic import write_labelled_clips

TINY = TrunkConfig(num_layers=1, num_heads=2, d_model=16, ffn_dim=32, dropout=0.0)


def _record_learning_rates(trainer: PredictorTrainer) -> list[float]:
    """The list that receives the learning rate of every update ``trainer`` makes from now on."""
    applied: list[float] = []
    step = trainer.optimizer.step

    def recording_step(*arguments: object, **keywords: object) -> object:
        applied.append(trainer.optimizer.param_groups[0]["lr"])
        return step(*arguments, **keywords)

    trainer.optimizer.step = recording_step  # type: ignore[method-assign]
    return applied


def test_total_steps_and_warmup_scaling() -> None:
    assert total_steps(0, 3, 7) == 21
    assert total_steps(30, 1000, 4) == 30
    assert total_steps(100, 2, 4) == 8
    assert effective_warmup(25000, 30, announce=False) == 3  # 10 % of a 30-step run
    assert effective_warmup(25000, 4, announce=False) == 1  # never below one step
    assert effective_warmup(5, 60, announce=False) == 5  # long enough: unchanged
    assert effective_warmup(0, 10, announce=False) == 0
    assert [warmup_factor(step, 3) for step in range(4)] == pytest.approx([1 / 3, 2 / 3, 1, 1])
    assert bar_postfix(float("nan"), 1e-3) == {"loss": "skipped", "lr": "1.00e-03"}


def _tiny_data(folder: Path) -> Path:
    return write_labelled_clips(folder, 2, noise_step=0.05)


@pytest.fixture()
def restore_threads() -> Iterator[None]:
    """The run sets one torch thread (fast on a busy machine); give the others theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_short_run_scales_warmup_and_shows_a_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_threads: None
) -> None:
    config = TrainConfig(
        train=(str(_tiny_data(tmp_path)),), output_dir=str(tmp_path / "run"),
        model=UniVersaConfig(front_end="mel", trunk=TINY, metrics=("mos",)),
        learning_rate=1e-3, max_steps=20, epochs=1000, batch_seconds=4.0, valid_every=1000,
        num_threads=1,
    )  # fmt: skip
    assert config.warmup_steps == 25000  # the paper's default, far longer than this run
    trainer = PredictorTrainer(config)
    assert (trainer.total_steps, trainer.warmup_steps) == (20, 2)
    applied = _record_learning_rates(trainer)
    assert trainer.run()["step"] == 20
    assert applied == pytest.approx([5e-4] + [1e-3] * 19)
    error = capsys.readouterr().err
    assert "fewer than the warm-up of 25000; warming up over 2 steps (10% of the run)" in error
    assert "sqa train-predictor" in error and "20/20" in error
    assert "lr=1.00e-03" in error and "loss=" in error
    logged = [
        json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    ]
    assert {row["warmup_steps"] for row in logged if "train_loss" in row} == {2}  # in the log


def test_linear_schedule_decays_to_zero_after_the_warm_up() -> None:
    linear = [schedule_factor(step, 2, 6, "linear") for step in range(6)]
    assert linear == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
    constant = [schedule_factor(step, 2, 6, "constant") for step in range(6)]
    assert constant == pytest.approx([0.5, 1, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="cosine"):
        schedule_factor(0, 2, 6, "cosine")


def _trainer_config(tmp_path: Path, **settings: object) -> TrainConfig:
    return TrainConfig(
        train=(str(_tiny_data(tmp_path)),), output_dir=str(tmp_path / "run"),
        model=UniVersaConfig(front_end="mel", trunk=TINY, metrics=("mos", "sdr")),
        max_steps=4, epochs=1000, batch_seconds=4.0, valid_every=1000, num_threads=1,
        warmup_steps=1, **settings,
    )  # fmt: skip


def test_track2_baseline_options_unstandardised_targets_and_linear_decay(
    tmp_path: Path, restore_threads: None
) -> None:
    standardised = PredictorTrainer(_trainer_config(tmp_path / "a"))
    assert standardised.model.target_std.tolist() != [1.0, 1.0]  # the default: label statistics
    trainer = PredictorTrainer(
        _trainer_config(tmp_path / "b", standardise_targets=False, lr_schedule="linear")
    )
    assert trainer.model.target_mean.tolist() == [0.0, 0.0]
    assert trainer.model.target_std.tolist() == [1.0, 1.0]
    applied = _record_learning_rates(trainer)
    trainer.run()
    assert applied == pytest.approx([1e-3, 1e-3, 2e-3 / 3, 1e-3 / 3])
    with pytest.raises(SqaError, match="lr_schedule must be one of constant, linear"):
        PredictorTrainer(_trainer_config(tmp_path / "c", lr_schedule="cosine"))
