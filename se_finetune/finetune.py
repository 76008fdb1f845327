"""SQA-guided fine-tuning (and ``L_spec`` pre-training) of a restorer.

Simulated batches use ``λ_spec·L_spec + λ_score·L_score + λ_feat·L_feat (+ λ_rank·L_rank)``;
real reference-free batches use ``λ_score·L_score + λ_reg·L_reg (+ λ_rank·L_rank)``; the share of
real batches is ``real_ratio``. Adam + StepLR, gradient clipping, periodic evaluation with the
teacher metrics, resumable checkpoints (``last.pt``) and a reward-hacking guard that restores the
last good weights (``good.pt``) and stops with a clear message when the output collapses.

Resuming restores the weights, Adam and StepLR states, the step, the guard's failure count and
last good weights, and the Python/NumPy/torch generator states; batches are functions of
``(seed, step)``, so a resumed run repeats an uninterrupted one bit for bit (one process, CPU).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from se_finetune.bsrnn import BSRNN, RESTORER_KINDS
from se_finetune.evaluation import evaluate_restorer
from se_finetune.finetune_config import FinetuneConfig, FinetuneResult
from se_finetune.guard import GuardVerdict, RewardHackingGuard
from se_finetune.losses import (
    FrozenCritic,
    FrozenRanker,
    MultiResolutionSpectralLoss,
    build_critic,
    build_ranker,
    critic_metric_weights,
    feature_loss,
    freeze,
    rank_loss,
    score_loss,
)
from sqa.checkpoint import load_checkpoint, load_model, save_checkpoint
from sqa.distributed import distributed_context
from sqa.errors import CheckpointError, SqaError
from sqa.fileio import dumps_json
from sqa.runs import (
    kill_point,
    restore_rng_state,
    rng_state,
    run_lock,
    seed_everything,
    truncate_log,
    write_run_metadata,
)
from sqa.simulation.files import audio_segments, pool_files
from sqa.simulation.simulate import SimulatedPair, Simulator

EVAL_SEED_BASE = 10**9  # held-out pairs use seeds no training batch reaches


class Finetuner:
    """Builds the models, data and losses of a run and trains step by step.

    Args:
        config: The run configuration.
        restorer: Optional model to train instead of loading ``config.init_checkpoint``.
        critic: Optional frozen critic instead of building ``config.critic``.
        ranker: Optional frozen ranker instead of building ``config.ranker``.
    """

    def __init__(
        self,
        config: FinetuneConfig,
        *,
        restorer: nn.Module | None = None,
        critic: FrozenCritic | None = None,
        ranker: FrozenRanker | None = None,
    ) -> None:
        self.config = config
        seed_everything(config.seed)  # the run's one seed call (model init, simulation draws)
        self.context = distributed_context(config.device)
        self.device = torch.device(self.context.device)
        self.rate = config.simulation.sample_rate
        self.output_dir = Path(config.output_dir)
        # From scratch (pre-training) there is no meaningful "initial output" to guard against.
        self.from_scratch = restorer is None and not config.init_checkpoint
        self.restorer = restorer if restorer is not None else self._initial_restorer()
        self.restorer = self.restorer.to(self.device)
        self.initial = freeze(copy.deepcopy(self.restorer))
        self.critic = critic if critic is not None else build_critic(config.critic, self.rate)
        self.ranker = ranker if ranker is not None else build_ranker(config.ranker, self.rate)
        if self.critic is not None:
            self.critic = self.critic.to(self.device)
        if self.ranker is not None:
            self.ranker = self.ranker.to(self.device)
        # Every process trains its share of each batch; DDP averages the gradients.
        self.model: nn.Module = self.restorer
        if self.context.distributed:
            on_gpu = self.device.type == "cuda"
            self.model = DistributedDataParallel(
                self.restorer, device_ids=[self.device] if on_gpu else None
            )
        self.metric_weights = (
            critic_metric_weights(self.critic, config.metric_weights)
            if (self.critic is not None and config.weights.score)
            else {}
        )
        self._check_losses()
        self.spectral = MultiResolutionSpectralLoss(self.rate, time_weight=config.weights.time)
        self.spectral = self.spectral.to(self.device)
        self.optimizer = torch.optim.Adam(self.restorer.parameters(), lr=config.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=config.lr_step_size, gamma=config.lr_gamma
        )
        self._build_data()
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.good_state = copy.deepcopy(self.restorer.state_dict())
        self.good_step = 0
        self.guard = self._build_guard()

    def _initial_restorer(self) -> nn.Module:
        if self.config.init_checkpoint:
            model = load_model(
                self.config.init_checkpoint, kinds=RESTORER_KINDS, purpose="init_checkpoint"
            )
        else:
            model = BSRNN(self.config.model)
        return model.train()

    def _check_losses(self) -> None:
        weights = self.config.weights
        if (weights.score or weights.feat) and self.critic is None:
            raise SqaError("score/feat losses need a critic (set critic: dnsmos or a checkpoint)")
        if weights.rank and self.ranker is None:
            raise SqaError("the rank loss needs a ranker checkpoint (set ranker:)")
        if self.config.batch_size % self.context.world_size:
            raise SqaError(
                f"batch_size {self.config.batch_size} does not split over "
                f"{self.context.world_size} processes"
            )
        if not 0.0 <= self.config.real_ratio <= 1.0:
            raise SqaError(f"real_ratio must be in [0, 1], got {self.config.real_ratio}")

    def _build_data(self) -> None:
        config = self.config
        simulation = config.simulation
        noise = pool_files(config.noise_dir)
        rirs = pool_files(config.rir_dir)
        self.simulator = Simulator(
            simulation, pool_files(config.speech_dir, every=config.holdout_every), noise, rirs
        )
        holdout = pool_files(config.speech_dir, every=config.holdout_every, holdout=True)
        held_out = Simulator(simulation, holdout or self.simulator.speech_files, noise, rirs)
        self.eval_pairs = [held_out(EVAL_SEED_BASE + i) for i in range(config.eval_count)]
        real_files = pool_files(config.real_dir)
        self.real_clips = audio_segments(real_files, self.rate, simulation.segment_seconds)
        if config.real_ratio > 0 and not self.real_clips:
            raise SqaError("real_ratio > 0 needs real noisy audio in real_dir")

    def _build_guard(self) -> RewardHackingGuard | None:
        if not self.config.guard.enabled or self.from_scratch:
            return None
        clips = [pair.noisy for pair in self.eval_pairs] + list(self.real_clips)
        self.guard_inputs = torch.from_numpy(np.stack(clips[: self.config.guard_clips]))
        self.guard_inputs = self.guard_inputs.to(self.device)
        with torch.no_grad():
            initial_output = self.initial(self.guard_inputs, self.rate)
        return RewardHackingGuard(self.config.guard, initial_output, self.rate)

    def batch(self, step: int) -> tuple[str, torch.Tensor, torch.Tensor | None]:
        """This process's share of the batch of ``step`` (deterministic).

        The batch is the same whatever the number of processes: item ``i`` of it goes to rank
        ``i % world_size`` (``batch_size`` must be divisible by the world size).

        Returns:
            ``(kind, noisy, target or None)``, audio ``(batch_size / world_size, samples)`` on
            this process's device.
        """
        config, context = self.config, self.context
        rng = np.random.default_rng([config.seed, step])
        share = range(context.rank, config.batch_size, context.world_size)
        if self.real_clips and rng.random() < config.real_ratio:
            picks = rng.integers(len(self.real_clips), size=config.batch_size)
            noisy = np.stack([self.real_clips[picks[i]] for i in share])
            return "real", torch.from_numpy(noisy).to(self.device), None
        base = (config.seed * 10**7 + step) * config.batch_size
        pairs: list[SimulatedPair] = [self.simulator(base + i) for i in share]
        noisy = torch.from_numpy(np.stack([pair.noisy for pair in pairs])).to(self.device)
        target = torch.from_numpy(np.stack([pair.target for pair in pairs])).to(self.device)
        return "simulated", noisy, target

    def losses(
        self, kind: str, noisy: torch.Tensor, target: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Every enabled loss term (unweighted) for one batch."""
        weights = self.config.weights
        enhanced = self.model(noisy, self.rate)
        terms: dict[str, torch.Tensor] = {}
        if kind == "simulated" and weights.spec:
            terms["spec"] = self.spectral(enhanced, target)
        if weights.score or (weights.feat and kind == "simulated"):
            output = self.critic(enhanced)
            if weights.score:
                terms["score"] = score_loss(output.scores, self.metric_weights)
            if weights.feat and kind == "simulated":
                with torch.no_grad():
                    reference = self.critic(target).hidden
                terms["feat"] = feature_loss(output.hidden, reference)
        if (kind == "real" and weights.reg) or weights.rank:
            with torch.no_grad():
                initial_output = self.initial(noisy, self.rate)
            if kind == "real" and weights.reg:
                terms["reg"] = self.spectral(enhanced, initial_output)
            if weights.rank:
                terms["rank"] = rank_loss(self.ranker(enhanced, initial_output))
        return terms

    def train_step(self) -> dict[str, float]:
        """One optimisation step; returns the loss terms and the gradient norm."""
        self.restorer.train()
        kind, noisy, target = self.batch(self.step)
        terms = self.losses(kind, noisy, target)
        weights = self.config.weights
        total = sum(getattr(weights, name) * value for name, value in terms.items())
        if not isinstance(total, torch.Tensor):
            raise SqaError(f"no loss is enabled for {kind} batches; check the loss weights")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.restorer.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        record = {name: float(value.detach()) for name, value in terms.items()}
        return {
            "step": self.step,
            "kind": kind,
            "loss": float(total.detach()),
            "grad_norm": float(norm),
            **record,
        }

    def evaluate(self) -> dict[str, float]:
        """Teacher metrics on the held-out simulated pairs and real clips."""
        self.restorer.eval()
        return evaluate_restorer(
            self.restorer,
            self.eval_pairs,
            self.config.eval_metrics,
            real_clips=self.real_clips[: self.config.eval_count],
            real_metric_names=self.config.real_eval_metrics,
            sample_rate=self.rate,
        )

    def check_guard(self) -> GuardVerdict | None:
        """Run the guard; remember the weights as good when it passes."""
        if self.guard is None:
            return None
        self.restorer.eval()
        with torch.no_grad():
            verdict = self.guard.check(self.restorer(self.guard_inputs, self.rate), self.step)
        if not verdict.failing:
            self.good_state = copy.deepcopy(self.restorer.state_dict())
            self.good_step = self.step
            self.save(self.output_dir / "good.pt")
        return verdict

    def save(self, path: Path, *, status: str = "running") -> Path:
        """Write a resumable training checkpoint (rank 0 only: the weights are the same)."""
        if self.context.rank:
            return path
        training_state = {
            "step": self.step,
            "status": status,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "good_step": self.good_step,
            "guard_failures": self.guard.failures if self.guard is not None else 0,
            "initial_state": self.initial.state_dict(),
            "rng": rng_state(),
        }
        metadata = {
            "trained_steps": self.step,
            "status": status,
            "losses": dict(vars(self.config.weights)),
            "critic": self.config.critic or "",
        }
        return save_checkpoint(
            path,
            self.restorer,
            self.restorer.config,
            kind="bsrnn",
            metadata=metadata,
            training_state=training_state,
        )

    def resume(self, path: Path) -> str:
        """Restore model, optimizer, scheduler, step, guard and generators from a checkpoint."""
        payload = load_checkpoint(path)
        state = payload.get("training_state")
        if state is None:
            raise CheckpointError(f"{path} is not a training checkpoint (no training_state)")
        self.restorer.load_state_dict(payload["state_dict"])
        self.initial.load_state_dict(state["initial_state"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.good_step = int(state["good_step"])
        self.good_state = self._good_state(path.parent / "good.pt")
        if self.guard is not None:
            self.guard.failures = int(state.get("guard_failures", 0))
        if "rng" in state:  # older checkpoints have none (the batches never needed them)
            restore_rng_state(state["rng"])
        return str(state["status"])

    def _good_state(self, path: Path) -> dict[str, torch.Tensor]:
        """The last good weights: ``good.pt`` when it holds those of ``good_step``.

        A ``good.pt`` from a later step (written after ``last.pt``, then killed) belongs to a
        guard check the resumed run repeats, and that check replaces the good weights again.
        """
        if path.is_file():
            payload = load_checkpoint(path)
            if int((payload.get("training_state") or {}).get("step", -1)) == self.good_step:
                return payload["state_dict"]
        return copy.deepcopy(self.restorer.state_dict())

    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.context.rank:
            return
        with open(self.output_dir / "log.jsonl", "a", encoding="utf-8") as stream:
            stream.write(dumps_json(record) + "\n")

    def _collapse(self, verdict: GuardVerdict) -> FinetuneResult:
        evaluation = self.evaluate()  # the collapsed model, for the record
        self._log({"step": self.step, "event": "collapse", "evaluation": evaluation})
        message = verdict.message
        if self.config.guard.action == "rollback":
            self.restorer.load_state_dict(self.good_state)
            message += f" Rolled back to the weights of step {self.good_step}."
        self.save(self.output_dir / "last.pt", status="collapsed")
        return FinetuneResult(self.step, "collapsed", evaluation, message, self.history)

    def run(self, *, resume: bool = True, progress: bool = False) -> FinetuneResult:
        """Train until ``steps`` (resuming from ``last.pt``); stop early on a collapse.

        The run folder is locked meanwhile: a second job on it is refused.
        """
        writer = self.context.rank == 0  # rank 0 owns the run folder; the others only train
        try:
            with run_lock(self.output_dir) if writer else contextlib.nullcontext():
                if writer:  # the resolved config, versions and git commit, as every trainer's
                    write_run_metadata(self.output_dir, self.config)
                return self._run(resume=resume, progress=progress and writer)
        finally:
            if self.context.distributed:
                torch.distributed.barrier()  # the others wait for rank 0's last checkpoint
                torch.distributed.destroy_process_group()

    def _run(self, *, resume: bool, progress: bool) -> FinetuneResult:
        config = self.config
        last = self.output_dir / "last.pt"
        resumed = resume and last.is_file()
        if resumed and self.resume(last) == "collapsed":
            message = f"{last}: this run already stopped on a reward-hacking collapse"
            return FinetuneResult(self.step, "collapsed", {}, message, self.history)
        if self.context.rank == 0:  # steps after the checkpoint are trained (and logged) again
            truncate_log(self.output_dir / "log.jsonl", self.step if resumed else -1)
        evaluation: dict[str, float] = {}
        started = time.perf_counter()
        while self.step < config.steps:
            record = self.train_step()
            if not math.isfinite(record["loss"]):
                raise SqaError(f"the loss became non-finite at step {self.step}: {record}")
            if self.guard is not None and self.step % config.guard_interval == 0:
                verdict = self.check_guard()
                record.update(
                    consistency_db=verdict.consistency_db,
                    envelope_correlation=verdict.envelope_correlation,
                )
                if verdict.fired:
                    self._log(record)
                    return self._collapse(verdict)
            evaluation_due = self.step % config.eval_interval == 0 or self.step == config.steps
            if evaluation_due and self.context.rank == 0:
                evaluation = self.evaluate()
                record["evaluation"] = evaluation
            record["seconds"] = round(time.perf_counter() - started, 2)
            self._log(record)
            if progress:
                print(dumps_json(record), flush=True)
            kill_point(self.step)
            if self.step % config.checkpoint_interval == 0 or self.step == config.steps:
                self.save(last)
        self.save(last, status="finished")
        return FinetuneResult(self.step, "finished", evaluation, "", self.history)
