"""Folder-per-system layout ``root/<system>/<utterance>.<ext>`` and homologous matching.

Homologous files are the outputs of different systems for the same input; they are matched by
file stem. Systems are either the audio-holding sub-folders of a root (:func:`discover_systems`)
or an explicit list of folders named by their last component (:func:`systems_from_paths`).

Reporting, in :func:`match_homologous`:

* a stem absent from some systems is *missing*: by default the utterances are intersected and a
  warning names how many were dropped; with ``strict=True`` it is a
  :class:`sqa.errors.DataFormatError` listing a few of them;
* two files with one stem in one system (``a.wav`` and ``a.flac``) are *duplicates*: warned
  about (the first by :data:`sqa.audio.AUDIO_EXTENSIONS` order is used) or, when strict, an error.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqa.audio import AUDIO_EXTENSIONS, is_audio_file, link_problem
from sqa.data.records import AudioRecord, check_unique
from sqa.errors import DataFormatError, SqaError
from sqa.fileio import atomic_open, inside

EXAMPLES_SHOWN = 5
REFERENCE_FOLDER = "_reference"  # the clean references beside generated system folders


def list_audio(
    folder: str | os.PathLike[str],
    *,
    recursive: bool = False,
    every: int = 0,
    holdout: bool = False,
) -> list[Path]:
    """The audio files of a folder: the one lister of the suite (sorted by path).

    Hidden files and folders (``.name``) are skipped and only :data:`sqa.audio.AUDIO_EXTENSIONS`
    count. A symbolic link that leads to no file (broken, or a loop such as ``ln -s a.wav a.wav``)
    is left out with a warning naming it and why.

    Args:
        folder: The folder.
        recursive: Also list the files of its sub-folders (corpora, pools of speech or noise).
        every: With ``every > 0``, a deterministic split: every ``every``-th file is held out.
        holdout: Return the held-out part of that split instead of the rest.

    Raises:
        DataFormatError: ``folder`` is not a folder.
    """
    files, dead = _scan_audio(folder, recursive)
    if dead:
        described = [f"{path}: {problem}" for path, problem in dead]
        warnings.warn(
            f"skipping {len(dead)} link(s) that lead to no file: {_examples(described, '; ')}",
            stacklevel=2,
        )
    if every > 0:
        files = [path for index, path in enumerate(files) if (index % every == 0) == holdout]
    return files


def _scan_audio(
    folder: str | os.PathLike[str], recursive: bool = False
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Audio files of a folder, and the audio-named links that lead nowhere (with why)."""
    root = Path(folder)
    if not root.is_dir():
        raise DataFormatError(f"{root}: not a folder")
    candidates = root.rglob("*") if recursive else root.iterdir()
    files, dead = [], []
    for path in sorted(candidates):
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
        problem = None if hidden or not is_audio_file(path) else link_problem(path)
        if problem is not None:
            dead.append((path, problem))
        elif not hidden and is_audio_file(path) and path.is_file():
            files.append(path)
    return files, dead


def files_by_stem(label: str, files: Iterable[Path]) -> dict[str, Path]:
    """Stem -> file for the audio files of one folder (``label``: a system name, ``--ref-dir
    DIR``), sorted by stem: of ``a.wav`` + ``a.flac`` the first by
    :data:`sqa.audio.AUDIO_EXTENSIONS` order is kept, with one warning per folder naming them."""
    by_stem: dict[str, list[Path]] = {}
    for path in sorted(files, key=lambda item: (item.stem, _extension_rank(item), item.name)):
        by_stem.setdefault(path.stem, []).append(path)
    repeated = [
        f"{stem} ({', '.join(path.name for path in paths)})"
        for stem, paths in by_stem.items()
        if len(paths) > 1
    ]
    if repeated:
        warnings.warn(
            f"{label}: {len(repeated)} name(s) with several files: {_examples(repeated)}; "
            "using the first of each (extension order " + ", ".join(AUDIO_EXTENSIONS) + ")",
            stacklevel=3,
        )
    return {stem: paths[0] for stem, paths in by_stem.items()}


def discover_systems(
    root: str | os.PathLike[str],
    *,
    exclude: Iterable[str | os.PathLike[str]] = (),
    skip_references: bool = False,
) -> dict[str, Path]:
    """Find the system folders under ``root``: sub-folders that directly hold audio files.

    Folders in ``exclude`` (``--ref-dir``) are left out; with ``skip_references`` (``sqa rank``,
    ``sqa score``) so is a sub-folder named ``_reference`` (as
    :func:`sqa.synthetic.write_system_folders` writes), with a warning naming what was skipped.

    Returns:
        System name (folder name) -> folder, sorted by name.

    Raises:
        DataFormatError: ``root`` is not a folder or has no such sub-folder.
    """
    base = Path(root)
    if not base.is_dir():
        raise DataFormatError(f"{base}: not a folder")
    excluded = {Path(path).resolve() for path in exclude}
    systems, skipped, without_audio = {}, [], []
    for entry in sorted(base.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        # _scan_audio, not list_audio: recognising a system says nothing (listing it warns)
        if not _scan_audio(entry)[0]:
            without_audio.append(entry.name)
            continue
        if (skip_references and entry.name == REFERENCE_FOLDER) or entry.resolve() in excluded:
            skipped.append(entry.name)
        else:
            systems[entry.name] = entry
    if skipped:
        warnings.warn(f"{base}: not ranking or scoring reference folder(s) {', '.join(skipped)}",
                      stacklevel=2)  # fmt: skip
    if without_audio and systems:  # an empty system folder would otherwise vanish unnoticed
        warnings.warn(f"{base}: sub-folder(s) without audio files, not taken as systems: "
                      f"{', '.join(without_audio)}", stacklevel=2)  # fmt: skip
    if not systems:
        raise DataFormatError(
            f"{base}: no sub-folder with audio files ({', '.join(AUDIO_EXTENSIONS)})"
        )
    return systems


def systems_from_paths(paths: Iterable[str | os.PathLike[str]]) -> dict[str, Path]:
    """Name an explicit list of system folders by their last path component.

    Raises:
        DataFormatError: A path is not a folder, or two folders share a name.
    """
    systems: dict[str, Path] = {}
    for item in paths:
        folder = Path(item)
        if not folder.is_dir():
            raise DataFormatError(f"{folder}: system folder does not exist")
        name = folder.resolve().name
        if name in systems:
            raise DataFormatError(
                f"two system folders are both named {name!r}: {systems[name]} and {folder}"
            )
        systems[name] = folder
    if not systems:
        raise DataFormatError("no system folders given")
    return systems


@dataclass
class HomologousSet:
    """Utterances present in every system, with the report of what did not match.

    Attributes:
        systems: System names, sorted.
        utterances: Stems present in every system, sorted.
        paths: System -> stem -> file, for every stem found (also the unmatched ones).
        missing: Stem -> systems lacking it (only stems absent somewhere).
        duplicates: ``"system/stem"`` -> all files sharing that stem in that system.
    """

    systems: list[str]
    utterances: list[str]
    paths: dict[str, dict[str, Path]]
    missing: dict[str, list[str]] = field(default_factory=dict)
    duplicates: dict[str, list[Path]] = field(default_factory=dict)

    def records(self) -> list[AudioRecord]:
        """One record per (system, matched utterance); ``sample_id = utterance_id = stem``."""
        return [
            AudioRecord(
                sample_id=stem,
                system_id=system,
                path=str(self.paths[system][stem]),
                utterance_id=stem,
            )
            for system in self.systems
            for stem in self.utterances
        ]


def _extension_rank(path: Path) -> int:
    return AUDIO_EXTENSIONS.index(path.suffix.lower())


def _index_system(name: str, folder: Path, duplicates: dict[str, list[Path]]) -> dict[str, Path]:
    """Map stem -> file for one system, recording stems that occur more than once."""
    files = list_audio(folder) if folder.is_dir() else []
    if not files:
        raise DataFormatError(f"system {name!r} ({folder}) holds no audio files")
    by_stem: dict[str, list[Path]] = {}
    for path in files:
        by_stem.setdefault(path.stem, []).append(path)
    chosen = {}
    for stem, candidates in by_stem.items():
        candidates.sort(key=_extension_rank)
        if len(candidates) > 1:
            duplicates[f"{name}/{stem}"] = candidates
        chosen[stem] = candidates[0]
    return chosen


def _examples(items: list[str], separator: str = ", ") -> str:
    shown = separator.join(items[:EXAMPLES_SHOWN])
    return shown + (
        f" (and {len(items) - EXAMPLES_SHOWN} more)" if len(items) > EXAMPLES_SHOWN else ""
    )


def match_homologous(system_dirs: Mapping[str, Path], *, strict: bool = False) -> HomologousSet:
    """Match utterances across systems by file stem.

    Args:
        system_dirs: System name -> folder (from :func:`discover_systems` or
            :func:`systems_from_paths`).
        strict: Turn missing files and duplicate stems into errors instead of warnings.

    Returns:
        The matched set with its missing/duplicate report.

    Raises:
        DataFormatError: No systems; a system without audio; no utterance common to all
            systems; or, when ``strict``, any missing file or duplicate stem.
    """
    if not system_dirs:
        raise DataFormatError("no systems to match")
    duplicates: dict[str, list[Path]] = {}
    paths = {
        name: _index_system(name, Path(system_dirs[name]), duplicates)
        for name in sorted(system_dirs)
    }
    return match_paths(paths, duplicates, strict=strict)


def homologous_from_records(
    records: Iterable[AudioRecord], *, strict: bool = False
) -> HomologousSet:
    """Match listed files (any :func:`sqa.data.load_records` source) across systems.

    Homologous files share ``utterance_id``; without one, the ``sample_id`` less its system name
    (:func:`utterance_key`): an URGENT-PK root, a Kaldi dir with ``utt2sys`` or a Track-2
    ``data.jsonl`` with one row per system and file.
    """
    paths: dict[str, dict[str, Path]] = {}
    duplicates: dict[str, list[Path]] = {}
    for record in records:
        stems = paths.setdefault(record.system_id, {})
        utterance = record.utterance_id or utterance_key(record.sample_id, record.system_id)
        if utterance in stems:
            duplicates.setdefault(f"{record.system_id}/{utterance}", [stems[utterance]])
            duplicates[f"{record.system_id}/{utterance}"].append(Path(record.path))
            continue
        stems[utterance] = Path(record.path)
    if not paths:
        raise DataFormatError("no systems to match")
    return match_paths({name: paths[name] for name in sorted(paths)}, duplicates, strict=strict)


def utterance_key(sample_id: str, system_id: str) -> str:
    """The part of a ``sample_id`` that names the source utterance: the id without its system's
    name (official Track-2 lists make ids unique per system, e.g. ``<system>-<utt>`` or
    ``<set>_<system>_x_<utt>``); the id itself when it does not contain the system name."""
    # The system name as a whole token (system "1" must not cut "utt001").
    pattern = rf"(?<![A-Za-z0-9]){re.escape(system_id)}(?![A-Za-z0-9])" if system_id else ""
    if not pattern or sample_id == system_id or not re.search(pattern, sample_id):
        return sample_id
    key = re.sub(pattern, "", sample_id, count=1)
    return re.sub(r"([_\-.])[_\-.]+", r"\1", key).strip("_-.") or sample_id


def match_paths(
    paths: dict[str, dict[str, Path]],
    duplicates: dict[str, list[Path]],
    *,
    strict: bool = False,
) -> HomologousSet:
    """Intersect the utterances of indexed systems (see :func:`match_homologous`)."""
    systems = list(paths)
    all_stems = sorted(set().union(*(set(stems) for stems in paths.values())))
    missing = {
        stem: [name for name in systems if stem not in paths[name]]
        for stem in all_stems
        if any(stem not in paths[name] for name in systems)
    }
    utterances = [stem for stem in all_stems if stem not in missing]
    if duplicates:
        message = f"{len(duplicates)} stem(s) with several files: {_examples(sorted(duplicates))}"
        if strict:
            raise DataFormatError(message)
        warnings.warn(message + "; using the first", stacklevel=3)
    _warn_foreign_systems(paths)
    if missing:
        described = [
            f"{stem} (missing in {', '.join(lacking)})" for stem, lacking in missing.items()
        ]
        message = f"{len(missing)} utterance(s) not in every system: {_examples(described)}"
        if strict:
            raise DataFormatError(message)
        warnings.warn(message + f"; using the {len(utterances)} common ones", stacklevel=3)
    if not utterances:
        raise DataFormatError(f"no utterance is present in all {len(systems)} systems")
    return HomologousSet(systems, utterances, paths, missing, duplicates)


def _warn_foreign_systems(paths: Mapping[str, Mapping[str, Path]]) -> None:
    """Warn about a system sharing under half of its files with the system it overlaps most:
    it is probably not homologous with the others (another data set, the references, a typo)."""
    for name, stems in paths.items():
        others = [set(other) for key, other in paths.items() if key != name]
        shared = max((len(set(stems) & other) for other in others), default=len(stems))
        if shared * 2 < len(stems):
            warnings.warn(
                f"system {name!r} shares only {shared} of its {len(stems)} files with the others: "
                "is it homologous with them?",
                stacklevel=4,
            )


def _copy_atomic(source: Path, destination: Path) -> None:
    """Copy a file so that ``destination`` appears complete or not at all."""
    with open(source, "rb") as reader, atomic_open(destination, "wb") as writer:
        shutil.copyfileobj(reader, writer)


def write_system_folders(
    root: str | os.PathLike[str], records: Iterable[AudioRecord], *, force: bool = False
) -> list[AudioRecord]:
    """Copy records' audio into ``root/<system_id>/<sample_id><suffix>``.

    Args:
        root: Destination root (created if needed).
        records: Records whose ``path`` exists; ``(system_id, sample_id)`` must be unique.
        force: Replace existing destination files.

    Returns:
        The records pointing at the copies (metrics and duration kept).

    Raises:
        DataFormatError: Duplicate keys, or ids that are not plain file names.
        SqaError: A destination exists and ``force`` is false.
    """
    items = list(records)
    check_unique(items, str(root))
    plans = []
    for record in items:
        source = Path(record.path)
        destination = inside(root, record.system_id, record.sample_id, suffix=source.suffix.lower())
        if not source.is_file():
            raise DataFormatError(
                f"{source}: audio file of {record.system_id}/{record.sample_id} not found"
            )
        if destination.exists() and not force:
            raise SqaError(f"{destination} exists; pass --force to overwrite it")
        plans.append((record, source, destination))
    copies = []
    for record, source, destination in plans:
        destination.parent.mkdir(parents=True, exist_ok=True)
        _copy_atomic(source, destination)
        copies.append(
            AudioRecord(
                record.sample_id,
                record.system_id,
                str(destination),
                record.utterance_id,
                record.duration,
                dict(record.metrics),
            )
        )
    return copies
