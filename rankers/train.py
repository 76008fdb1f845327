"""Training of the URGENT-PK ranker (``sqa train-ranker``).

Loss: ``alpha * BCE(logit, label) + beta * MSE([mos_a, mos_b], [MOS_a, MOS_b])`` with NaN MOS
masked out of the MSE (preference-only pairs train the comparison alone); ``alpha = beta = 0.5`` is
the paper, ``alpha = 2, beta = 1`` reproduces the reference code. AdamW, StepLR x``lr_decay`` per
epoch, gradient clipping, zero padding with length masks, optional random crops.

Selection (paper, section III-E): the best ``keep_best`` epochs by validation loss are kept; each
is scored by ECS on the validation utterances (LCC + SRCC + KRCC of ECS scores against the
validation systems' mean MOS) and the winner is written to ``best.pt``.

Multi-process: ``torchrun --nproc_per_node N -m sqa train-ranker ...`` trains with DDP
(:func:`sqa.distributed.distributed_context`: gloo on CPU, nccl on CUDA, one GPU per local rank)
and a distributed sampler; only rank 0 writes files. ``last.pt`` holds the full
training state and is picked up again by ``--resume``: weights, AdamW and StepLR states, the epoch,
the kept best-N checkpoints, the Python/NumPy/torch generator states and the state of the loader's
shuffling generator, so that a resumed run repeats an uninterrupted one bit for bit (one process,
CPU). A run killed mid-epoch repeats that epoch from its start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rankers.data import (
    PairDataset,
    build_pairs,
    collate_pairs,
    load_training_records,
    pairs_from_preferences,
    utterance_key,
)
from rankers.feature_cache import (
    FeaturePairDataset,
    collate_feature_pairs,
    encode_files,
    supports_frozen_cache,
)
from rankers.selection import BestCheckpoints, select_best, split_by_utterance, unwrap
from rankers.train_config import TrainConfig
from sqa.checkpoint import load_checkpoint, save_checkpoint
from sqa.distributed import distributed_context
from sqa.errors import DataFormatError
from sqa.fileio import read_rows
from sqa.runs import (
    check_resume,
    kill_point,
    restore_rng_state,
    rng_state,
    run_lock,
    seed_everything,
    write_run_metadata,
)


def preset_model(config: TrainConfig) -> tuple[str, Any]:
    """``(kind, model config)`` for the preset named by ``config.model``."""
    from rankers.cached import MODEL_KIND as CACHED_KIND
    from rankers.cached import CachedRankerConfig
    from rankers.encoders import ssl_config_from_directory
    from rankers.model import MODEL_KIND, PAPER_CONFIG, PairwiseRankerConfig, compact_config

    if config.model == "paper":
        return MODEL_KIND, PAPER_CONFIG
    if config.model == "compact":
        return MODEL_KIND, compact_config()
    if config.model == "cached":
        return CACHED_KIND, CachedRankerConfig()
    if config.model == "distillmos":
        from rankers.quality import MODEL_KIND as QUALITY_KIND
        from rankers.quality import QualityRankerConfig

        return QUALITY_KIND, QualityRankerConfig()
    if config.model == "ssl":
        if not config.ssl_path:
            raise DataFormatError("--model ssl needs --ssl-path (a local transformers model dir)")
        return MODEL_KIND, PairwiseRankerConfig(
            encoder="ssl",
            ssl_path=config.ssl_path,
            ssl_config_json=ssl_config_from_directory(config.ssl_path),
            freeze=config.freeze,
            lstm_hidden=config.lstm_hidden,
        )
    raise DataFormatError(f"unknown model preset {config.model!r}")


def ranker_loss(
    output: Sequence[torch.Tensor],
    label: torch.Tensor,
    mos: torch.Tensor,
    alpha: float,
    beta: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Multi-task loss of a batch.

    Args:
        output: ``(logit, mos_a, mos_b)``, each ``(B,)``.
        label: ``(B,)`` targets in {0, 0.5, 1}.
        mos: ``(B, 2)`` human MOS of both inputs, NaN where unknown.
        alpha: BCE weight.
        beta: MSE weight.

    Returns:
        The scalar loss and its parts (``bce``, ``mse``; ``mse`` NaN when no MOS is known).
    """
    logit, mos_a, mos_b = output
    bce = F.binary_cross_entropy_with_logits(logit, label)
    predicted = torch.stack([mos_a, mos_b], dim=1)
    known = torch.isfinite(mos)
    if bool(known.any()):
        mse = (predicted[known] - mos[known]).square().mean()
        loss = alpha * bce + beta * mse
        mse_value = float(mse.detach())
    else:
        loss, mse_value = alpha * bce, math.nan
    return loss, {"bce": float(bce.detach()), "mse": mse_value}


def make_loader(
    dataset: torch.utils.data.Dataset,
    config: TrainConfig,
    shuffle: bool,
    world_size: int,
    rank: int,
) -> torch.utils.data.DataLoader:
    """Data loader, with a :class:`DistributedSampler` under DDP."""
    sampler = None
    if world_size > 1:
        sampler = torch.utils.data.distributed.DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=config.seed
        )
    generator = torch.Generator().manual_seed(config.seed)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        collate_fn=collate_feature_pairs
        if isinstance(dataset, FeaturePairDataset)
        else collate_pairs,
        generator=generator,
    )


def steps_per_epoch(loader: torch.utils.data.DataLoader, config: TrainConfig) -> int:
    """Updates in one training epoch (``max_steps_per_epoch`` caps the loader's length)."""
    return min(len(loader), config.max_steps_per_epoch or len(loader))


def run_epoch(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    config: TrainConfig,
    optimizer: torch.optim.Optimizer | None,
    epoch: int = 0,
) -> float:
    """One pass over ``loader``; trains when ``optimizer`` is given. Returns the mean loss."""
    model.train(optimizer is not None)
    total, count = 0.0, 0
    first_step = epoch * steps_per_epoch(loader, config)
    for step, batch in enumerate(loader):
        if config.max_steps_per_epoch and step >= config.max_steps_per_epoch:
            break
        batch = {key: value.to(config.device) for key, value in batch.items()}
        with torch.set_grad_enabled(optimizer is not None):
            if "features_a" in batch:  # cached frozen features (rankers.feature_cache)
                output = unwrap(model).compare_frozen(batch["features_a"], batch["features_b"])
            else:
                output = model(batch["wave_a"], batch["wave_b"], batch["lengths"], batch["lengths"])
            loss, _ = ranker_loss(output, batch["label"], batch["mos"], config.alpha, config.beta)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            kill_point(first_step + step + 1)
        total += float(loss.detach()) * batch["label"].shape[0]
        count += batch["label"].shape[0]
    return total / max(count, 1)


def _training_state(epoch: int, run: TrainingRun) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "best": [list(entry) for entry in run.best.entries],
        "rng": rng_state(),
        "loader_generator": run.loader_generator.get_state(),
    }


def _prepare(config: TrainConfig) -> tuple[Any, list, list]:
    records, split = load_training_records(config.data, config.mos_csv)
    train_records, validation_records = split_by_utterance(
        records, config.validation_utterances, config.seed, split
    )
    pairs = build_pairs(train_records, config.delta, config.ties)
    validation_pairs = build_pairs(validation_records, config.delta, config.ties)
    if config.preferences:
        held_out = {utterance_key(record) for record in validation_records}
        preferred = pairs_from_preferences(
            read_rows(config.preferences), records, Path(config.preferences).parent
        )
        pairs += [pair for pair in preferred if pair.utterance_id not in held_out]
        validation_pairs += [pair for pair in preferred if pair.utterance_id in held_out]
    if not pairs:
        raise DataFormatError(
            f"no training pairs with |dMOS| > {config.delta} in {config.data} and no "
            "--preferences (are MOS labels set?)"
        )
    return pairs, validation_pairs, validation_records


@dataclass
class TrainingRun:
    """The live objects of a run (model possibly DDP-wrapped)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    best: BestCheckpoints
    folder: Path
    kind: str
    model_config: Any
    loader_generator: torch.Generator = dataclasses.field(default_factory=torch.Generator)


def _setup(config: TrainConfig, model_config: Any, kind: str, world_size: int) -> tuple:
    """Build model, optimiser and scheduler, resume if asked.

    Returns:
        ``(run, start epoch, saved training state or None)``.
    """
    from sqa.checkpoint import model_classes

    folder = Path(config.output_dir)
    model: nn.Module = model_classes(kind)[1](model_config).to(config.device)
    optimizer = torch.optim.AdamW(
        [parameter for parameter in model.parameters() if parameter.requires_grad],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=config.lr_decay)
    best = BestCheckpoints(folder, config.keep_best)
    start_epoch, saved = _maybe_resume(config, folder, model, optimizer, scheduler, best)
    if world_size > 1:
        on_gpu = config.device.startswith("cuda")
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[torch.device(config.device)] if on_gpu else None
        )
    run = TrainingRun(model, optimizer, scheduler, best, folder, kind, model_config)
    return run, start_epoch, saved


def _end_epoch(
    run: TrainingRun, epoch: int, train_loss: float, validation: Any, config: TrainConfig
) -> None:
    """Validate, log, offer the epoch to the best-N set and write ``last.pt`` (rank 0 only)."""
    # The unwrapped module: a DDP forward would start collectives the other ranks never join.
    validation_loss = (
        run_epoch(unwrap(run.model), validation, config, None) if len(validation) else train_loss
    )
    print(
        f"epoch {epoch + 1}/{config.epochs}: train loss {train_loss:.4f}, "
        f"validation loss {validation_loss:.4f}, lr {run.scheduler.get_last_lr()[0]:.2e}",
        file=sys.stderr,
        flush=True,
    )
    displaced = run.best.offer(validation_loss, epoch, run.model, run.kind, run.model_config)
    save_checkpoint(
        run.folder / "last.pt",
        unwrap(run.model),
        run.model_config,
        kind=run.kind,
        metadata={**run.best.metadata, "train_loss": train_loss},
        training_state=_training_state(epoch + 1, run),
    )
    for path in displaced:
        path.unlink(missing_ok=True)


def train(config: TrainConfig, model_config: Any = None, kind: str | None = None) -> Path:
    """Train under a lock of the run folder (rank 0 holds it); see :func:`_train`."""
    first_process = int(os.environ.get("RANK", "0")) == 0
    with run_lock(config.output_dir) if first_process else contextlib.nullcontext():
        return _train(config, model_config, kind)


def _train(config: TrainConfig, model_config: Any = None, kind: str | None = None) -> Path:
    """Train, keep the best checkpoints and select ``best.pt`` by validation ECS.

    Args:
        config: Run settings.
        model_config: Explicit model config (overrides the ``config.model`` preset).
        kind: Checkpoint kind of ``model_config`` (required with it).

    Returns:
        Path of ``best.pt`` (rank 0; other ranks return it too but write nothing).
    """
    seed_everything(config.seed)
    context = distributed_context(config.device)
    # Under torchrun each process trains on its own device (cuda:<LOCAL_RANK>), not cuda:0.
    config = dataclasses.replace(config, device=context.device)
    rank, world_size = context.rank, context.world_size
    if model_config is None:
        kind, model_config = preset_model(config)
    elif kind is None:
        raise DataFormatError("train(): an explicit model_config needs its checkpoint kind")
    if rank == 0:
        check_resume(Path(config.output_dir), resume=config.resume, force=config.force)
        write_run_metadata(config.output_dir, config)
    pairs, validation_pairs, validation_records = _prepare(config)
    run, start_epoch, saved = _setup(config, model_config, kind, world_size)
    labelled = any(math.isfinite(p.mos_a) or math.isfinite(p.mos_b) for p in pairs)
    run.best.metadata["mos_head_trained"] = config.beta > 0 and labelled
    train_set, validation_set = _datasets(config, run, pairs, validation_pairs, world_size)
    loader = make_loader(train_set, config, True, world_size, rank)
    validation_loader = make_loader(validation_set, config, False, 1, 0)
    run.loader_generator = loader.generator
    if saved is not None:  # last, so that nothing above draws from the restored generators
        _restore_generators(saved, run)
    for epoch in range(start_epoch, config.epochs):
        train_set.epoch = epoch
        if world_size > 1:
            loader.sampler.set_epoch(epoch)
        train_loss = run_epoch(run.model, loader, config, run.optimizer, epoch)
        run.scheduler.step()
        if rank == 0:
            _end_epoch(run, epoch, train_loss, validation_loader, config)
    if world_size > 1:
        torch.distributed.barrier()
    if rank == 0:
        select_best(run.best, validation_records, config, run.folder)
    return run.folder / "best.pt"


def _datasets(
    config: TrainConfig, run: TrainingRun, pairs: list, validation_pairs: list, world_size: int
) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]:
    """Audio pair datasets, or cached frozen features for a frozen-encoder model (single process;
    under DDP the audio path keeps gradient synchronisation in the wrapped forward)."""
    rate = run.model_config.sample_rate
    model = unwrap(run.model)
    if supports_frozen_cache(model) and world_size == 1:
        paths = [path for pair in pairs + validation_pairs for path in (pair.path_a, pair.path_b)]
        features = encode_files(model, paths, rate, config.device, config.feature_store)
        return FeaturePairDataset(pairs, features), FeaturePairDataset(validation_pairs, features)
    crop = config.max_seconds or None
    train_set = PairDataset(pairs, rate, crop, config.seed, config.cache_audio)
    return train_set, PairDataset(validation_pairs, rate, crop, config.seed, True)


def _maybe_resume(
    config: TrainConfig,
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    best: BestCheckpoints,
) -> tuple[int, dict[str, Any] | None]:
    """Restore ``last.pt`` when resuming (generators: :func:`_restore_generators`).

    Returns:
        The epoch to start from and the saved training state (``None`` for a fresh start).
    """
    last = folder / "last.pt"
    if not (config.resume and last.is_file()):
        return 0, None
    payload = load_checkpoint(last)
    state = payload.get("training_state")
    if state is None:
        raise DataFormatError(f"{last} is not a training checkpoint (no training_state)")
    model.load_state_dict(payload["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    best.entries = [(float(loss), str(path)) for loss, path in state["best"]]
    best.remove_unlisted()
    return int(state["epoch"]), state


def _restore_generators(state: dict[str, Any], run: TrainingRun) -> None:
    if "rng" in state:
        restore_rng_state(state["rng"])
        run.loader_generator.set_state(state["loader_generator"])
    else:  # checkpoints written before the other generators were stored
        torch.set_rng_state(state["torch_rng"])
