"""URGENT 2026 Track-2 submissions: ``mos.scp`` + ``README.yaml`` zips, validation and ranking.

A submission is a zip with, at its root, ``mos.scp`` (``<sample_id> <float>`` per line, no header,
one line per file of the dataset, ids exactly the dataset's sample ids) and ``README.yaml`` (team,
members, data, system type, architecture, model size, loss, pretrained models; see
:func:`readme_template`). Ranking follows the challenge's overall ranking: the eight statistics of
each submission are ranked across submissions with dense ties, averaged within the three categories
(error: MSE; linear correlation: LCC; rank correlation: SRCC and KTAU; each at utterance and system
level), each category average is ranked again (the official pseudo-code's ``get_ranking`` around the
category mean) and these category ranks are averaged (:func:`sqa.stats.rank_systems`).
"""

from __future__ import annotations

import io
import math
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sqa.data.archives import quote, read_text_members
from sqa.data.records import AudioRecord
from sqa.data.track2 import (
    SCORES_NAME,
    expected_sample_ids,
    format_scores,
    parse_scores,
    read_scores_file,
    summarise_problems,
)
from sqa.errors import DataFormatError, SqaError
from sqa.fileio import atomic_open, check_writable

README_NAME = "README.yaml"
README_KEYS = (
    "team", "team_email", "team_members", "training_data", "validation_data", "system_type",
    "model_architecture", "model_size", "loss_function", "use_pretrained_models",
    "pretrained_models",
)  # fmt: skip
RANKING_CATEGORIES: dict[str, tuple[str, ...]] = {
    "error": ("sys_mse", "utt_mse"),
    "linear": ("sys_lcc", "utt_lcc"),
    "rank": ("sys_srcc", "utt_srcc", "sys_ktau", "utt_ktau"),
}
HIGHER_IS_BETTER = {
    name: not name.endswith("mse") for names in RANKING_CATEGORIES.values() for name in names
}


def _model_fields(model: Any) -> dict[str, Any]:
    """README fields that a predictor checkpoint can fill in."""
    config = model.config
    parameters = model.count_parameters()["total"] / 1e6
    front = {
        "ssl": "speech SSL model",
        "mel": "log-mel filterbank",
        "distillmos": "Distill-MOS network",
    }
    heads = len(model.metric_names)
    trunk = (
        "three parallel Transformer encoders"
        if config.trunk.kind == "paper"
        else "one Transformer encoder"
    )
    pretrained: dict[int, dict[str, str]] = {}
    if config.front_end == "distillmos":
        pretrained[1] = {
            "name": "Distill-MOS (distillmos 0.9.1, MIT licence)",
            "link": "https://github.com/microsoft/Distill-MOS",
            "usage": "frozen multi-layer feature extractor (Transformer layer outputs)",
        }
    elif config.front_end == "ssl":
        pretrained[1] = {
            "name": config.ssl.path or "SSL model",
            "link": "",
            "usage": "frozen feature extractor",
        }
    return {
        "system_type": [
            "multi-metric predictor" if heads > 1 else "single-metric predictor",
            "supervised",
        ],
        "model_architecture": f"Uni-VERSA-Ext style: {front[config.front_end]} front end, {trunk}, "
        f"masked mean pooling, {heads} range-activated heads",
        "model_size": f"{parameters:.2f} [M]",
        "loss_function": "MSE (per-metric standardised, missing labels masked)",
        "use_pretrained_models": bool(pretrained),
        "pretrained_models": pretrained or {1: {"name": "", "link": "", "usage": ""}},
    }


def readme_template(model: Any | None = None) -> str:
    """Text of a ``README.yaml`` to complete (fields from ``model`` filled in when given)."""
    fields: dict[str, Any] = {
        "team": "your_team_name",
        "team_email": "email_for_notifications",
        "team_members": {1: {"name": "member_name", "affiliation": "member_affiliation"}},
        "training_data": "",
        "validation_data": "",
        "system_type": [],
        "model_architecture": "",
        "model_size": "",
        "loss_function": "",
        "use_pretrained_models": False,
        "pretrained_models": {1: {"name": "", "link": "", "usage": ""}},
    }
    if model is not None:
        fields.update(_model_fields(model))
    body = yaml.safe_dump(fields, sort_keys=False, allow_unicode=True)
    notes = (
        "# URGENT 2026 Track 2 submission description (README.yaml).\n"
        "# training_data: corpora used for training, space separated.\n"
        "# system_type: e.g. supervised, multi-metric predictor, ensemble.\n"
        "# model_size: parameters in millions, e.g. '6.23 [M]'.\n"
    )
    return notes + body


# Values of the template (:func:`readme_template`) that a filled-in README.yaml must replace.
PLACEHOLDERS = frozenset({"your_team_name", "email_for_notifications", "member_name",
                          "member_affiliation"})  # fmt: skip


def _placeholders(value: Any) -> list[str]:
    """Template placeholder strings anywhere inside ``value``."""
    if isinstance(value, Mapping):
        return [found for item in value.values() for found in _placeholders(item)]
    if isinstance(value, list):
        return [found for item in value for found in _placeholders(item)]
    return [str(value)] if str(value).strip() in PLACEHOLDERS else []


def check_readme(text: str, *, submitting: bool = True) -> list[str]:
    """Problems of a README.yaml text (empty list: fine).

    Args:
        text: The file's text.
        submitting: Building a submission (``sqa track2 submit``): an empty README.yaml or one
            with the template's placeholders is refused. When only validating a zip, both are
            warnings (the organisers' own example submission has an empty README.yaml).
    """
    if not text.strip():
        message = f"{README_NAME} is empty; fill in the team and system description"
        if submitting:
            return [message]
        warnings.warn(message, stacklevel=2)
        return []
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:  # its message quotes the file: one short line of it
        return [f"{README_NAME} is not valid YAML: {' '.join(str(error).split())[:200]}"]
    if not isinstance(data, Mapping):
        return [f"{README_NAME} must be a YAML mapping"]
    problems = [f"{README_NAME} lacks '{key}'" for key in README_KEYS if key not in data]
    if "team" in data and not str(data["team"] or "").strip():
        problems.append(f"{README_NAME}: 'team' is empty")
    placeholders = sorted(set(_placeholders(data)))
    if placeholders:
        message = f"{README_NAME} still has template placeholder(s): {', '.join(placeholders)}"
        if submitting:
            problems.append(message)
        else:
            warnings.warn(message, stacklevel=2)
    return problems


def check_scores(scores: Mapping[str, float], expected: Sequence[str] | None) -> list[str]:
    """Missing and extra ids compared with the dataset (when known)."""
    if expected is None:
        return [] if scores else [f"{SCORES_NAME} is empty"]
    missing = [i for i in expected if i not in scores]
    extra = sorted(set(scores) - set(expected))
    problems = []
    if missing:
        shown = ", ".join(quote(i) for i in missing[:3])
        problems.append(f"{len(missing)} sample ids missing from {SCORES_NAME}, e.g. {shown}")
    if extra:
        shown = ", ".join(quote(i) for i in extra[:3])
        problems.append(f"{len(extra)} ids in {SCORES_NAME} are not in the dataset, e.g. {shown}")
    return problems


def validate_submission(path: str | Path, expected: Sequence[str] | None = None) -> list[str]:
    """All problems of a submission zip (empty list: valid).

    The zip is read in memory by :func:`sqa.data.archives.read_text_members`: unsafe or repeated
    member names, encrypted or oddly compressed members and zip bombs are problems found before
    anything is inflated, and nothing is extracted to disk.
    """
    texts, problems = read_text_members(path, [SCORES_NAME, README_NAME])
    if problems:
        return problems
    scores, problems = parse_scores(texts[SCORES_NAME])
    return (
        problems
        + check_scores(scores, expected)
        + check_readme(texts[README_NAME], submitting=False)
    )


def write_submission(
    path: str | Path,
    scores: Mapping[str, float],
    readme_text: str,
    expected: Sequence[str] | None = None,
    *,
    force: bool = False,
) -> Path:
    """Validate, then write the zip atomically (nothing is written when a problem is found).

    Raises:
        DataFormatError: Listing every problem found.
    """
    destination = check_writable(path, force)
    text = format_scores(scores)
    _, problems = parse_scores(text)
    problems += [f"score of {i!r} is not finite" for i, v in scores.items() if not math.isfinite(v)]
    problems += check_scores(scores, expected) + check_readme(readme_text)
    if problems:
        raise DataFormatError("invalid submission: " + summarise_problems(problems))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(SCORES_NAME, text)
        archive.writestr(README_NAME, readme_text)
    with atomic_open(destination, "wb") as stream:
        stream.write(buffer.getvalue())
    return destination


def read_submission_scores(path: str | Path, metric: str = "mos") -> dict[str, float]:
    """Scores by sample id from a zip, a ``mos.scp`` or a predictions table (``metric`` column)."""
    source = Path(path)
    if source.suffix.lower() in (".zip", ".scp"):
        scores, problems = read_scores_file(source)
    else:
        from sqa.track2.evaluation import prediction_table

        table = prediction_table(source)
        scores = {sample: row.get(metric, math.nan) for (_, sample), row in table.items()}
        problems = (
            [] if len(scores) == len(table) else [f"{source}: sample ids repeat across systems"]
        )
    if problems:
        raise DataFormatError(f"{source}: " + summarise_problems(problems))
    return scores


def rank_submissions(
    submissions: Mapping[str, Mapping[str, float]],
    references: Sequence[AudioRecord],
    metric: str = "mos",
    *,
    rerank_categories: bool = True,
) -> tuple[dict[str, dict[str, float]], Any]:
    """Track-2 statistics and the 3-category ranking of several submissions.

    Args:
        submissions: name -> sample_id -> score.
        references: Labelled dataset (sample ids unique).
        metric: Reference label to compare with.
        rerank_categories: Rank each category average again before averaging (the official
            procedure); ``False`` averages the category averages directly.

    Returns:
        name -> the eight statistics, and the :class:`sqa.stats.RankingResult`.
    """
    from sqa.stats import rank_systems
    from sqa.track2.evaluation import evaluate_predictions

    if len(submissions) < 1:
        raise SqaError("nothing to rank")
    expected_sample_ids(references)
    system_of = {record.sample_id: record.system_id for record in references}
    statistics = {}
    for name, scores in submissions.items():
        unknown = sorted(set(scores) - set(system_of))
        if unknown:
            raise DataFormatError(
                f"submission {name}: {len(unknown)} ids not in the references, e.g. {unknown[:3]}"
            )
        table = {(system_of[i], i): {metric: value} for i, value in scores.items()}
        result = evaluate_predictions(table, references, [metric])
        if result["missing_predictions"]:
            raise DataFormatError(
                f"submission {name}: {len(result['missing_predictions'])} files lack a score"
            )
        statistics[name] = {
            k: v for k, v in result["metrics"][metric].items() if k in HIGHER_IS_BETTER
        }
        unlabelled = result["metrics"][metric]["unlabelled"]
    if unlabelled:
        warnings.warn(
            f"{unlabelled} reference row(s) without a finite {metric!r} label were left out",
            stacklevel=2,
        )
    ranking = rank_systems(
        statistics,
        RANKING_CATEGORIES,
        HIGHER_IS_BETTER,
        ties="dense",
        rerank_categories=rerank_categories,
    )
    return statistics, ranking
