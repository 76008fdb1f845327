"""``sqa synthesize``: a seeded multi-voice, multi-language speech corpus from Debian TTS engines.

Writes ``DIR/wav/<utterance_id>.wav`` and ``DIR/utterances.jsonl``. Every wav is written through a
temporary file and renamed, and the manifest is rewritten atomically every
:data:`CHECKPOINT_EVERY` files and at the end, so an interrupted run resumes: a file that is on
disk, listed in the manifest with the same seed and readable at the requested rate is kept.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile
from tqdm import tqdm

from se_finetune.tts import (
    DEFAULT_TIMEOUT,
    ENGINES,
    SynthesisError,
    Voice,
    engine_voices,
    espeak_inventory,
    espeak_voice,
)
from se_finetune.tts import synthesize as synthesize_voice
from se_finetune.tts_text import make_text
from sqa.audio import save_audio
from sqa.errors import DataFormatError, SqaError
from sqa.fileio import dumps_json, read_jsonl, write_rows

MIN_SECONDS, MAX_SECONDS = 2.0, 6.0
# A text outside MIN..MAX seconds is redrawn this many times in all, rescaled to the middle.
ATTEMPTS = 6
CHECKPOINT_EVERY = 50
MANIFEST = "utterances.jsonl"


@dataclass(frozen=True)
class Planned:
    """Utterance ``index`` of the corpus, spoken by ``voice``."""

    index: int
    voice: Voice

    @property
    def utterance_id(self) -> str:
        """Index plus speaker, so a changed voice list never reuses another speaker's file."""
        return f"{self.index:06d}_{self.voice.slug}"

    @property
    def file(self) -> str:
        """Path of the wav relative to the output folder."""
        return f"wav/{self.utterance_id}.wav"


def synthesize_parser() -> argparse.ArgumentParser:
    """Arguments of ``sqa synthesize``."""
    parser = argparse.ArgumentParser(
        prog="sqa synthesize",
        description="Synthesise a seeded multi-voice, multi-language speech corpus with the "
        "installed espeak-ng, flite and festival voices.",
    )
    parser.add_argument("--output", required=True, type=Path, help="writes wav/ and " + MANIFEST)
    parser.add_argument("--count", required=True, type=int, help="number of utterances")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines")
    parser.add_argument(
        "--voices",
        help="comma-separated voices (NAME or ENGINE:NAME, espeak-ng LANG[+VARIANT]) or `all` "
        "(every espeak-ng language); default: a curated set of ~20 espeak-ng languages",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of texts and voice order")
    parser.add_argument("--sample-rate", type=int, default=16000, help="output rate in Hz")
    parser.add_argument("--jobs", type=int, default=1, help="parallel synthesis jobs")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per call")
    parser.add_argument("--force", action="store_true", help="re-synthesise existing files")
    return parser


def _warn(message: str) -> None:
    print(f"sqa synthesize: warning: {message}", file=sys.stderr)


def parse_engines(text: str) -> list[str]:
    """Engine names from ``--engines`` (unknown names are an error)."""
    engines = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in engines if name not in ENGINES]
    if unknown or not engines:
        raise SqaError(f"unknown engine(s) {unknown or text!r}; choose from {', '.join(ENGINES)}")
    return engines


def select_voices(voices: list[Voice], names: Sequence[str], timeout: float) -> list[Voice]:
    """The voices named in ``--voices`` (one warning for each name that matches none).

    Any installed espeak-ng ``LANG[+VARIANT]`` is accepted, not only the curated ones.
    """
    inventory: tuple[list[str], list[str]] = ([], [])
    if any(voice.engine == "espeak-ng" for voice in voices):
        inventory = espeak_inventory(timeout)
    chosen: dict[Voice, None] = {}
    for name in names:
        matches = [voice for voice in voices if name in (voice.name, voice.speaker_id)]
        extra = espeak_voice(name.removeprefix("espeak-ng:"), *inventory)
        if not matches and extra is not None:
            matches = [extra]
        if not matches:
            _warn(f"skipped voice {name!r}: not installed")
        chosen.update(dict.fromkeys(matches))
    return list(chosen)


def discover(engines: Sequence[str], selection: str | None, timeout: float) -> list[Voice]:
    """Installed voices of ``engines`` filtered by ``--voices``.

    Raises:
        SqaError: No engine or no selected voice is available (one line with the reasons).
    """
    names = [] if selection is None else [n.strip() for n in selection.split(",") if n.strip()]
    listed = bool(names) and names != ["all"]
    voices: list[Voice] = []
    problems: list[str] = []
    for engine in engines:
        try:
            # A list may name any espeak-ng language, so it is matched against all of them.
            found, left_out = engine_voices(engine, "all" if names else None, timeout)
        except SynthesisError as error:
            problems.append(str(error))
            continue
        voices += found
        problems += [f"skipped voice {speaker}: {why}" for speaker, why in left_out.items()]
    if listed and voices:
        voices = select_voices(voices, names, timeout)
    if not voices:
        raise SqaError(f"nothing could be synthesised: {'; '.join(problems) or 'no voice'}")
    for problem in problems:
        _warn(problem)
    return voices


def probe_voices(voices: list[Voice], arguments: argparse.Namespace) -> list[Voice]:
    """The voices that speak a short test text; each failing voice gets one warning line."""

    def probe(voice: Voice) -> str | None:
        try:
            text = make_text(
                voice.language, random.Random(f"probe:{voice.name}"), 3, digits=voice.digits
            )
            synthesize_voice(voice, text, arguments.sample_rate, timeout=arguments.timeout)
        except SqaError as error:
            return str(error)
        return None

    with ThreadPoolExecutor(max_workers=arguments.jobs) as pool:
        failures = list(pool.map(probe, voices))
    working = []
    for voice, failure in zip(voices, failures, strict=True):
        if failure is None:
            working.append(voice)
        else:
            _warn(f"skipped voice {voice.speaker_id}: {failure}")
    if not working:
        raise SqaError(f"nothing could be synthesised: all {len(voices)} voice(s) failed")
    return working


def plan(voices: Sequence[Voice], count: int, seed: int) -> list[Planned]:
    """Round-robin over the voices in a seeded order, so ``count`` files spread evenly."""
    order = list(voices)
    random.Random(seed).shuffle(order)
    return [Planned(index, order[index % len(order)]) for index in range(count)]


def render(item: Planned, arguments: argparse.Namespace) -> dict[str, Any]:
    """Synthesise one utterance of 2–6 s, save it, and return its manifest row.

    Raises:
        SqaError: The engine failed, its output was unusable, or no text fitted the range.
    """
    rng = random.Random(f"{arguments.seed}:{item.index}")
    words, duration = rng.uniform(6.0, 15.0), 0.0
    for _ in range(ATTEMPTS):
        text = make_text(item.voice.language, rng, words, digits=item.voice.digits)
        samples = synthesize_voice(
            item.voice, text, arguments.sample_rate, timeout=arguments.timeout
        )
        duration = samples.shape[0] / arguments.sample_rate
        if MIN_SECONDS <= duration <= MAX_SECONDS:
            save_audio(arguments.output / item.file, samples, arguments.sample_rate)
            return _row(item, text, duration, arguments.seed)
        # Speaking rates differ by engine and language: aim the next text at the middle.
        words = max(1.0, words * (MIN_SECONDS + MAX_SECONDS) / 2 / duration)
    raise SynthesisError(
        f"{duration:.1f} s after {ATTEMPTS} texts, outside {MIN_SECONDS:g}-{MAX_SECONDS:g} s"
    )


def _row(item: Planned, text: str, duration: float, seed: int) -> dict[str, Any]:
    voice = item.voice
    return {
        "file": item.file,
        "utterance_id": item.utterance_id,
        "speaker_id": voice.speaker_id,
        "engine": voice.engine,
        "voice": voice.name,
        "language": voice.language,
        "text": text,
        "synthetic": True,
        "duration": round(duration, 4),
        "seed": seed,
    }


def existing_rows(arguments: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Rows of a previous run whose wav is complete (empty with ``--force``)."""
    manifest = arguments.output / MANIFEST
    if arguments.force or not manifest.is_file():
        return {}
    try:
        rows = read_jsonl(manifest)
    except DataFormatError as error:
        _warn(f"{error}; re-synthesising every file")
        return {}
    return {row["file"]: row for row in rows if _is_complete(row, arguments)}


def _is_complete(row: Any, arguments: argparse.Namespace) -> bool:
    """Whether a previous row's wav is on disk, readable, at our rate and as long as listed."""
    if not isinstance(row, dict) or row.get("seed") != arguments.seed or "file" not in row:
        return False
    try:
        info = soundfile.info(str(arguments.output / row["file"]))
    except (RuntimeError, OSError, TypeError):
        return False
    listed = float(row.get("duration") or 0.0)
    return info.samplerate == arguments.sample_rate and abs(info.duration - listed) < 1e-3


def _write_manifest(arguments: argparse.Namespace, rows: dict[int, dict[str, Any]]) -> None:
    write_rows(arguments.output / MANIFEST, [rows[i] for i in sorted(rows)], force=True)


def run_plan(
    items: list[Planned], arguments: argparse.Namespace
) -> tuple[dict[int, dict[str, Any]], int]:
    """Synthesise the missing utterances with ``--jobs`` threads (the engines are processes).

    Returns:
        ``(rows by index, number of kept files)``; dropped utterances get one warning each.
    """
    previous = existing_rows(arguments)
    rows = {item.index: previous[item.file] for item in items if item.file in previous}
    kept = len(rows)
    pending = [item for item in items if item.index not in rows]
    pool = ThreadPoolExecutor(max_workers=arguments.jobs)
    try:
        futures = {pool.submit(render, item, arguments): item for item in pending}
        progress = tqdm(as_completed(futures), total=len(futures), desc="synthesize", disable=None)
        for done, future in enumerate(progress, start=1):
            item = futures[future]
            try:
                rows[item.index] = future.result()
            except SqaError as error:
                _warn(f"dropped {item.utterance_id}: {error}")
            if done % CHECKPOINT_EVERY == 0:
                _write_manifest(arguments, rows)
    finally:
        # On an interrupt, finish the running calls only and keep what is done for a resume.
        pool.shutdown(wait=True, cancel_futures=True)
        _write_manifest(arguments, rows)
    return rows, kept


def main(argv: Sequence[str]) -> int:
    """Multi-voice speech corpus from Debian TTS engines.

    Usage: ``sqa synthesize --output DIR --count N [--engines ...] [--voices ...] [--jobs J]``.
    """
    arguments = synthesize_parser().parse_args(list(argv))
    if arguments.count < 1 or arguments.jobs < 1 or arguments.sample_rate < 1000:
        raise SqaError("--count and --jobs must be at least 1 and --sample-rate at least 1000")
    started = time.monotonic()
    engines = parse_engines(arguments.engines)
    voices = probe_voices(discover(engines, arguments.voices, arguments.timeout), arguments)
    rows, kept = run_plan(plan(voices, arguments.count, arguments.seed), arguments)
    if not rows:
        raise SqaError("nothing could be synthesised: every utterance failed (see the warnings)")
    summary = {
        "files": len(rows),
        "new": len(rows) - kept,
        "kept": kept,
        "dropped": arguments.count - len(rows),
        "voices": len(voices),
        "languages": len({row["language"] for row in rows.values()}),
        "duration_s": round(sum(row["duration"] for row in rows.values()), 1),
        "wall_s": round(time.monotonic() - started, 1),
        "manifest": str(arguments.output / MANIFEST),
    }
    print(dumps_json(summary), file=sys.stderr)
    return 0
