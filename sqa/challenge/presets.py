"""URGENT metric categories (presets and YAML files) and their mapping onto score-table columns.

The presets follow the metric tables and the ranking procedure of the official challenge rules
pages (read, not copied): URGENT 2024 (NeurIPS) = the metric set of the ranking example on the
``urgent-challenge/urgent2025`` rules page, whose evaluation links point at the
``urgent2024_challenge`` scripts; URGENT 2025 (Interspeech) = ``urgent-challenge/urgent2025``
``_pages/rules.md`` (commit 12ff12a: UTMOS added); URGENT 2026 (ICASSP, Track 1) =
``urgent-challenge/urgent2026`` ``_pages/track1.md`` (ScoreQ, emotion similarity, language-id
accuracy, character accuracy). POLQA and MOS are used only on the final blind test sets; they are
listed so that a table that has them is scored like the blind test, and are reported missing
otherwise. Directions are the rules' arrows, which agree with :mod:`sqa.metrics.registry`.

Each official metric names the columns that can stand for it, the first present one is used:
DNSMOS is ``dnsmos_ovrl``; character accuracy ``cacc`` or else ``cer`` (1 - CER ranks the same
as CER reversed). A YAML category map looks like::

    name: my-map
    categories:
      non_intrusive: [dnsmos_ovrl, nisqa_mos]
      intrusive: [pesq, sdr, lsd]
    directions: {my_metric: higher}   # only for columns the registry does not know
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sqa.errors import DataFormatError
from sqa.metrics.registry import METRIC_SPECS


@dataclass(frozen=True)
class MetricChoice:
    """One metric of a category: its official label and the columns that may hold it."""

    label: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class CategoryMap:
    """Categories of metrics, weighted equally; directions for columns the registry lacks."""

    name: str
    categories: dict[str, tuple[MetricChoice, ...]]
    directions: dict[str, bool] = field(default_factory=dict)

    def higher_is_better(self, column: str) -> bool:
        """Direction of ``column``: this map's, else the metric registry's."""
        if column in self.directions:
            return self.directions[column]
        spec = METRIC_SPECS.get(column)
        if spec is None:
            raise DataFormatError(
                f"category map {self.name!r}: no direction for {column!r}; "
                "give it under 'directions:' (higher or lower)"
            )
        return spec.higher_is_better


@dataclass(frozen=True)
class ResolvedMap:
    """A category map applied to the columns of the tables at hand.

    Attributes:
        categories: category -> the columns used (categories without any column left out).
        higher_is_better: column -> direction.
        labels: column -> official label.
        missing: official labels with no column in the tables (left out).
        empty_categories: categories left out because none of their metrics is present.
    """

    categories: dict[str, list[str]]
    higher_is_better: dict[str, bool]
    labels: dict[str, str]
    missing: list[str]
    empty_categories: list[str]


def _choices(*items: tuple[str, tuple[str, ...]]) -> tuple[MetricChoice, ...]:
    return tuple(MetricChoice(label, columns) for label, columns in items)


_NON_INTRUSIVE_2024 = (("DNSMOS", ("dnsmos_ovrl",)), ("NISQA", ("nisqa_mos",)))
_INTRUSIVE = _choices(
    ("POLQA", ("polqa",)),
    ("PESQ", ("pesq",)),
    ("ESTOI", ("estoi",)),
    ("SDR", ("sdr",)),
    ("MCD", ("mcd",)),
    ("LSD", ("lsd",)),
)
_INDEPENDENT = _choices(("SpeechBERTScore", ("sbert",)), ("LPS", ("lps",)))
_SUBJECTIVE = _choices(("MOS", ("mos",)))
_OFFICIAL_ONLY = {
    "polqa": True,
    "cacc": True,
    "emotion_similarity": True,
    "lid_accuracy": True,
}


def _urgent(non_intrusive: tuple, dependent: tuple, name: str) -> CategoryMap:
    return CategoryMap(
        name,
        {
            "non_intrusive": _choices(*non_intrusive),
            "intrusive": _INTRUSIVE,
            "downstream_independent": _INDEPENDENT,
            "downstream_dependent": _choices(*dependent),
            "subjective": _SUBJECTIVE,
        },
        dict(_OFFICIAL_ONLY),
    )


PRESETS: dict[str, CategoryMap] = {
    "urgent2024": _urgent(
        _NON_INTRUSIVE_2024, (("SpkSim", ("spksim",)), ("WAcc", ("wacc",))), "urgent2024"
    ),
    "urgent2025": _urgent(
        (*_NON_INTRUSIVE_2024, ("UTMOS", ("utmos",))),
        (("SpkSim", ("spksim",)), ("WAcc", ("wacc",))),
        "urgent2025",
    ),
    "urgent2026": _urgent(
        (*_NON_INTRUSIVE_2024, ("UTMOS", ("utmos",)), ("ScoreQ", ("scoreq",))),
        (
            ("SpkSim", ("spksim",)),
            ("EMOTION2VEC similarity", ("emotion_similarity",)),
            ("LID accuracy", ("lid_accuracy",)),
            ("CAcc", ("cacc", "cer")),
        ),
        "urgent2026",
    ),
}


def _direction(text: object, column: str, where: str) -> bool:
    value = str(text).strip().lower()
    if value in ("higher", "up", "true"):
        return True
    if value in ("lower", "down", "false"):
        return False
    raise DataFormatError(f"{where}: direction of {column!r} must be higher or lower, got {text!r}")


def load_category_map(path: str | os.PathLike[str]) -> CategoryMap:
    """Read a YAML category map (see the module docstring).

    Raises:
        DataFormatError: Missing file, bad YAML, or a category without metrics.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"--categories {path}: no such file")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DataFormatError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("categories"), dict):
        raise DataFormatError(f"{path}: expected a mapping with 'categories: {{name: [metrics]}}'")
    categories: dict[str, tuple[MetricChoice, ...]] = {}
    for category, metrics in document["categories"].items():
        if not isinstance(metrics, list) or not metrics:
            raise DataFormatError(f"{path}: category {category!r} must list metric columns")
        categories[str(category)] = tuple(MetricChoice(str(m), (str(m),)) for m in metrics)
    directions = {
        str(column): _direction(value, str(column), str(path))
        for column, value in (document.get("directions") or {}).items()
    }
    return CategoryMap(str(document.get("name") or path.stem), categories, directions)


def category_map(name_or_path: str) -> CategoryMap:
    """A preset by name (``urgent2024``/``urgent2025``/``urgent2026``) or a YAML file."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    if Path(name_or_path).suffix.lower() in (".yaml", ".yml") or Path(name_or_path).exists():
        return load_category_map(name_or_path)
    raise DataFormatError(
        f"--categories {name_or_path!r}: not a preset ({', '.join(PRESETS)}) nor a YAML file"
    )


def resolve(mapping: CategoryMap, columns: set[str] | list[str]) -> ResolvedMap:
    """Choose, for every official metric, the first of its columns present in ``columns``."""
    present = set(columns)
    categories: dict[str, list[str]] = {}
    labels: dict[str, str] = {}
    missing: list[str] = []
    empty: list[str] = []
    for category, choices in mapping.categories.items():
        chosen = []
        for choice in choices:
            column = next((name for name in choice.columns if name in present), None)
            if column is None:
                missing.append(choice.label)
            elif column not in chosen:
                chosen.append(column)
                labels[column] = choice.label
        if chosen:
            categories[category] = chosen
        else:
            empty.append(category)
    directions = {
        column: mapping.higher_is_better(column)
        for names in categories.values()
        for column in names
    }
    return ResolvedMap(categories, directions, labels, missing, empty)
