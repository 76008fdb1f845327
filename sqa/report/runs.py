"""Report of a training run folder: curves from ``log.jsonl``, the resolved config, metadata.

The trainers (``sqa train-predictor``, ``sqa train-ranker``, ``sqa finetune``) append one JSON
object per logged step, with a ``step`` and numbers at any depth (``validation.metrics.mos.
utt_lcc``). Numbers are flattened to dotted names and grouped: losses, errors, correlations, rest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqa.errors import SqaError
from sqa.report.figures import png_bytes, training_curves
from sqa.report.html import Report, Section

# Bookkeeping numbers that are not curves worth plotting.
NOT_CURVES = frozenset({"step", "epoch", "skipped", "warmup_steps", "seconds", "count"})
CORRELATIONS = ("lcc", "srcc", "ktau", "correlation")
FIGURES = (
    ("Training and validation loss", "loss (as logged; predictors: MSE, standardised)"),
    ("Validation errors (utterance and system level)", "MSE (squared unit of each target)"),
    ("Validation correlations (utterance and system level)", "correlation (−1 to 1)"),
    ("Other logged values", "value (unit of each quantity)"),
)

Series = dict[str, tuple[list[float], list[float]]]


def flatten_numbers(row: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, float]]:
    """``(dotted name, value)`` of every finite number in a nested log row."""
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten_numbers(value, f"{name}.")
        elif _is_curve_number(key, value):
            yield name, float(value)


def _is_curve_number(key: Any, value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return math.isfinite(float(value)) and str(key) not in NOT_CURVES


def read_log(path: Path, warnings: list[str]) -> list[dict[str, Any]]:
    """The rows of a ``log.jsonl`` with a ``step``; torn or foreign lines become warnings."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            warnings.append(f"{path.name} line {number}: not JSON (torn write?); skipped")
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int | float):
            rows.append(row)
        else:
            warnings.append(f"{path.name} line {number}: no step; skipped")
    return rows


def _group_of(name: str) -> int:
    """0: losses, 1: validation errors (MSE), 2: correlations, 3: anything else."""
    leaf = name.rsplit(".", 1)[-1].lower()
    if "loss" in leaf:
        return 0
    if leaf.endswith("mse"):
        return 1
    return 2 if any(leaf.endswith(suffix) for suffix in CORRELATIONS) else 3


def collect_series(rows: Iterable[Mapping[str, Any]]) -> list[Series]:
    """[losses, validation errors, correlations, other numbers], each name -> (steps, values)."""
    groups: list[Series] = [{}, {}, {}, {}]
    for row in rows:
        step = float(row["step"])
        for name, value in flatten_numbers(row):
            label = name.removeprefix("validation.metrics.")
            steps, values = groups[_group_of(name)].setdefault(label, ([], []))
            steps.append(step)
            values.append(value)
    return groups


def _metadata_rows(folder: Path, warnings: list[str]) -> list[dict[str, Any]]:
    """``setting``/``value`` rows of ``config.yaml`` and ``environment.json`` (flattened)."""
    import yaml

    rows: list[dict[str, Any]] = []
    for name, load in (("config.yaml", yaml.safe_load), ("environment.json", json.loads)):
        path = folder / name
        if not path.is_file():
            warnings.append(f"{name} not found in {folder}")
            continue
        try:
            data = load(path.read_text(encoding="utf-8"))
        except (ValueError, yaml.YAMLError) as error:
            warnings.append(f"{name}: unreadable ({error})")
            continue
        rows += [{"file": name, "setting": key, "value": value} for key, value in _flat(data)]
    return rows


def _flat(data: Any, prefix: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from _flat(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), json.dumps(data, ensure_ascii=False, default=str)


def run_report(folder: str | Path) -> Report:
    """Report of a run folder: training curves from ``log.jsonl`` and its config/metadata."""
    run = Path(folder)
    log = run / "log.jsonl"
    if not log.is_file():
        raise SqaError(f"{run}: no log.jsonl (is it a run folder of a trainer?)")
    warnings: list[str] = []
    figures = []
    for series, (title, label) in zip(
        collect_series(read_log(log, warnings)), FIGURES, strict=True
    ):
        if series:
            figures.append((png_bytes(training_curves(series, title, label)), title))
    if not figures:
        warnings.append(f"{log}: no numbers to plot")
    sections = [
        Section("Training curves", figures=figures),
        Section(
            "Run configuration and metadata", tables=[("Settings", _metadata_rows(run, warnings))]
        ),
    ]
    return Report(f"sqa run report: {run.name}", sections, warnings=warnings)
