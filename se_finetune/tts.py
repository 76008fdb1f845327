"""Voices of the Debian TTS engines (espeak-ng, flite, festival) and one-utterance synthesis.

The engines are separate programs, run with :mod:`subprocess` (never a shell) under a timeout;
the text goes through a temporary file, so no text can be taken for an option or a command.
Engine output is read back with :func:`sqa.audio.load_audio`, which rejects empty, silent and
broken files with a typed :class:`sqa.errors.AudioError`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sqa.audio import load_audio
from sqa.errors import SilentAudioError, SqaError

ENGINES = ("espeak-ng", "flite", "festival")
# The program each engine is run as (festival synthesises to a file through text2wave).
EXECUTABLES = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}
DEFAULT_TIMEOUT = 60.0
# Peak-normalise every file: the engines' levels differ by more than 10 dB.
TARGET_PEAK = 0.9
# An output whose peak is below -50 dBFS holds no speech even if it is not exactly constant.
SILENT_PEAK = 10 ** (-50 / 20)

# ~20 languages from many families; the voices are these plus variants for speaker variety.
ESPEAK_LANGUAGES = (
    "en-us", "en-gb", "de", "nl", "sv", "fr-fr", "es", "it", "pt-br", "ca", "ru", "pl", "cs",
    "fi", "hu", "tr", "el", "hi", "ta", "cmn", "vi", "id", "sw", "ar",
)  # fmt: skip
# Variants that still sound like ordinary speakers (no whisper, croak or robot voices).
ESPEAK_MALE = ("m3", "m1", "m7", "m2", "m4", "m5", "m6", "m8")
ESPEAK_FEMALE = ("f2", "f4", "f1", "f3", "f5")
# English carries the grammar text, so each dialect gets one more male/female pair.
ESPEAK_EXTRA_PAIRS = {"en-us": 1, "en-gb": 1}

# flite's awb_time is a limited-domain voice: it only has units for clock-time phrases and
# garbles any other text.
FLITE_LIMITED_DOMAIN = {"awb_time": "limited-domain voice (clock-time phrases only)"}

FESTIVAL_ROOT = Path("/usr/share/festival/voices")
# Language folder -> language code, and the text encoding each festival language expects.
FESTIVAL_LANGUAGES = {
    "english": "en", "us": "en", "british": "en", "czech": "cs", "finnish": "fi",
    "italian": "it", "catalan": "ca", "spanish": "es", "russian": "ru", "hindi": "hi",
    "marathi": "mr", "telugu": "te", "welsh": "cy",
}  # fmt: skip
FESTIVAL_ENCODINGS = {
    "cs": "iso-8859-2", "fi": "iso-8859-1", "it": "iso-8859-1", "es": "iso-8859-1",
    "ca": "iso-8859-15", "ru": "utf-8", "hi": "utf-8", "mr": "utf-8", "te": "utf-8",
}  # fmt: skip
# The Russian voice's letter-to-sound rules reject digits (it writes an empty file).
FESTIVAL_NO_DIGITS = {"ru"}
# A voice name goes into a Scheme expression (voice_NAME), so only plain names are accepted.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]+")
_VARIANT = re.compile(r"\s!v/(\S+)\s*(\([^)]*\)\s*)*$")


class SynthesisError(SqaError):
    """An engine failed, timed out or produced no usable audio."""


@dataclass(frozen=True)
class Voice:
    """One speaker of one engine.

    Attributes:
        engine: ``"espeak-ng"``, ``"flite"`` or ``"festival"``.
        name: The engine's voice name (espeak-ng: ``language[+variant]``).
        language: Language code of the text it reads.
        encoding: Encoding of the text file the engine reads.
        digits: Whether the front end expands digits.
    """

    engine: str
    name: str
    language: str
    encoding: str = "utf-8"
    digits: bool = True

    @property
    def speaker_id(self) -> str:
        """``engine:voice``, the speaker label of the corpus."""
        return f"{self.engine}:{self.name}"

    @property
    def slug(self) -> str:
        """The speaker id with only file-name-safe characters."""
        return re.sub(r"[^A-Za-z0-9-]+", "_", f"{self.engine}_{self.name}")


def parse_espeak_voices(listing: str) -> list[str]:
    """Language codes from ``espeak-ng --voices`` (unique, in listing order)."""
    languages: dict[str, None] = {}
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5 and fields[0].isdigit():
            languages.setdefault(fields[1], None)
    return list(languages)


def parse_espeak_variants(listing: str) -> list[str]:
    """Variant ids (``m3``, ``f2``, ``klatt``...) from ``espeak-ng --voices=variant``.

    A variant whose file name has a space (``!v/Mr serious``) cannot be named after ``+``, so it
    is left out.
    """
    variants = []
    for line in listing.splitlines()[1:]:
        match = _VARIANT.search(line)
        if match:
            variants.append(match.group(1))
    return variants


def parse_flite_voices(listing: str) -> list[str]:
    """Voice names from ``flite -lv`` (``Voices available: kal awb_time ...``)."""
    for line in listing.splitlines():
        if line.strip().lower().startswith("voices available:"):
            return line.split(":", 1)[1].split()
    return []


def espeak_voice(name: str, languages: Sequence[str], variants: Sequence[str]) -> Voice | None:
    """The espeak-ng voice ``language[+variant]``, or ``None`` if either part is not installed.

    Checked here because espeak-ng silently falls back to its default for an unknown variant.
    """
    language, _, variant = name.partition("+")
    if language not in languages or (variant and variant not in variants):
        return None
    return Voice("espeak-ng", name, language)


def espeak_inventory(timeout: float = DEFAULT_TIMEOUT) -> tuple[list[str], list[str]]:
    """Installed espeak-ng languages and variants.

    Raises:
        SynthesisError: espeak-ng is not on ``PATH`` or cannot list its voices.
    """
    executable = shutil.which(EXECUTABLES["espeak-ng"])
    if executable is None:
        raise SynthesisError("espeak-ng: espeak-ng not found on PATH")
    languages = parse_espeak_voices(_listing([executable, "--voices"], timeout))
    return languages, parse_espeak_variants(_listing([executable, "--voices=variant"], timeout))


def espeak_voices(
    languages: Sequence[str], variants: Sequence[str], *, every_language: bool = False
) -> list[Voice]:
    """Curated espeak-ng speakers: per language its default voice plus a male and a female variant.

    Args:
        languages: Installed language codes (:func:`parse_espeak_voices`).
        variants: Installed variants (:func:`parse_espeak_variants`).
        every_language: Use every installed language instead of :data:`ESPEAK_LANGUAGES`.

    Returns:
        The voices; the variants rotate with the language so the corpus uses many of them.
    """
    chosen = languages if every_language else [x for x in ESPEAK_LANGUAGES if x in languages]
    male = [v for v in ESPEAK_MALE if v in variants]
    female = [v for v in ESPEAK_FEMALE if v in variants]
    voices = []
    for index, language in enumerate(chosen):
        names = [language]
        for offset in range(1 + ESPEAK_EXTRA_PAIRS.get(language, 0) if male and female else 0):
            names += [f"{language}+{pool[(index + offset) % len(pool)]}" for pool in (male, female)]
        voices += [Voice("espeak-ng", name, language) for name in dict.fromkeys(names)]
    return voices


def festival_voices(root: Path = FESTIVAL_ROOT) -> list[Voice]:
    """Every festival voice folder ``root/<language>/<voice>/festvox/<voice>.scm``."""
    voices = []
    for folder in sorted(root.glob("*/*/festvox")):
        name, language_folder = folder.parent.name, folder.parent.parent.name
        if not (folder / f"{name}.scm").is_file() or not _PLAIN_NAME.fullmatch(name):
            continue
        language = FESTIVAL_LANGUAGES.get(language_folder, language_folder)
        encoding = FESTIVAL_ENCODINGS.get(language, "iso-8859-1")
        voices.append(
            Voice("festival", name, language, encoding, language not in FESTIVAL_NO_DIGITS)
        )
    return voices


def _listing(command: list[str], timeout: float) -> str:
    """Standard output of a voice-listing command (``SynthesisError`` if it fails)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SynthesisError(f"{command[0]} {' '.join(command[1:])}: {error}") from None
    if done.returncode != 0:
        raise SynthesisError(f"{' '.join(command)} exited with status {done.returncode}")
    return done.stdout


def engine_voices(
    engine: str, selection: str | None, timeout: float
) -> tuple[list[Voice], dict[str, str]]:
    """Installed voices of one engine and the ones left out with why.

    Args:
        engine: One of :data:`ENGINES`.
        selection: ``None`` (curated espeak-ng set) or ``"all"`` (every espeak-ng language);
            flite and festival always list every voice.
        timeout: Seconds a listing command may take.

    Returns:
        ``(voices, left_out)`` where ``left_out`` maps a speaker id to the reason.

    Raises:
        SynthesisError: The engine is not on ``PATH`` or cannot list its voices.
    """
    executable = shutil.which(EXECUTABLES[engine])
    if executable is None:
        raise SynthesisError(f"{engine}: {EXECUTABLES[engine]} not found on PATH")
    if engine == "espeak-ng":
        languages, variants = espeak_inventory(timeout)
        return espeak_voices(languages, variants, every_language=selection == "all"), {}
    if engine == "flite":
        names = parse_flite_voices(_listing([executable, "-lv"], timeout))
        left_out = {
            f"flite:{n}": FLITE_LIMITED_DOMAIN[n] for n in names if n in FLITE_LIMITED_DOMAIN
        }
        return [Voice("flite", n, "en") for n in names if n not in FLITE_LIMITED_DOMAIN], left_out
    voices = festival_voices()
    if not voices:
        raise SynthesisError(f"festival: no voice folders under {FESTIVAL_ROOT}")
    return voices, {}


def _command(voice: Voice, executable: str, text_file: Path, wav_file: Path) -> list[str]:
    """The engine's command line: read ``text_file``, write ``wav_file``."""
    if voice.engine == "espeak-ng":
        # -b 1: the text file is UTF-8.
        return [executable, "-v", voice.name, "-b", "1", "-w", str(wav_file), "-f", str(text_file)]
    if voice.engine == "flite":
        return [executable, "-voice", voice.name, "-f", str(text_file), "-o", str(wav_file)]
    if not _PLAIN_NAME.fullmatch(voice.name):
        raise SynthesisError(f"{voice.speaker_id}: not a plain festival voice name")
    return [executable, "-eval", f"(voice_{voice.name})", "-o", str(wav_file), str(text_file)]


def _run_engine(command: list[str], voice: Voice, timeout: float) -> None:
    """Run a synthesis command; a failure or timeout is a :class:`SynthesisError`."""
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise SynthesisError(f"{voice.speaker_id}: timed out after {timeout:g} s") from None
    except OSError as error:
        raise SynthesisError(f"{voice.speaker_id}: cannot run {command[0]}: {error}") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"]
        raise SynthesisError(
            f"{voice.speaker_id}: exited with status {done.returncode}: {lines[-1][:200]}"
        )


def synthesize(
    voice: Voice, text: str, sample_rate: int, *, timeout: float = DEFAULT_TIMEOUT
) -> np.ndarray:
    """Speak ``text`` with ``voice``: mono float32 at ``sample_rate``, peak-normalised.

    Args:
        voice: The speaker.
        text: What to say (in the voice's language).
        sample_rate: Output rate; the engine's own rate is resampled with soxr.
        timeout: Seconds the engine may take.

    Returns:
        The samples ``(T,)``.

    Raises:
        SynthesisError: Missing engine, encoding, failure or timeout.
        AudioError: The engine's file is empty, silent, too short or unreadable.
    """
    executable = shutil.which(EXECUTABLES[voice.engine])
    if executable is None:
        raise SynthesisError(f"{voice.engine}: {EXECUTABLES[voice.engine]} not found on PATH")
    try:
        encoded = text.encode(voice.encoding)
    except UnicodeEncodeError:
        raise SynthesisError(f"{voice.speaker_id}: text is not {voice.encoding}") from None
    with tempfile.TemporaryDirectory(prefix="sqa-tts-") as folder:
        text_file, wav_file = Path(folder) / "text.txt", Path(folder) / "speech.wav"
        text_file.write_bytes(encoded + b"\n")
        _run_engine(_command(voice, executable, text_file, wav_file), voice, timeout)
        samples, _ = load_audio(wav_file, sample_rate=sample_rate)
    peak = float(np.max(np.abs(samples)))
    if peak < SILENT_PEAK:
        raise SilentAudioError(f"{voice.speaker_id}: output peak {peak:.1e} is silence")
    return (samples * (TARGET_PEAK / peak)).astype(np.float32)
