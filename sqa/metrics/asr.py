"""Offline word accuracy (``wacc``) and word error rate (``wer``) with PocketSphinx.

The estimate is transcribed by PocketSphinx (``pip install "sqa-suite[asr]"``; its wheel ships the
en-us acoustic model, language model and dictionary, so nothing is downloaded) and compared with a
*target transcript*: the given text of the file when ``sqa score --text`` supplies one, otherwise
PocketSphinx's own transcript of the clean reference audio. The score tables say which in their
``wacc_source`` column (``text`` or ``reference_audio``).

``wer`` is the word-level Levenshtein distance (unit costs) divided by the number of target words,
after :func:`normalise_words` (lower case, punctuation removed); ``wacc = 1 - wer`` (it can be
negative when the estimate inserts many words, like the challenges' ``1 - WER``). An empty target
transcript gives NaN.

PocketSphinx is a small HMM recogniser for read English and much weaker than the Whisper-large-v3
(CCF-AATC 2025) or OWSM (URGENT) recognisers of the challenges: absolute values are not
comparable with theirs, and only English speech gives meaningful values. Use it to compare
systems with each other; for official numbers compute WAcc elsewhere and pass the column to
``sqa challenge-score`` (any ``wacc`` column is accepted).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np

from sqa.metrics.adapters import prepare_signal
from sqa.metrics.speech_content import edit_distance

RATE = 16000
SOURCE_COLUMN = "wacc_source"
TEXT_SOURCE = "text"
AUDIO_SOURCE = "reference_audio"
ASR_METRICS = ("wacc", "wer")
_NOT_WORD = re.compile(r"[^\w\s]|_")


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation (``"Don't, STOP!"`` -> ``["dont", "stop"]``).

    Apostrophes and hyphens are removed rather than split on, as the CCF-AATC evaluation's text
    normalisation does, so ``"don't"`` and ``"dont"`` match.
    """
    joined = text.lower().replace("'", "").replace("’", "").replace("-", "")
    return _NOT_WORD.sub(" ", joined).split()


def word_error_rate(hypothesis: str, target: str) -> float:
    """Word error rate of ``hypothesis`` against ``target`` (both raw text).

    Raises:
        ValueError: When the target has no word (the rate is undefined).

    Example:
        >>> word_error_rate("the cat sat", "The cat sat down.")
        0.25
    """
    target_words = normalise_words(target)
    if not target_words:
        raise ValueError("the target transcript has no word")
    return edit_distance(normalise_words(hypothesis), target_words) / len(target_words)


@functools.cache
def _decoder() -> Any:
    """One PocketSphinx decoder per process with the bundled en-us models (quiet log)."""
    from pocketsphinx import Decoder  # ModuleNotFoundError -> "unavailable (NaN)" with the hint

    return Decoder(loglevel="FATAL")


def transcribe(samples: np.ndarray, sample_rate: int, source: str = "estimate") -> str:
    """PocketSphinx transcript of one signal (resampled to 16 kHz, peak-safe 16-bit PCM)."""
    audio = prepare_signal(samples, sample_rate, RATE, source)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    decoder = _decoder()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr if hypothesis is not None else ""


def word_scores(
    estimate: np.ndarray,
    reference: np.ndarray | None,
    sample_rate: int,
    text: str | None = None,
) -> dict[str, float]:
    """``wacc`` and ``wer`` of the estimate against ``text``, else the reference's transcript.

    Raises:
        ValueError: Neither a transcript nor a reference signal, or an empty target transcript.
    """
    if text is None:
        if reference is None:
            raise ValueError("no transcript (--text) and no reference audio to transcribe")
        text = transcribe(reference, sample_rate, "reference")
        if not normalise_words(text):
            raise ValueError("the reference audio transcribes to no word")
    rate = word_error_rate(transcribe(estimate, sample_rate), text)
    return {"wacc": 1.0 - rate, "wer": rate}
