"""SQA-guided fine-tuning: loss contracts, frozen critics, one-step descent, guard, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from se_finetune.bsrnn import BSRNN, BSRNNConfig
from se_finetune.finetune import Finetuner
from se_finetune.finetune_config import FinetuneConfig, LossWeights
from se_finetune.guard import GuardConfig, RewardHackingGuard
from se_finetune.losses import (
    FrozenCritic,
    FrozenRanker,
    MultiResolutionSpectralLoss,
    feature_loss,
    metric_directions,
    rank_loss,
    score_loss,
)
from sqa.audio import save_audio
from sqa.errors import SqaError
from sqa.simulation.simulate import SimulationConfig
from sqa.synthetic import speech_like

RATE = 16000
TINY = BSRNNConfig(sample_rate=RATE, num_channels=8, num_layers=1, mask_hidden_factor=2)


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    # The suite runs on shared CPUs; several intra-op threads only spin against each other.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class _Output(NamedTuple):
    scores: dict[str, torch.Tensor]
    hidden: torch.Tensor


class StandInCritic(nn.Module):
    """Follows the predictor contract; "pesq" rewards a 1 kHz tone, "lsd" penalises loudness."""

    sample_rate = RATE
    metric_names = ("pesq", "lsd")

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv1d(1, 4, 64, stride=32)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> _Output:
        hidden = torch.tanh(self.embed(waveform[:, None])).mean(dim=2)
        tone = torch.sin(2 * torch.pi * 1000 * torch.arange(waveform.shape[1]) / RATE)
        similarity = (waveform * tone).mean(1) / (waveform.pow(2).mean(1).sqrt() + 1e-6)
        return _Output({"pesq": similarity, "lsd": waveform.pow(2).mean(1)}, hidden)


class StandInRanker(nn.Module):
    """Follows the ranker contract: prefers the quieter input."""

    sample_rate = RATE

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, first, second, lengths_first, lengths_second):
        logit = self.scale * (second.pow(2).mean(1) - first.pow(2).mean(1))
        return type("RankerOutput", (), {"logit": logit})()


@pytest.fixture()
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    clean = torch.from_numpy(np.stack([speech_like(0.5, RATE, seed=s) for s in range(2)]))
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    return noisy, clean


def _restorer(seed: int = 0) -> BSRNN:
    torch.manual_seed(seed)
    return BSRNN(TINY)


def test_directions_come_from_the_metric_registry() -> None:
    assert metric_directions(["pesq", "lsd", "dnsmos_ovrl"]) == {
        "pesq": -1.0,
        "lsd": 1.0,
        "dnsmos_ovrl": -1.0,
    }
    scores = {"pesq": torch.tensor([3.0, 4.0]), "lsd": torch.tensor([1.0, 2.0])}
    loss = score_loss(scores, {"pesq": 2.0, "lsd": 0.5})
    assert float(loss) == pytest.approx(np.mean([-2 * 3 + 0.5 * 1, -2 * 4 + 0.5 * 2]))
    with pytest.raises(SqaError, match="does not predict"):
        score_loss(scores, {"sdr": 1.0})


def test_spectral_loss_is_zero_for_identical_signals_and_positive_otherwise(batch) -> None:
    noisy, clean = batch
    loss = MultiResolutionSpectralLoss(RATE, time_weight=1.0)
    assert float(loss(clean, clean)) == 0.0
    assert float(loss(noisy, clean)) > 0.0
    assert len(MultiResolutionSpectralLoss(48000).resolutions) == 4
    assert MultiResolutionSpectralLoss(48000).resolutions[0] == (768, 192)


def test_gradients_reach_the_restorer_but_not_the_critics(batch) -> None:
    noisy, clean = batch
    restorer, critic = _restorer(), FrozenCritic(StandInCritic(), input_rate=48000)
    ranker = FrozenRanker(StandInRanker(), input_rate=48000)
    critic.train()  # a frozen critic stays in eval mode
    assert not critic.critic.training
    enhanced = restorer(noisy, RATE)
    output = critic(enhanced)
    loss = score_loss(output.scores, {"pesq": 1.0, "lsd": 1.0})
    loss = (
        loss
        + feature_loss(output.hidden, critic(clean).hidden)
        + rank_loss(ranker(enhanced, noisy))
    )
    loss.backward()
    assert all(p.grad is not None for p in restorer.parameters() if p.requires_grad)
    assert sum(float(p.grad.abs().sum()) for p in restorer.parameters()) > 0
    for module in (critic, ranker):
        assert all(not p.requires_grad and p.grad is None for p in module.parameters())


def _one_step_reduces(name: str, compute) -> None:
    restorer = _restorer(seed=3)
    optimizer = torch.optim.Adam(restorer.parameters(), lr=1e-3)
    before = compute(restorer)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = compute(restorer)
    assert float(after) < float(before.detach()), name


def test_one_step_with_each_loss_reduces_it(batch) -> None:
    noisy, clean = batch
    critic = FrozenCritic(StandInCritic(), input_rate=RATE)
    ranker = FrozenRanker(StandInRanker(), input_rate=RATE)
    spectral = MultiResolutionSpectralLoss(RATE)
    reference = _restorer(seed=9).eval()
    with torch.no_grad():
        initial_output = reference(noisy, RATE)
        clean_hidden = critic(clean).hidden
    weights = {"pesq": 1.0, "lsd": 1.0}
    losses = {
        "spec": lambda model: spectral(model(noisy, RATE), clean),
        "score": lambda model: score_loss(critic(model(noisy, RATE)).scores, weights),
        "feat": lambda model: feature_loss(critic(model(noisy, RATE)).hidden, clean_hidden),
        "reg": lambda model: spectral(model(noisy, RATE), initial_output),
        "rank": lambda model: rank_loss(ranker(model(noisy, RATE), initial_output)),
    }
    for name, compute in losses.items():
        _one_step_reduces(name, compute)


def _corpus(root) -> None:
    for index in range(3):
        save_audio(root / "speech" / f"s{index}.wav", speech_like(0.5, RATE, seed=index), RATE)
        noise = 0.05 * np.random.default_rng(index).standard_normal(RATE // 2)
        save_audio(root / "noise" / f"n{index}.wav", noise, RATE)
        save_audio(
            root / "real" / f"r{index}.wav",
            speech_like(0.5, RATE, seed=10 + index) + 0.5 * noise,
            RATE,
        )


def _config(root, **changes) -> FinetuneConfig:
    base = FinetuneConfig(
        output_dir=str(root / "run"),
        model=TINY,
        speech_dir=str(root / "speech"),
        noise_dir=str(root / "noise"),
        rir_dir=None,
        holdout_every=0,
        batch_size=2,
        steps=2,
        simulation=SimulationConfig(segment_seconds=0.5, codec_probability=0.0),
        eval_interval=100,
        eval_count=2,
        eval_metrics=("sdr",),
        real_eval_metrics=(),
        checkpoint_interval=1,
        guard_interval=1,
        guard_clips=2,
        learning_rate=1e-3,
    )
    return FinetuneConfig(**{**vars(base), **changes})


def test_reg_loss_is_zero_at_the_start_of_fine_tuning(tmp_path) -> None:
    _corpus(tmp_path)
    config = _config(
        tmp_path,
        real_dir=str(tmp_path / "real"),
        real_ratio=1.0,
        weights=LossWeights(spec=0.0, score=1.0, reg=1.0),
    )
    finetuner = Finetuner(config, restorer=_restorer(), critic=FrozenCritic(StandInCritic(), RATE))
    kind, noisy, target = finetuner.batch(0)
    assert kind == "real" and target is None
    terms = finetuner.losses(kind, noisy, target)
    assert float(terms["reg"].detach()) == 0.0
    assert "spec" not in terms and "score" in terms


def test_guard_fires_on_a_synthetic_collapse() -> None:
    speech = torch.from_numpy(np.stack([speech_like(1.0, RATE, seed=s) for s in range(3)]))
    guard = RewardHackingGuard(GuardConfig(patience=2), speech, RATE)
    slightly_changed = 0.9 * speech + 0.003 * torch.randn(speech.shape)
    assert not guard.check(slightly_changed, step=1).failing
    tone = 0.3 * torch.sin(2 * torch.pi * 1000 * torch.arange(RATE) / RATE).expand(3, -1)
    first = guard.check(tone, step=2)
    assert first.failing and not first.fired  # patience 2
    second = guard.check(tone, step=3)
    assert second.fired and "reward-hacking guard fired at step 3" in second.message
    with pytest.raises(SqaError, match="guard action"):
        RewardHackingGuard(GuardConfig(action="ignore"), speech, RATE)


def test_score_only_training_collapses_and_the_guard_rolls_back(tmp_path) -> None:
    _corpus(tmp_path)
    config = _config(
        tmp_path,
        steps=30,
        learning_rate=0.05,
        metric_weights={"pesq": 1.0},
        weights=LossWeights(spec=0.0, score=1.0),
    )
    finetuner = Finetuner(config, restorer=_restorer(), critic=FrozenCritic(StandInCritic(), RATE))
    initial = {k: v.clone() for k, v in finetuner.restorer.state_dict().items()}
    result = finetuner.run()
    assert result.status == "collapsed", result.history[-1]
    assert "reward-hacking guard fired" in result.message and "Rolled back" in result.message
    restored = finetuner.restorer.state_dict()
    good = finetuner.good_state
    assert all(torch.equal(restored[k], good[k]) for k in restored)
    assert finetuner.good_step < result.step
    assert (tmp_path / "run" / "last.pt").is_file() and initial


def test_training_resumes_from_the_last_checkpoint(tmp_path) -> None:
    _corpus(tmp_path)
    unguarded = GuardConfig(enabled=False)  # a random restorer has no meaningful initial output
    first = Finetuner(_config(tmp_path, steps=2, guard=unguarded), restorer=_restorer())
    assert first.run().status == "finished"
    second = Finetuner(_config(tmp_path, steps=3, guard=unguarded), restorer=_restorer(seed=5))
    result = second.run()
    assert result.step == 3 and [r["step"] for r in result.history] == [3]
    assert "sdr" in result.evaluation
    assert second.scheduler.last_epoch == 3
    # Like the other trainers, the run folder records the resolved config and the environment.
    run = Path(second.config.output_dir)
    assert yaml.safe_load((run / "config.yaml").read_text())["steps"] == 3
    assert "torch" in json.loads((run / "environment.json").read_text())["packages"]


def test_recipe_configs_load() -> None:
    from pathlib import Path

    from se_finetune.finetune_config import load_config

    recipes = Path(__file__).resolve().parents[1] / "recipes" / "se_finetune"
    config = load_config(recipes / "config.yaml")
    assert config.learning_rate == 1e-5 and config.batch_size == 8
    assert config.guard.enabled and config.critic == "dnsmos"
    assert load_config(recipes / "pretrain.yaml").init_checkpoint is None


def test_finetune_command_runs_and_rejects_bad_configs(tmp_path) -> None:
    import yaml

    from se_finetune.commands import finetune_main

    _corpus(tmp_path)
    data = {
        "output_dir": str(tmp_path / "run"), "speech_dir": str(tmp_path / "speech"),
        "noise_dir": str(tmp_path / "noise"), "rir_dir": None, "holdout_every": 0,
        "model": {"sample_rate": RATE, "num_channels": 8, "num_layers": 1},
        "simulation": {"segment_seconds": 0.5}, "batch_size": 2, "steps": 1,
        "eval_count": 1, "eval_metrics": ["sdr"], "real_eval_metrics": [],
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    assert finetune_main(["--config", str(path)]) == 0
    assert (tmp_path / "run" / "last.pt").is_file() and (
        tmp_path / "run" / "summary.json"
    ).is_file()
    # One resume rule for every trainer: an existing run is refused without --resume/--force.
    with pytest.raises(SqaError, match="pass --resume to continue it or --force"):
        finetune_main(["--config", str(path), "--set", "steps=2"])
    assert finetune_main(["--config", str(path), "--set", "steps=2", "--resume"]) == 0
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["steps"] == 2
    path.write_text(yaml.safe_dump({**data, "learning_rat": 1.0}))
    with pytest.raises(SqaError, match="learning_rat"):
        finetune_main(["--config", str(path)])


def test_process_shares_make_up_the_single_process_batch(tmp_path) -> None:
    # Under DDP each rank trains items i % world_size == rank of the same batch, so a run's data
    # does not depend on the number of processes.
    from sqa.distributed import DistributedContext

    _corpus(tmp_path)
    finetuner = Finetuner(_config(tmp_path, batch_size=4), restorer=_restorer())
    _, whole, whole_target = finetuner.batch(3)
    shares = []
    for rank in range(2):
        finetuner.context = DistributedContext(rank, 2, "cpu")
        shares.append(finetuner.batch(3))
    assert all(share[1].shape[0] == 2 for share in shares)
    assert torch.equal(shares[0][1], whole[0::2]) and torch.equal(shares[1][1], whole[1::2])
    assert torch.equal(shares[1][2], whole_target[1::2])
    finetuner.config = FinetuneConfig(**{**vars(finetuner.config), "batch_size": 3})
    with pytest.raises(SqaError, match="batch_size 3 does not split over 2 processes"):
        finetuner._check_losses()


def test_resume_restores_the_guard_and_its_last_good_weights(tmp_path) -> None:
    _corpus(tmp_path)
    config = _config(tmp_path, steps=2)
    first = Finetuner(config, restorer=_restorer())
    assert first.run().status == "finished" and first.good_step == 2
    good = {key: value.clone() for key, value in first.good_state.items()}
    first.guard.failures = 1  # one failing check so far: the next one may fire
    with torch.no_grad():
        next(first.restorer.parameters()).add_(1.0)  # last.pt now differs from good.pt
    first.save(tmp_path / "run" / "last.pt")
    second = Finetuner(config, restorer=_restorer(seed=5))
    assert second.resume(tmp_path / "run" / "last.pt") == "running"
    assert second.guard.failures == 1 and second.good_step == 2
    assert all(torch.equal(second.good_state[key], good[key]) for key in good)
