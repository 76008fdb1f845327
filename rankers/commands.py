"""``sqa rank`` (rank systems from folders of audio) and ``sqa train-ranker``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rankers.adaptive import adaptive_ranking
from rankers.bradley_terry import bradley_terry_bootstrap
from rankers.ecs import ecs_ranking, scalar_probability_table, symmetrise
from rankers.loading import DEFAULT_RANKER, NO_RANKER_MESSAGE, load_ranker
from rankers.rank_outputs import (
    describe_unreadable,
    per_file_rows,
    per_file_scores,
    ranking_rows,
    report,
    side_outputs,
    write_outputs,
)
from sqa.commands.options import add_path_argument
from sqa.commands.sources import add_run_arguments, add_source_arguments
from sqa.errors import SqaError
from sqa.fileio import check_writable

if TYPE_CHECKING:  # torch is imported only when a ranker runs (`sqa rank --help` stays fast)
    from rankers.inference import HomologousAudio, RankerScorer


def build_rank_parser() -> argparse.ArgumentParser:
    """Argument parser of ``sqa rank``."""
    parser = argparse.ArgumentParser(
        prog="sqa rank",
        description="Rank systems (folders of homologous enhanced files) with a pairwise ranker "
        "and the ECS algorithm of URGENT-PK.",
    )
    add_source_arguments(parser)
    parser.add_argument("--ref-dir", metavar="DIR", help="reference folder inside --root to skip")
    parser.add_argument("--noisy", metavar="DIR", help="unprocessed inputs (Noisy-Speech MOS)")
    parser.add_argument(
        "--ranker", metavar="CKPT|NAME", help=f"checkpoint/name; default {DEFAULT_RANKER}"
    )
    parser.add_argument(
        "--scores",
        metavar="TABLE",
        help="baseline instead of a ranker: ECS over per-file scalar scores (CSV/JSONL with "
        "system_id, sample_id and --score-column, e.g. from `sqa score`)",
    )
    parser.add_argument("--score-column", default="dnsmos_ovrl", help="column of --scores")
    parser.add_argument(
        "--scoring", choices=("bs", "nbs"), default="nbs", help="Binary or Non-Binary Scoring"
    )
    parser.add_argument("--symmetric", action="store_true", help="average both input orders")
    parser.add_argument("--adaptive", action="store_true", help="compare only uncertain pairs")
    parser.add_argument("--mos", metavar="CSV", help="human MOS (per file or per system)")
    parser.add_argument("--mos-column", default="mos", help="column of --mos")
    parser.add_argument("--output", required=True, help="ranking table (.csv or .jsonl)")
    parser.add_argument("--per-file", metavar="TABLE", help="per-file win probability table")
    parser.add_argument("--bootstrap", type=int, default=200, help="resamples for rank CIs")
    parser.add_argument("--batch-size", type=int, default=64, help="pairs per forward pass")

    parser.add_argument("--seed", type=int, default=0, help="bootstrap/adaptive seed")
    parser.add_argument("--strict", action="store_true", help="missing files are an error")
    add_run_arguments(parser)
    add_path_argument(parser)
    return parser


def _folder_index(folder: str) -> dict[str, Path]:
    from sqa.data.folders import list_audio

    if not Path(folder).is_dir():
        raise SqaError(f"--noisy {folder}: not a folder")
    return {path.stem: path for path in list_audio(folder)}


def score_all(
    scorer: RankerScorer,
    audio: HomologousAudio,
    systems: list[str],
    utterances: list[str],
    arguments: argparse.Namespace,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Full ECS table ``(K, K, M)``, replication MOS ``(K, M)``, noisy MOS ``(K, M)``, skipped."""
    from tqdm import tqdm

    from rankers.inference import HomologousAudio

    count = len(systems)
    table = np.full((count, count, len(utterances)), np.nan)
    replication = np.full((count, len(utterances)), np.nan)
    noisy_mos = np.full((count, len(utterances)), np.nan)
    noisy_paths = _folder_index(arguments.noisy) if arguments.noisy else {}
    noisy_audio = HomologousAudio({"noisy": noisy_paths}, audio.sample_rate)
    skipped = []
    progress = tqdm(utterances, desc="sqa rank", file=sys.stderr, disable=arguments.no_progress)
    for index, utterance in enumerate(progress):
        waves = audio.load(systems, utterance)
        if waves is None:
            skipped.append(utterance)
            continue
        table[:, :, index], replication[:, index] = scorer.utterance_table(
            waves, arguments.symmetric
        )
        if arguments.noisy:
            noisy = noisy_audio.load(["noisy"], utterance)
            if noisy is not None:
                length = min(noisy.shape[1], waves.shape[1])
                noisy_mos[:, index] = scorer.noisy_speech_mos(waves[:, :length], noisy[0, :length])
    # A missing/unreadable noisy input only loses that utterance's Noisy-Speech MOS (reported).
    audio.unreadable.extend(noisy_audio.unreadable)
    return table, replication, noisy_mos, skipped


def _mean_rows(values: np.ndarray) -> np.ndarray:
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


def choose_ranker(arguments: argparse.Namespace) -> str | None:
    """The ranker to load: ``--ranker``, else the installed default (None with ``--scores``)."""
    if arguments.scores:
        print(
            f"sqa rank: no ranker; ECS over {arguments.scores} column {arguments.score_column!r}",
            file=sys.stderr,
        )
        return None
    from sqa.checkpoint.manifest import choose_release

    return choose_release(arguments.ranker, DEFAULT_RANKER, "sqa rank", NO_RANKER_MESSAGE)


def _check_outputs(arguments: argparse.Namespace) -> tuple[Path, Path | None]:
    """Refuse existing outputs (without --force) before any work: ranking and per-file paths."""
    output = check_writable(arguments.output, arguments.force)
    for path in side_outputs(output):
        check_writable(path, arguments.force)
    per_file = check_writable(arguments.per_file, arguments.force) if arguments.per_file else None
    if per_file is not None and per_file.suffix.lower() not in (".csv", ".jsonl"):
        raise SqaError(f"--per-file {per_file}: use a .csv or .jsonl file")
    return output, per_file


def _homologous(arguments: argparse.Namespace) -> Any:
    """Systems and their matched utterances from the source flags (every input of
    :func:`sqa.commands.sources.records_from_arguments`); homologous files share
    ``utterance_id`` (else the ``sample_id`` less its system name)."""
    from sqa.commands.sources import records_from_arguments
    from sqa.data.folders import homologous_from_records

    exclude = [arguments.ref_dir] if arguments.ref_dir else []
    records = records_from_arguments(arguments, exclude=exclude)
    homologous = homologous_from_records(records, strict=arguments.strict)
    if len(homologous.systems) < 2:
        raise SqaError(f"need at least two systems to rank, found {len(homologous.systems)}")
    return homologous


def _summary(arguments: argparse.Namespace, homologous: Any, run: RankRun) -> dict[str, Any]:
    return {
        "systems": len(homologous.systems),
        "utterances": len(homologous.utterances) - len(run.skipped),
        "scoring": arguments.scoring,
        "symmetric": arguments.symmetric,
        "skipped_utterances": run.skipped,
        "missing": homologous.missing,
        **run.summary,
    }


def rank_main(argv: Sequence[str]) -> int:
    """``sqa rank``: see ``sqa rank --help``."""
    arguments = build_rank_parser().parse_args(list(argv))
    output, per_file = _check_outputs(arguments)
    arguments.ranker = choose_ranker(arguments)
    homologous = _homologous(arguments)
    run = (
        _run_scalar(arguments, homologous)
        if arguments.scores
        else _run_ranker(arguments, homologous)
    )
    if len(run.skipped) == len(homologous.utterances):
        raise SqaError(
            "no utterance could be read in every system: "
            + describe_unreadable(run.summary["unreadable"])
        )
    ranking = ecs_ranking(run.table, homologous.systems, arguments.scoring, arguments.symmetric)
    table = symmetrise(run.table) if arguments.symmetric else run.table
    bootstrap = bradley_terry_bootstrap(
        table, arguments.scoring, arguments.bootstrap, seed=arguments.seed
    )
    human = _read_mos(arguments)
    rows = ranking_rows(
        ranking, bootstrap, _mean_rows(run.replication), _mean_rows(run.noisy_mos), human
    )
    summary = _summary(arguments, homologous, run)
    if human:
        summary["correlation_ecs"] = correlations(ranking.scores, homologous.systems, human)
    files = None
    if per_file is not None:
        has_mos = not arguments.scores and bool(np.isfinite(run.replication).any())
        mos = run.replication if has_mos else None
        files = (per_file, per_file_rows(homologous, per_file_scores(run.table), mos))
    write_outputs(output, rows, ranking, summary, arguments.force, files)
    report(summary, output)
    return 0


def _run_ranker(arguments: argparse.Namespace, homologous: Any) -> RankRun:
    """Score every (or, adaptively, some) homologous pairs with the ranker model."""
    from rankers.inference import HomologousAudio, RankerScorer

    systems, utterances = homologous.systems, homologous.utterances
    model = load_ranker(arguments.ranker, arguments.device)
    audio = HomologousAudio(homologous.paths, int(model.sample_rate))
    scorer = RankerScorer(model, arguments.device, arguments.batch_size)
    summary: dict[str, Any] = {"ranker": arguments.ranker}
    if arguments.adaptive:
        result = adaptive_ranking(
            lambda requests: scorer.compare_requests(audio, systems, utterances, requests),
            len(systems),
            len(utterances),
            scoring=arguments.scoring,
            seed=arguments.seed,
        )
        empty = np.full((len(systems), len(utterances)), np.nan)
        skipped = sorted({item[1] for item in audio.unreadable})
        summary["adaptive"] = {"comparisons": result.comparisons, "full": result.full_comparisons}
        run = RankRun(result.probabilities, empty, empty, skipped, summary)
    else:
        table, replication, noisy_mos, skipped = score_all(
            scorer, audio, systems, utterances, arguments
        )
        if getattr(model, "checkpoint_metadata", {}).get("mos_head_trained") is False:
            # Trained on preference pairs only: its MOS head never saw a target.
            replication, noisy_mos = replication * np.nan, noisy_mos * np.nan
            summary["predicted_mos"] = "not available: the ranker's MOS head was not trained"
        run = RankRun(table, replication, noisy_mos, skipped, summary)
    audio.warn_cropped()
    summary["unreadable"] = [list(item) for item in audio.unreadable]
    return run


def _run_scalar(arguments: argparse.Namespace, homologous: Any) -> RankRun:
    """ECS over per-file scores of any scalar predictor (a baseline; higher is better)."""
    scores = _scores_by_utterance(arguments.scores, arguments.score_column, homologous)
    summary = {
        "scores": arguments.scores,
        "score_column": arguments.score_column,
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


def _read_mos(arguments: argparse.Namespace) -> dict[str, float]:
    if not arguments.mos:
        return {}
    from rankers.data import read_system_mos

    return read_system_mos(arguments.mos, arguments.mos_column)
