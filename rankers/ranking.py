"""The ranking pipeline of ``sqa rank``: pairwise tables from a ranker or from per-file scores.

:func:`run_ranker` scores every homologous pair with a pairwise model (or, adaptively, the
uncertain ones), :func:`run_scalar` turns per-file scalar scores into the same table; the command
(:mod:`rankers.commands`) then ranks with ECS and Bradley-Terry and writes the outputs.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rankers.adaptive import adaptive_ranking
from rankers.ecs import scalar_probability_table
from rankers.loading import load_ranker
from sqa.errors import SqaError

if TYPE_CHECKING:  # torch is imported only when a ranker runs (`sqa rank --help` stays fast)
    from rankers.inference import HomologousAudio, RankerScorer


@dataclass(frozen=True)
class RankOptions:
    """What a ranking pass needs from the command line.

    Attributes:
        ranker: Checkpoint or release name (``None`` with ``scores``).
        scores: Per-file score table for ECS over scalar scores, or ``None``.
        score_column: Column of ``scores``.
        scoring: ``bs`` (binary) or ``nbs`` (non-binary) ECS scoring.
        symmetric: Compare both input orders.
        adaptive: Compare only the system pairs whose order is uncertain.
        noisy: Folder of the unprocessed inputs (Noisy-Speech MOS), or ``None``.
        batch_size: Pairs per forward pass.
        device: Torch device.
        seed: Seed of the adaptive selection.
        no_progress: No progress bar.
        backend: ``torch`` or ``onnx`` (default: by the ranker file's suffix).
    """

    ranker: str | None = None
    scores: str | None = None
    score_column: str = "dnsmos_ovrl"
    scoring: str = "nbs"
    symmetric: bool = False
    adaptive: bool = False
    noisy: str | None = None
    batch_size: int = 64
    device: str = "cpu"
    seed: int = 0
    no_progress: bool = False
    backend: str | None = None


def _folder_index(folder: str) -> dict[str, Path]:
    from sqa.data.folders import files_by_stem, list_audio

    if not Path(folder).is_dir():
        raise SqaError(f"--noisy {folder}: not a folder")
    return files_by_stem(f"--noisy {folder}", list_audio(folder))


def score_all(
    scorer: RankerScorer,
    audio: HomologousAudio,
    systems: list[str],
    utterances: list[str],
    options: RankOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Full ECS table ``(K, K, M)``, replication MOS ``(K, M)``, noisy MOS ``(K, M)``, skipped."""
    from tqdm import tqdm

    from rankers.inference import HomologousAudio

    count = len(systems)
    table = np.full((count, count, len(utterances)), np.nan)
    replication = np.full((count, len(utterances)), np.nan)
    noisy_mos = np.full((count, len(utterances)), np.nan)
    noisy_paths = _folder_index(options.noisy) if options.noisy else {}
    noisy_audio = HomologousAudio({"noisy": noisy_paths}, audio.sample_rate)
    skipped = []
    progress = tqdm(utterances, desc="sqa rank", file=sys.stderr, disable=options.no_progress)
    for index, utterance in enumerate(progress):
        waves = audio.load(systems, utterance)
        if waves is None:
            skipped.append(utterance)
            continue
        table[:, :, index], replication[:, index] = scorer.utterance_table(waves, options.symmetric)
        if options.noisy:
            noisy = noisy_audio.load(["noisy"], utterance)
            if noisy is not None:
                length = min(noisy.shape[1], waves.shape[1])
                noisy_mos[:, index] = scorer.noisy_speech_mos(waves[:, :length], noisy[0, :length])
    # A missing/unreadable noisy input only loses that utterance's Noisy-Speech MOS (reported).
    audio.unreadable.extend(noisy_audio.unreadable)
    return table, replication, noisy_mos, skipped


def mean_rows(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            finite.any(axis=1), np.where(finite, values, 0).sum(1) / finite.sum(1), np.nan
        )


def correlations(scores: np.ndarray, systems: list[str], mos: dict[str, float]) -> dict[str, Any]:
    """System-level KRCC/SRCC/LCC of ``scores`` against human MOS (systems without MOS left out)."""
    from sqa.stats import ktau, lcc, srcc

    chosen = [
        index for index, system in enumerate(systems) if math.isfinite(mos.get(system, math.nan))
    ]
    predicted = scores[chosen]
    reference = np.array([mos[systems[index]] for index in chosen])
    return {
        "systems": len(chosen),
        "krcc": ktau(predicted, reference),
        "srcc": srcc(predicted, reference),
        "lcc": lcc(predicted, reference),
    }


@dataclass
class RankRun:
    """What a ranking pass produced, before ECS/Bradley–Terry and output.

    Attributes:
        table: ``(K, K, M)`` probability table.
        replication: ``(K, M)`` per-file MOS (replication mode) or scalar scores; NaN if none.
        noisy_mos: ``(K, M)`` Noisy-Speech MOS; NaN if not requested.
        skipped: Utterances left out because a file was unusable.
        summary: Extra entries for the summary JSON.
    """

    table: np.ndarray
    replication: np.ndarray
    noisy_mos: np.ndarray
    skipped: list[str]
    summary: dict[str, Any]


def run_ranker(options: RankOptions, homologous: Any) -> RankRun:
    """Score every (or, adaptively, some) homologous pairs with the ranker model."""
    from rankers.inference import HomologousAudio, RankerScorer

    systems, utterances = homologous.systems, homologous.utterances
    model = load_ranker(options.ranker, options.device, backend=options.backend)
    audio = HomologousAudio(homologous.paths, int(model.sample_rate))
    scorer = RankerScorer(model, options.device, options.batch_size)
    summary: dict[str, Any] = {"ranker": options.ranker}
    if options.adaptive:
        result = adaptive_ranking(
            lambda requests: scorer.compare_requests(audio, systems, utterances, requests),
            len(systems),
            len(utterances),
            scoring=options.scoring,
            seed=options.seed,
        )
        empty = np.full((len(systems), len(utterances)), np.nan)
        skipped = sorted({item[1] for item in audio.unreadable})
        summary["adaptive"] = {"comparisons": result.comparisons, "full": result.full_comparisons}
        run = RankRun(result.probabilities, empty, empty, skipped, summary)
    else:
        table, replication, noisy_mos, skipped = score_all(
            scorer, audio, systems, utterances, options
        )
        if getattr(model, "checkpoint_metadata", {}).get("mos_head_trained") is False:
            # Trained on preference pairs only: its MOS head never saw a target.
            replication, noisy_mos = replication * np.nan, noisy_mos * np.nan
            summary["predicted_mos"] = "not available: the ranker's MOS head was not trained"
        run = RankRun(table, replication, noisy_mos, skipped, summary)
    audio.warn_cropped()
    summary["unreadable"] = [list(item) for item in audio.unreadable]
    return run


def run_scalar(options: RankOptions, homologous: Any) -> RankRun:
    """ECS over per-file scores of any scalar predictor (a baseline; higher is better)."""
    scores = _scores_by_utterance(options.scores, options.score_column, homologous)
    summary = {
        "scores": options.scores,
        "score_column": options.score_column,
        "missing_scores": int(np.isnan(scores).sum()),
        "unreadable": [],
    }
    return RankRun(scalar_probability_table(scores), scores, scores * np.nan, [], summary)


def _scores_by_utterance(path: str, column: str, homologous: Any) -> np.ndarray:
    """``(K, M)`` scores of the homologous files, NaN where the table has no row.

    A file ``<system>/<utterance>.wav`` is looked up by ``utterance_id`` first (a listing such as
    the development set's names each rating by its own ``sample_id``), then by ``sample_id``
    (a ``sqa score --systems`` table names rows by the file stem); the key that matches more
    files wins.
    """
    from rankers.data import read_mos_table

    best = np.full((len(homologous.systems), len(homologous.utterances)), np.nan)
    for key in ("utterance_id", "sample_id"):
        values = read_mos_table(path, column, utterance_key=key)
        scores = np.array(
            [
                [values.get((system, stem), np.nan) for stem in homologous.utterances]
                for system in homologous.systems
            ]
        )
        if np.isfinite(scores).sum() > np.isfinite(best).sum():
            best = scores
    return best
