"""Training pairs for the URGENT-PK ranker.

Sources (all become :class:`sqa.data.records.AudioRecord` lists grouped by utterance):

* a Track-2 ``data.jsonl``, a Kaldi folder, a CSV table or the URGENT-PK layout, through
  :func:`sqa.data.load_records` (grouping by ``system_id`` and ``utterance_id``; files without an
  ``utterance_id`` use their ``sample_id``);
* a root of system folders (``root/<system>/<utt>.wav``) plus a MOS CSV with columns
  ``system_id`` (or ``system``), ``sample_id`` (or ``utterance_id``) and ``mos``.

Pairs: every *ordered* pair of different systems on a shared utterance (both A-B and B-A) whose
labels differ by more than ``delta`` (paper: 0.3). With ``delta = 0`` every pair is kept except
exact ties, which are labelled 0.5 (``ties="half"``) or dropped (``ties="drop"``, the default).
Files without a MOS give no pair. Preference tables (``sqa pairs``, no MOS needed) are read by
:func:`pairs_from_preferences`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sqa.audio import load_audio
from sqa.data.records import AudioRecord, parse_float, resolve_path
from sqa.errors import DataFormatError
from sqa.fileio import flatten_row, read_rows

TIE_POLICIES = ("drop", "half")


@dataclass(frozen=True)
class PairExample:
    """One training pair: ``label`` is 1 if ``a`` is better, 0 if worse, 0.5 for a kept tie."""

    path_a: str
    path_b: str
    mos_a: float
    mos_b: float
    label: float
    utterance_id: str
    system_a: str
    system_b: str


def utterance_key(record: AudioRecord) -> str:
    """The utterance a record belongs to (``utterance_id``, else ``sample_id``)."""
    return record.utterance_id if record.utterance_id is not None else record.sample_id


def group_by_utterance(records: Iterable[AudioRecord]) -> dict[str, list[AudioRecord]]:
    """Utterance -> its records (one per system), in input order."""
    groups: dict[str, list[AudioRecord]] = {}
    for record in records:
        groups.setdefault(utterance_key(record), []).append(record)
    return groups


def build_pairs(
    records: Iterable[AudioRecord], delta: float = 0.3, ties: str = "drop", mos_key: str = "mos"
) -> list[PairExample]:
    """All ordered homologous pairs whose MOS differ by more than ``delta`` (see module docs)."""
    if ties not in TIE_POLICIES:
        raise DataFormatError(f"unknown ties policy {ties!r}: use 'drop' or 'half'")
    if delta < 0:
        raise DataFormatError(f"delta must be >= 0, got {delta}")
    pairs = []
    for utterance, group in group_by_utterance(records).items():
        for first in group:
            for second in group:
                if first.system_id == second.system_id:
                    continue
                mos_a = first.metrics.get(mos_key, math.nan)
                mos_b = second.metrics.get(mos_key, math.nan)
                label = _pair_label(mos_a - mos_b, delta, ties)
                if label is None:
                    continue
                pairs.append(
                    PairExample(
                        first.path,
                        second.path,
                        mos_a,
                        mos_b,
                        label,
                        utterance,
                        first.system_id,
                        second.system_id,
                    )
                )
    return pairs


def _pair_label(difference: float, delta: float, ties: str) -> float | None:
    if math.isnan(difference):
        return None
    if abs(difference) > delta:
        return 1.0 if difference > 0 else 0.0
    if difference == 0 and delta == 0 and ties == "half":
        return 0.5
    return None


def pairs_from_preferences(
    rows: Iterable[Mapping[str, object]],
    records: Sequence[AudioRecord] = (),
    base: Path | None = None,
) -> list[PairExample]:
    """Pairs from ``sqa pairs`` output (metric-consensus preferences, no MOS needed).

    Each row names a ``chosen`` and a ``rejected`` file (``chosen_system_id``,
    ``chosen_sample_id``, ``chosen_path`` and the same for ``rejected``) and their
    ``utterance_id``. An empty path is looked up in ``records`` by ``(system_id, sample_id)``.
    Relative paths are resolved against ``base`` (the folder of the preference file). Both input
    orders are produced (labels 1 and 0); MOS are NaN, so training masks the MSE term.
    """
    paths = {record.key: record.path for record in records}
    pairs = []
    for number, row in enumerate(rows, start=1):
        sides = []
        for prefix in ("chosen", "rejected"):
            try:
                key = (str(row[f"{prefix}_system_id"]), str(row[f"{prefix}_sample_id"]))
            except KeyError as error:
                raise DataFormatError(f"preference row {number}: missing column {error}") from None
            path = str(row.get(f"{prefix}_path") or paths.get(key, ""))
            if not path:
                raise DataFormatError(f"preference row {number}: no audio path for {key}")
            if base is not None:
                path = resolve_path(path, base)
            sides.append((key[0], path))
        utterance = str(row.get("utterance_id") or row["chosen_sample_id"])
        (chosen_system, chosen), (rejected_system, rejected) = sides
        pairs.append(
            PairExample(
                chosen, rejected, math.nan, math.nan, 1.0, utterance, chosen_system, rejected_system
            )
        )
        pairs.append(
            PairExample(
                rejected, chosen, math.nan, math.nan, 0.0, utterance, rejected_system, chosen_system
            )
        )
    return pairs


def read_mos_table(
    path: str | os.PathLike[str], column: str = "mos", utterance_key: str = "sample_id"
) -> dict[tuple[str, str], float]:
    """``(system_id, utterance) -> MOS`` from a CSV/JSONL with per-file rows.

    Args:
        path: The table.
        column: The value column.
        utterance_key: ``sample_id`` or ``utterance_id``: the column that names the utterance
            (the other is the fallback when a row lacks it).
    """
    other = "utterance_id" if utterance_key == "sample_id" else "sample_id"
    result = {}
    for number, nested_row in enumerate(read_rows(path), start=2):
        # `sqa score` JSONL rows keep their values under "metrics"; CSV rows are already flat.
        row = flatten_row(nested_row)
        system = row.get("system_id", row.get("system"))
        utterance = row.get(utterance_key, row.get(other))
        if system is None or utterance is None or column not in row:
            raise DataFormatError(
                f"{path}:{number}: need columns system_id, sample_id (or utterance_id), {column}"
            )
        result[(str(system), str(utterance))] = parse_float(row[column], f"{path}:{number}")
    return result


def read_system_mos(path: str | os.PathLike[str], column: str = "mos") -> dict[str, float]:
    """System -> mean MOS, from per-file rows or one row per system (no utterance column).

    A folder (URGENT-PK root with ``<team>/mos.scp``, Kaldi folder with ``mos.scp``) is read as a
    listing: each system's mean over its labelled files (missing labels are left out).
    """
    if Path(path).is_dir():
        from sqa.data import load_records

        labelled: dict[str, list[float]] = {}
        for record in load_records(path):
            value = record.metrics.get(column, math.nan)
            if math.isfinite(value):
                labelled.setdefault(record.system_id, []).append(value)
        if not labelled:
            raise DataFormatError(f"{path}: no file has a {column!r} label")
        return {system: float(np.mean(items)) for system, items in labelled.items()}
    rows = read_rows(path)
    if rows and ("sample_id" in rows[0] or "utterance_id" in rows[0]):
        values: dict[str, list[float]] = {}
        for (system, _), value in read_mos_table(path, column).items():
            values.setdefault(system, []).append(value)
        return {system: float(np.nanmean(items)) for system, items in values.items()}
    result = {}
    for number, row in enumerate(rows, start=2):
        system = row.get("system_id", row.get("system"))
        if system is None or column not in row:
            raise DataFormatError(f"{path}:{number}: need columns system_id (or system), {column}")
        result[str(system)] = parse_float(row[column], f"{path}:{number}")
    return result


def load_training_records(
    source: str | os.PathLike[str], mos_csv: str | os.PathLike[str] | None = None
) -> tuple[list[AudioRecord], dict[str, list[str]]]:
    """Records and utterance split (``{}`` unless the source defines one).

    A folder root with ``mos_csv`` uses the folder layout plus the MOS table; an URGENT-PK folder
    brings its ``split.json`` (``tr``/``cv``/``tt``); anything else goes through
    :func:`sqa.data.load_records` (Track-2 jsonl, Kaldi folder, CSV table, folder layout).
    """
    from sqa.data import describe_source, load_records

    location = Path(source)
    if location.is_dir() and mos_csv is not None:
        from sqa.data.folders import discover_systems, match_homologous

        records = match_homologous(discover_systems(location)).records()
        labels = read_mos_table(mos_csv)
        for record in records:
            value = labels.get((record.system_id, record.sample_id), math.nan)
            if not math.isnan(value):
                record.metrics["mos"] = value
        return records, {}
    if describe_source(location) == "urgentpk":
        from sqa.data.urgentpk import read_urgentpk

        return read_urgentpk(location)
    return load_records(location), {}


class PairDataset(torch.utils.data.Dataset):
    """Loads the two waveforms of a :class:`PairExample`, cropped to a common length.

    Args:
        pairs: The pair list.
        sample_rate: Rate the audio is resampled to.
        max_seconds: Random crop of longer pairs to this length (``None``: no crop).
        seed: Seed of the crop positions (offset by the item index and epoch).
        cache_audio: Keep decoded files in memory (fast for small sets; off for large ones).
    """

    def __init__(
        self,
        pairs: Sequence[PairExample],
        sample_rate: int = 16000,
        max_seconds: float | None = None,
        seed: int = 0,
        cache_audio: bool = False,
    ) -> None:
        self.pairs = list(pairs)
        self.cache_audio = cache_audio
        self.sample_rate = sample_rate
        self.max_samples = None if max_seconds is None else int(max_seconds * sample_rate)
        self.seed = seed
        self.epoch = 0
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, path: str) -> np.ndarray:
        if path in self._cache:
            return self._cache[path]
        samples = load_audio(path, sample_rate=self.sample_rate)[0]
        if self.cache_audio:
            self._cache[path] = samples
        return samples

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        pair = self.pairs[index]
        wave_a, wave_b = self._load(pair.path_a), self._load(pair.path_b)
        length = min(wave_a.shape[0], wave_b.shape[0])
        start = 0
        if self.max_samples is not None and length > self.max_samples:
            generator = np.random.default_rng((self.seed, self.epoch, index))
            start = int(generator.integers(0, length - self.max_samples + 1))
            length = self.max_samples
        return {
            "wave_a": torch.from_numpy(wave_a[start : start + length].copy()),
            "wave_b": torch.from_numpy(wave_b[start : start + length].copy()),
            "mos": torch.tensor([pair.mos_a, pair.mos_b], dtype=torch.float32),
            "label": torch.tensor(pair.label, dtype=torch.float32),
        }


def collate_pairs(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Zero-pad a list of pair items into a batch with ``lengths (B,)``.

    Returns:
        ``wave_a``/``wave_b`` ``(B, T_max)``, ``lengths`` ``(B,)``, ``mos`` ``(B, 2)``,
        ``label`` ``(B,)``.
    """
    lengths = torch.tensor([item["wave_a"].shape[0] for item in items])
    longest = int(lengths.max())
    wave_a = torch.zeros(len(items), longest)
    wave_b = torch.zeros(len(items), longest)
    for row, item in enumerate(items):
        wave_a[row, : lengths[row]] = item["wave_a"]
        wave_b[row, : lengths[row]] = item["wave_b"]
    return {
        "wave_a": wave_a,
        "wave_b": wave_b,
        "lengths": lengths,
        "mos": torch.stack([item["mos"] for item in items]),
        "label": torch.stack([item["label"] for item in items]),
    }
