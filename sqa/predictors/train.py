"""Training loop of the multi-metric predictor (``sqa train-predictor``).

* Data: Track-2 ``data.jsonl`` files (globs), Kaldi dirs with ``<metric>.scp``, or ``sqa score``
  tables, read with :func:`sqa.data.load_records`; missing labels are NaN.
* Loss: :func:`sqa.predictors.losses.masked_standardised_mse` with per-metric statistics of the
  training labels, stored in the model buffers (and so in every checkpoint).
* AdamW with a linear warm-up (then constant; a run shorter than its warm-up warms up over 10 %
  of its steps instead, see :mod:`sqa.predictors.schedule`), batches packed by padded duration,
  gradient clipping; an update whose gradient norm is not finite is skipped (and counted).
* A tqdm bar on stderr (rank 0) over the run's steps, with the last loss and the lr.
* Validation every ``valid_every`` steps: utterance- and system-level MSE / LCC / SRCC / KTAU per
  metric (:func:`sqa.stats.track2_metrics`), appended to ``log.jsonl``; ``best.pt`` follows the
  declared criterion; ``last.pt`` holds everything needed to resume: weights, AdamW state, progress
  (step, epoch, batch within the epoch, best value) and the Python/NumPy/torch generator states,
  so that a resumed run repeats an uninterrupted one bit for bit (one process, CPU). The learning
  rate is a function of the step; batch order and crops are functions of (seed, epoch, index).
* ``torchrun``: with ``WORLD_SIZE > 1`` in the environment the model is wrapped in
  DistributedDataParallel (gloo on CPU, NCCL on CUDA), each rank takes every ``world``-th batch, and
  only rank 0 validates and writes files. No code change is needed between the two modes.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sqa.distributed import distributed_context
from sqa.errors import SqaError
from sqa.predictors.data import (
    DurationBatches,
    LabelledAudio,
    collate_labelled,
    label_matrix,
    load_sources,
)
from sqa.predictors.inference import PredictionSettings, record_durations
from sqa.predictors.losses import label_statistics, masked_standardised_mse
from sqa.predictors.model import MODEL_KIND, UniVersa, UniVersaConfig
from sqa.predictors.run_support import TrainingLog, front_end_licence, usable_training_records
from sqa.predictors.schedule import (
    LR_SCHEDULES,
    bar_postfix,
    effective_warmup,
    schedule_factor,
    step_bar,
    total_steps,
)
from sqa.predictors.validation import (
    criterion_direction,
    select_criterion,
    validate,
    warn_skipped,
)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (see the module docstring).

    Attributes:
        train: Training sources (paths or globs).
        valid: Validation sources.
        output_dir: Run folder (checkpoints, ``log.jsonl``, ``config.yaml``).
        model: Predictor configuration.
        learning_rate: Peak AdamW learning rate (paper: 1e-3).
        warmup_steps: Linear warm-up length (paper: 25 000; scaled down for shorter runs).
        weight_decay: AdamW weight decay.
        max_steps: Stop after this many updates (0: no limit).
        epochs: Stop after this many passes over the data.
        batch_seconds: Padded seconds per batch.
        max_batch_size: Cap on items per batch.
        max_seconds: Random crop of longer training files (None: whole files).
        grad_clip: Max global gradient norm (0: off).
        valid_every: Validate (and save ``last.pt``) every this many updates.
        criterion: ``"loss"`` (validation loss) or ``"<metric>/<stat>"`` such as
            ``"mos/utt_srcc"`` or ``"mean/sys_lcc"`` (mean over labelled metrics).
        metric_weights: ``(metric, weight)`` pairs of the loss (default weight 1).
        seed: Seed of initialisation, batching and crops.
        device: Torch device (under torchrun with CUDA: ``cuda:LOCAL_RANK``).
        tensorboard: Also write TensorBoard scalars to ``output_dir/tensorboard``.
        num_workers: Data-loader worker processes (audio decoding in the background).
        num_threads: Torch CPU threads (0: torch's default; 1 is fastest on a busy machine).
        cache_frozen_features: Remember a frozen Distill-MOS front end's outputs per window
            (whole files only, i.e. without ``max_seconds``): later epochs skip the network.
        lr_schedule: ``"constant"`` after the warm-up (paper) or ``"linear"`` decay to 0 (Track 2).
        standardise_targets: Standardise each metric by its training mean / std in the loss
            (False: plain MSE on the raw values, as the Track-2 baseline trains).
    """

    train: tuple[str, ...] = ()
    valid: tuple[str, ...] = ()
    output_dir: str = "runs/predictor"
    model: UniVersaConfig = field(default_factory=UniVersaConfig)
    learning_rate: float = 1e-3
    warmup_steps: int = 25000
    weight_decay: float = 0.01
    max_steps: int = 0
    epochs: int = 20
    batch_seconds: float = 120.0
    max_batch_size: int = 16
    max_seconds: float | None = None
    grad_clip: float = 5.0
    valid_every: int = 1000
    criterion: str = "loss"
    metric_weights: tuple[tuple[str, float], ...] = ()
    seed: int = 0
    device: str = "cpu"
    tensorboard: bool = False
    num_workers: int = 0
    num_threads: int = 0
    cache_frozen_features: bool = True
    lr_schedule: str = "constant"
    standardise_targets: bool = True


class PredictorTrainer:
    """Owns the model, optimiser, data and bookkeeping of one training run."""

    def __init__(self, config: TrainConfig, *, resume: str | None = None) -> None:
        from sqa.runs import seed_everything

        self.config = config
        if config.lr_schedule not in LR_SCHEDULES:
            raise SqaError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}")
        if config.num_threads > 0:
            torch.set_num_threads(config.num_threads)
        context = distributed_context(config.device)
        self.rank, self.world, self.device = context.rank, context.world_size, context.device
        seed_everything(config.seed)
        self.model = UniVersa(config.model).to(self.device)
        front_end = self.model.front_end
        # Whole files only: random crops would make every window new and the cache unbounded.
        cacheable = getattr(front_end, "frozen", False) and hasattr(
            front_end, "enable_window_cache"
        )
        if config.cache_frozen_features and config.max_seconds is None and cacheable:
            front_end.enable_window_cache()
        self.valid_records = load_sources(config.valid) if config.valid else []
        self.weights = dict(config.metric_weights)
        self.loader = self._training_loader()
        self.total_steps = total_steps(config.max_steps, config.epochs, len(self.loader))
        self.warmup_steps = effective_warmup(
            config.warmup_steps, self.total_steps, announce=self.rank == 0
        )
        self.network = self._wrap(self.model)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            trainable, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.state: dict[str, Any] = {
            "step": 0, "epoch": 0, "batch_in_epoch": 0, "best": None, "skipped": 0,
        }  # fmt: skip
        self.output = Path(config.output_dir)
        self.log = TrainingLog(self.output, tensorboard=config.tensorboard, enabled=self.rank == 0)
        if resume:
            self._resume(resume)
        elif self.rank == 0:
            (self.output / "log.jsonl").unlink(missing_ok=True)  # a fresh start (--force)

    def _training_loader(self) -> torch.utils.data.DataLoader:
        """Training records, label statistics (into the model) and the duration-packed loader."""
        config, names = self.config, self.model.metric_names
        records = usable_training_records(load_sources(config.train), names)
        usable, durations = record_durations(records, warn_skipped)
        self.train_records = [records[index] for index in usable]
        labels = label_matrix(self.train_records, names)
        mean, std = label_statistics(labels)
        if not config.standardise_targets:  # raw-value MSE: statistics 0 / 1
            mean, std = torch.zeros_like(mean), torch.ones_like(std)
        self.model.set_target_statistics(
            dict(zip(names, mean.tolist(), strict=True)),
            dict(zip(names, std.tolist(), strict=True)),
        )
        dataset = LabelledAudio(
            self.train_records, labels, self.model.sample_rate, config.max_seconds,
            config.seed + self.rank,
        )  # fmt: skip
        self.sampler = DurationBatches(
            durations, config.batch_seconds, config.max_batch_size, config.max_seconds,
            config.seed, self.rank, self.world,
        )  # fmt: skip
        self.dataset = dataset
        # Its own generator: starting an epoch must not draw from torch's global one (dropout).
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=self.sampler,
            collate_fn=collate_labelled,
            num_workers=config.num_workers,
            generator=torch.Generator().manual_seed(config.seed),
        )

    def _wrap(self, model: UniVersa) -> torch.nn.Module:
        if self.world <= 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [torch.device(self.device).index] if self.device.startswith("cuda") else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def _resume(self, path: str) -> None:
        from sqa.checkpoint import load_checkpoint
        from sqa.runs import restore_rng_state, truncate_log

        payload = load_checkpoint(path)
        if "training_state" not in payload:
            raise SqaError(f"{path} is not a training checkpoint (no training_state)")
        self.model.load_state_dict(payload["state_dict"])
        saved = payload["training_state"]
        self.optimizer.load_state_dict(saved["optimizer"])
        self.state.update(saved["progress"])
        if "rng" in saved:
            restore_rng_state(saved["rng"])
        else:  # checkpoints written before the other generators were stored
            torch.set_rng_state(saved["torch_rng"])
        if self.rank == 0:  # steps after the checkpoint are trained (and logged) again
            truncate_log(self.output / "log.jsonl", self.state["step"])

    def _save(self, name: str, results: dict[str, Any] | None, training: bool) -> Path:
        from sqa.checkpoint import save_checkpoint

        names = self.model.metric_names
        metadata = {
            "train_sources": list(self.config.train),
            "valid_sources": list(self.config.valid),
            "label_statistics": {
                name: [float(self.model.target_mean[i]), float(self.model.target_std[i])]
                for i, name in enumerate(names)
            },
            "step": self.state["step"],
            "validation": results or {},
            "criterion": self.config.criterion,
            "parameters": self.model.count_parameters(),
            "front_end_licence": front_end_licence(self.model.config),
        }
        training_state = None
        if training:
            from sqa.runs import rng_state

            training_state = {
                "optimizer": self.optimizer.state_dict(),
                "progress": dict(self.state),
                "rng": rng_state(),
            }
        return save_checkpoint(
            self.output / name,
            self.model,
            self.model.config,
            kind=MODEL_KIND,
            metadata=metadata,
            training_state=training_state,
        )

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None) -> float:
        """One update; returns the loss (NaN for a skipped update)."""
        if batch is None:
            # Keep ranks in lock-step: a batch with no readable file contributes a zero gradient.
            sample_rate = self.model.sample_rate
            nan = torch.full((1, len(self.model.metric_names)), math.nan)
            batch = (torch.zeros(1, sample_rate), torch.tensor([sample_rate]), nan)
        waveform, lengths, labels = (item.to(self.device) for item in batch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.learning_rate * schedule_factor(
                self.state["step"], self.warmup_steps, self.total_steps, self.config.lr_schedule
            )
        output = self.network(waveform, lengths)
        loss, _ = masked_standardised_mse(
            output.scores,
            labels,
            self.model.metric_names,
            self.model.target_mean,
            self.model.target_std,
            self.weights,
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        limit = self.config.grad_clip if self.config.grad_clip > 0 else math.inf
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        norm = torch.nn.utils.clip_grad_norm_(parameters, limit)
        if not (torch.isfinite(norm) and torch.isfinite(loss)):
            self.optimizer.zero_grad(set_to_none=True)
            self.state["skipped"] += 1
            return math.nan
        self.optimizer.step()
        return float(loss.detach())

    def _validate_and_save(self) -> None:
        from sqa.runs import kill_point

        if self.rank == 0:
            settings = PredictionSettings(
                batch_seconds=self.config.batch_seconds,
                max_batch_size=self.config.max_batch_size,
                device=self.device,
            )
            results = None
            if self.valid_records:
                results = validate(self.model, self.valid_records, settings, self.weights)
                self.log.append({"step": self.state["step"], "validation": results})
                self._update_best(results)
            kill_point(self.state["step"])
            self._save("last.pt", results, training=True)
        if self.world > 1:
            torch.distributed.barrier()

    def _update_best(self, results: dict[str, Any]) -> None:
        value = select_criterion(results, self.config.criterion)
        best = self.state["best"]
        higher = criterion_direction(self.config.criterion)
        improved = math.isfinite(value) and (
            best is None or (value > best if higher else value < best)
        )
        if improved:
            self.state["best"] = value
            self._save("best.pt", results, training=False)

    def run(self) -> dict[str, Any]:
        """Train until ``epochs`` or ``max_steps``; returns a summary."""
        from sqa.runs import write_run_metadata

        if self.rank == 0:
            write_run_metadata(self.output, self.config)
        state = self.state
        self.network.train()
        running: list[float] = []
        bar = step_bar(self.total_steps, state["step"], enabled=self.rank == 0)
        try:
            while state["epoch"] < self.config.epochs and not self._finished():
                running = self._train_epoch(running, bar)
                if not self._finished():
                    state["epoch"] += 1
                    state["batch_in_epoch"] = 0
        finally:
            bar.close()
            self.sampler.skip = 0
        if running or state["step"] == 0:
            self._log_training(running)
            self._validate_and_save()
        if self.world > 1:
            torch.distributed.destroy_process_group()
        return {
            "step": state["step"],
            "best": state["best"],
            "skipped": state["skipped"],
            "rank": self.rank,
        }

    def _train_epoch(self, running: list[float], bar: Any) -> list[float]:
        """The rest of the current epoch; returns the losses not yet logged."""
        from sqa.runs import kill_point

        state = self.state
        self.sampler.epoch = self.dataset.epoch = state["epoch"]
        self.sampler.skip = state["batch_in_epoch"]  # resumed mid-epoch: those batches are done
        for index, batch in enumerate(self.loader, start=state["batch_in_epoch"]):
            running.append(self._step(batch))
            state["step"] += 1
            state["batch_in_epoch"] = index + 1
            bar.set_postfix(
                bar_postfix(running[-1], self.optimizer.param_groups[0]["lr"]), refresh=False
            )
            bar.update()
            if state["step"] % self.config.valid_every == 0:
                self._log_training(running)
                running = []
                self._validate_and_save()
            else:
                kill_point(state["step"])
            if self._finished():
                break
        return running

    def _finished(self) -> bool:
        return bool(self.config.max_steps) and self.state["step"] >= self.config.max_steps

    def _log_training(self, losses: list[float]) -> None:
        finite = [value for value in losses if math.isfinite(value)]
        self.log.append(
            {
                "step": self.state["step"],
                "epoch": self.state["epoch"],
                "train_loss": float(np.mean(finite)) if finite else math.nan,
                "skipped": self.state["skipped"],
                "lr": self.optimizer.param_groups[0]["lr"],
                "warmup_steps": self.warmup_steps,  # as used: scaled down on a short run
            }
        )


def train_predictor(config: TrainConfig, *, resume: str | None = None) -> dict[str, Any]:
    """Train a predictor (see the module docstring); returns ``{step, best, skipped, rank}``."""
    from sqa.runs import run_lock

    if not config.train:
        raise SqaError("no training data given")
    first_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun rank 0 holds the lock
    with run_lock(config.output_dir) if first_process else contextlib.nullcontext():
        return PredictorTrainer(config, resume=resume).run()
