"""URGENT-PK layout: one Kaldi-like folder per team plus a shared utterance split.

::

    <root>/<team>/wav.scp     <utterance id> <path>   (relative paths: against <root>/<team>)
    <root>/<team>/mos.scp     <utterance id> <MOS>    (optional; absent id = missing label)
    <root>/split.json         {"tr": [ids], "cv": [ids], "tt": [ids]}

Ids inside a team are utterance ids, shared by the homologous outputs of all teams, so a record
has ``system_id = team`` and ``sample_id = utterance_id = id``; its MOS is ``metrics["mos"]``.
The split partitions utterances (not files), so no source recording leaks between training
and validation. An id listed in two splits is an error; split ids absent from every team are
warned about.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

from sqa.data.kaldi import read_scp, write_scp
from sqa.data.records import (
    AudioRecord,
    check_has_audio,
    check_identifier,
    check_unique,
    listed_path,
    parse_float,
    records_by_system,
    resolve_path,
)
from sqa.errors import DataFormatError, SqaError
from sqa.fileio import atomic_open, inside

SPLIT_NAMES = ("tr", "cv", "tt")
SPLIT_FILE = "split.json"


def _read_team(folder: Path) -> list[AudioRecord]:
    paths = read_scp(folder / "wav.scp")
    scores = read_scp(folder / "mos.scp") if (folder / "mos.scp").is_file() else {}
    unknown = [identifier for identifier in scores if identifier not in paths]
    if unknown:
        raise DataFormatError(f"{folder / 'mos.scp'}: ids not in wav.scp: {', '.join(unknown[:5])}")
    records = []
    for identifier, path in paths.items():
        if path.endswith("|"):
            raise DataFormatError(f"{folder / 'wav.scp'}: {identifier}: pipes are not supported")
        score = parse_float(scores.get(identifier), f"{folder / 'mos.scp'}:{identifier}")
        records.append(
            AudioRecord(
                sample_id=identifier,
                system_id=folder.name,
                path=resolve_path(path, folder),
                utterance_id=identifier,
                metrics={} if math.isnan(score) else {"mos": score},
            )
        )
    return records


def read_split(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read ``split.json``: keys among ``tr``/``cv``/``tt``, each a list of utterance ids.

    Raises:
        DataFormatError: Invalid JSON, unknown keys, non-string ids or an id in two splits.
    """
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{source}: not valid JSON ({error.msg})") from None
    except OSError as error:
        raise DataFormatError(f"{source}: cannot read ({error.strerror})") from None
    return validate_split(data, str(source))


def validate_split(data: object, source: str) -> dict[str, list[str]]:
    """Check a split mapping and return it with all three keys (missing ones empty).

    Raises:
        DataFormatError: Not a mapping, unknown keys, non-string ids or an id in both ``tr``
            and ``cv`` (an overlap with ``tt`` is only warned about).
    """
    if not isinstance(data, Mapping) or set(data) - set(SPLIT_NAMES):
        raise DataFormatError(f"{source}: expected an object with keys among {SPLIT_NAMES}")
    split = {}
    owner: dict[str, str] = {}
    for name in SPLIT_NAMES:
        ids = data.get(name, [])
        if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
            raise DataFormatError(f"{source}: {name!r} must be a list of id strings")
        if len(set(ids)) != len(ids):
            warnings.warn(f"{source}: {name!r} lists an id more than once", stacklevel=3)
            ids = list(dict.fromkeys(ids))
        overlap = [identifier for identifier in ids if identifier in owner]
        if overlap and name == "tt":
            # The official get_urgent2024_mos.py writes tt = every id (tt overlapping tr).
            warnings.warn(
                f"{source}: {len(overlap)} of the {len(ids)} 'tt' ids are also training or "
                "validation ids (as the official URGENT-PK preparation writes them); test "
                "numbers on them are not held out",
                stacklevel=3,
            )
        elif overlap:
            identifier = overlap[0]
            raise DataFormatError(
                f"{source}: id {identifier!r} is in both {owner[identifier]!r} and {name!r}"
            )
        for identifier in ids:
            owner.setdefault(identifier, name)
        split[name] = list(ids)
    return split


def read_urgentpk(
    root: str | os.PathLike[str],
) -> tuple[list[AudioRecord], dict[str, list[str]]]:
    """Read an URGENT-PK folder.

    Returns:
        ``(records, split)``: records of all teams (teams sorted by name, files in
        ``wav.scp`` order) and the split (``{}`` when ``split.json`` is absent).

    Raises:
        DataFormatError: No team folder, bad scp lines, duplicate ids or a bad split.
    """
    base = Path(root)
    if not base.is_dir():
        raise DataFormatError(f"{base}: not a folder")
    teams = sorted(entry for entry in base.iterdir() if (entry / "wav.scp").is_file())
    if not teams:
        raise DataFormatError(f"{base}: no <team>/wav.scp found (not an URGENT-PK folder)")
    records = [record for team in teams for record in _read_team(team)]
    check_unique(records, str(base))
    split = read_split(base / SPLIT_FILE) if (base / SPLIT_FILE).is_file() else {}
    known = {record.sample_id for record in records}
    unknown = [item for ids in split.values() for item in ids if item not in known]
    if unknown:
        warnings.warn(
            f"{base / SPLIT_FILE}: {len(unknown)} id(s) not found in any team, e.g. {unknown[0]}",
            stacklevel=2,
        )
    return records, split


def write_urgentpk(
    root: str | os.PathLike[str],
    records: Iterable[AudioRecord],
    split: Mapping[str, Iterable[str]] | None = None,
    *,
    force: bool = False,
) -> Path:
    """Write records (and optionally a split) in the URGENT-PK layout.

    The id of a record inside its team is its ``utterance_id`` (its ``sample_id`` when that is
    ``None``), so homologous files share ids; ``metrics["mos"]`` goes to ``mos.scp``.

    Raises:
        DataFormatError: Unsafe team names, repeated ids within a team, bad split keys.
        SqaError: A team's ``wav.scp`` or ``split.json`` exists and ``force`` is false.
    """
    base = Path(root)
    groups = records_by_system(records)
    for team, members in groups.items():
        inside(base, team)  # a team (system id) names a folder: never one outside ``root``
        renamed = [_as_team_record(record) for record in members]
        check_unique(renamed, str(base / team))
        for record in renamed:
            check_identifier(record.sample_id, "id", str(base / team))
    checked = (
        None if split is None else validate_split({k: list(v) for k, v in split.items()}, str(base))
    )
    targets = [base / team / "wav.scp" for team in groups]
    targets += [base / SPLIT_FILE] if split is not None else []
    existing = [str(path) for path in targets if path.exists()]
    if existing and not force:
        raise SqaError(f"{existing[0]} exists; pass --force to overwrite it")
    check_has_audio([record for members in groups.values() for record in members], str(base))
    for team, members in groups.items():
        folder = base / team
        folder.mkdir(parents=True, exist_ok=True)
        renamed = [_as_team_record(record) for record in members]
        write_scp(folder / "wav.scp", {r.sample_id: listed_path(r.path, folder) for r in renamed})
        scores = {r.sample_id: repr(r.metrics["mos"]) for r in renamed if "mos" in r.metrics}
        (folder / "mos.scp").unlink(missing_ok=True)
        if scores:
            write_scp(folder / "mos.scp", scores)
    if checked is not None:
        with atomic_open(base / SPLIT_FILE) as stream:
            json.dump(checked, stream, indent=1)
            stream.write("\n")
    return base


def _as_team_record(record: AudioRecord) -> AudioRecord:
    identifier = record.utterance_id if record.utterance_id is not None else record.sample_id
    mos = record.metrics.get("mos", math.nan)
    return AudioRecord(
        sample_id=identifier,
        system_id=record.system_id,
        path=record.path,
        utterance_id=identifier,
        metrics={} if math.isnan(mos) else {"mos": float(mos)},
    )
