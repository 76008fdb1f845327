"""Validation split by utterance, the kept best-N checkpoints and selection by validation ECS
(paper, III-E)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from rankers.data import utterance_key
from rankers.ecs import ecs_scores
from rankers.inference import HomologousAudio, RankerScorer
from sqa.checkpoint import build_model, load_checkpoint, save_checkpoint
from sqa.data.records import AudioRecord
from sqa.errors import DataFormatError
from sqa.stats import ktau, lcc, srcc


def split_by_utterance(
    records: Sequence[AudioRecord],
    validation_utterances: int,
    seed: int = 0,
    split: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[AudioRecord], list[AudioRecord]]:
    """Hold out whole utterances (all their systems) for validation.

    Args:
        records: All records.
        validation_utterances: How many utterances to hold out at random.
        seed: Seed of the random choice.
        split: A given split (URGENT-PK ``split.json``): ``cv`` is validation, ``tr`` training
            (other utterances, e.g. ``tt``, are left out). Overrides the random choice.

    Returns:
        ``(training records, validation records)``.
    """
    if split and split.get("tr") and split.get("cv"):
        training_ids, validation_ids = set(split["tr"]), set(split["cv"])
        return (
            [record for record in records if utterance_key(record) in training_ids],
            [record for record in records if utterance_key(record) in validation_ids],
        )
    utterances = sorted({utterance_key(record) for record in records})
    count = min(max(validation_utterances, 0), max(len(utterances) - 1, 0))
    chosen = set(np.random.default_rng(seed).permutation(utterances)[:count].tolist())
    training = [record for record in records if utterance_key(record) not in chosen]
    validation = [record for record in records if utterance_key(record) in chosen]
    return training, validation


def ecs_validation_scores(
    model: nn.Module, records: Sequence[AudioRecord], scoring: str = "bs", mos_key: str = "mos"
) -> dict[str, float]:
    """LCC, SRCC and KRCC of validation ECS scores against system mean MOS, and their sum.

    Only utterances present for every system are compared; all values are NaN when fewer than
    three systems have MOS or nothing could be compared.
    """
    paths: dict[str, dict[str, Path]] = {}
    labels: dict[str, list[float]] = {}
    for record in records:
        paths.setdefault(record.system_id, {})[utterance_key(record)] = Path(record.path)
        labels.setdefault(record.system_id, []).append(record.metrics.get(mos_key, math.nan))
    systems = sorted(paths)
    shared = sorted(set.intersection(*(set(items) for items in paths.values()))) if paths else []
    empty = {"lcc": math.nan, "srcc": math.nan, "ktau": math.nan, "selection": math.nan}
    # No MOS at all (e.g. training on preference pairs only) is NaN without a warning.
    mos = np.array(
        [
            np.nanmean(labels[system]) if np.isfinite(labels[system]).any() else math.nan
            for system in systems
        ]
    )
    if len(systems) < 3 or not shared or not np.all(np.isfinite(mos)):
        return empty
    audio = HomologousAudio(paths, int(getattr(model, "sample_rate", 16000)))
    scorer = RankerScorer(model)
    table = np.full((len(systems), len(systems), len(shared)), np.nan)
    for index, utterance in enumerate(shared):
        waves = audio.load(systems, utterance)
        if waves is not None:
            table[:, :, index] = scorer.utterance_table(waves, replication=False)[0]
    scores = ecs_scores(table, scoring)
    result = {"lcc": lcc(scores, mos), "srcc": srcc(scores, mos), "ktau": ktau(scores, mos)}
    result["selection"] = result["lcc"] + result["srcc"] + result["ktau"]
    return result


def select_best(best: Any, validation_records: list, config: Any, folder: Path) -> None:
    """Score the kept checkpoints by validation ECS and write the winner to ``best.pt``.

    Args:
        best: The :class:`BestCheckpoints` of the run.
        validation_records: Records of the held-out utterances.
        config: The run's :class:`rankers.train_config.TrainConfig` (``scoring`` is used).
        folder: Run folder.
    """
    results = []
    for loss, path in best.entries:
        payload = load_checkpoint(path)
        scores = ecs_validation_scores(build_model(payload), validation_records, config.scoring)
        results.append((scores["selection"], -loss, path, payload, scores))
    if not results:
        raise DataFormatError("no checkpoint was kept; train for at least one epoch")
    # NaN selection scores (e.g. fewer than 3 validation systems) fall back to validation loss.
    _, _, path, payload, scores = max(
        results, key=lambda item: (item[0] if math.isfinite(item[0]) else -math.inf, item[1])
    )
    model = build_model(payload)
    metadata = {**payload["metadata"], "selected_from": path, "validation_ecs": scores}
    save_checkpoint(
        folder / "best.pt", model, payload["config"], kind=payload["kind"], metadata=metadata
    )


class BestCheckpoints:
    """Keeps the ``limit`` checkpoints with the lowest validation loss on disk."""

    def __init__(self, folder: Path, limit: int, entries: Sequence[Sequence[Any]] = ()) -> None:
        self.folder = folder
        self.limit = limit
        self.entries: list[tuple[float, str]] = [(float(a), str(b)) for a, b in entries]
        self.metadata: dict[str, Any] = {}  # added to every checkpoint it saves

    def offer(
        self, loss: float, epoch: int, model: nn.Module, kind: str, model_config: Any
    ) -> list[Path]:
        """Save this epoch if it is among the best.

        Returns:
            The checkpoint it displaces, for the caller to delete once ``last.pt`` no longer
            lists it (deleted earlier, a kill in between would leave ``last.pt`` naming a file
            that is gone).
        """
        if len(self.entries) >= self.limit and loss >= max(entry[0] for entry in self.entries):
            return []
        path = self.folder / f"epoch{epoch:03d}.pt"
        metadata = {**self.metadata, "epoch": epoch, "validation_loss": loss}
        save_checkpoint(path, unwrap(model), model_config, kind=kind, metadata=metadata)
        self.entries = sorted([*self.entries, (loss, str(path))])
        displaced = [Path(stale) for _, stale in self.entries[self.limit :]]
        self.entries = self.entries[: self.limit]
        return displaced

    def remove_unlisted(self) -> None:
        """Delete ``epochNNN.pt`` files that are not kept (left by a run killed mid-epoch)."""
        kept = {Path(path).name for _, path in self.entries}
        for path in self.folder.glob("epoch[0-9][0-9][0-9].pt"):
            if path.name not in kept:
                path.unlink(missing_ok=True)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
