"""Content metrics from local ``transformers`` speech models: SpeechBERTScore, LPS and CER.

Each takes a folder the user passes (``config.json`` + weights, loaded with
``local_files_only=True``; nothing is downloaded) and compares an estimate with its reference:

- ``sbert`` (SpeechBERTScore, Saeki et al. 2024): frame features of both signals from one hidden
  layer of a HuBERT/WavLM-style encoder; the score is the BERTScore *precision*, the mean over
  estimate frames of the best cosine similarity to any reference frame. The layer follows the
  discrete-speech-metrics defaults: 8 for 12-layer (base) encoders, 14 for 24-layer (large) ones,
  otherwise two thirds of the depth.
- ``lps`` (Levenshtein phoneme similarity): a phoneme CTC model (e.g. a wav2vec 2.0 espeak
  phoneme recogniser) transcribes both signals by greedy CTC decoding; ``1 - d / n`` with ``d`` the
  edit distance between the phoneme sequences and ``n`` the reference length (word delimiters
  dropped). It can be negative when the estimate inserts many phonemes.
- ``cer``: a character CTC ASR model transcribes both signals; the character edit distance
  divided by the length of the reference transcript. The reference transcript is the model's own
  transcript of the reference audio (our data formats carry no text), so ``cer`` measures how much
  the processing changed what the recogniser hears.

Models are cached per process; long files are processed in 20 s chunks.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from sqa.compat.optional import import_transformers
from sqa.errors import MissingWeightsError
from sqa.metrics.adapters import prepare_signal

RATE = 16000
CHUNK_SECONDS = 20.0
WORD_DELIMITER = "|"


def edit_distance(first: list[str] | str, second: list[str] | str) -> int:
    """Levenshtein distance (unit insert, delete and substitute costs) of two sequences."""
    previous = list(range(len(second) + 1))
    for row, item in enumerate(first, start=1):
        current = [row]
        for column, other in enumerate(second, start=1):
            substitution = previous[column - 1] + (item != other)
            current.append(min(previous[column] + 1, current[column - 1] + 1, substitution))
        previous = current
    return previous[-1]


def ctc_greedy_decode(logits: np.ndarray, tokens: dict[int, str], blank: int) -> list[str]:
    """Best-path CTC decoding: argmax per frame, merge repeats, drop blanks and special tokens.

    Args:
        logits: ``(frames, vocabulary)`` scores.
        tokens: Token id -> token text.
        blank: Id of the CTC blank (the pad token of wav2vec 2.0 tokenizers).

    Returns:
        Token texts; special tokens such as ``<unk>`` are dropped, word delimiters are kept.
    """
    best = np.argmax(logits, axis=-1)
    keep = np.ones(best.shape, dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    units = []
    for token_id in best[keep]:
        text = tokens.get(int(token_id), "")
        if int(token_id) != blank and text and not (text.startswith("<") and text.endswith(">")):
            units.append(text)
    return units


@functools.cache
def _load(path: str, with_ctc_head: bool) -> tuple[object, bool]:
    """Model from a local folder plus whether its feature extractor normalises the waveform."""
    transformers = import_transformers("this metric")
    loader = transformers.AutoModelForCTC if with_ctc_head else transformers.AutoModel
    try:
        model = loader.from_pretrained(path, local_files_only=True).eval()
    except (OSError, ValueError) as error:
        raise MissingWeightsError(f"cannot load a speech model from {path}: {error}") from None
    settings_file = Path(path) / "preprocessor_config.json"
    settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    return model, bool(settings.get("do_normalize", False))


@functools.cache
def _vocabulary(path: str) -> tuple[dict[int, str], int]:
    """``id -> token`` from the folder's ``vocab.json`` and the CTC blank id."""
    vocabulary_file = Path(path) / "vocab.json"
    if not vocabulary_file.is_file():
        raise MissingWeightsError(f"{path} has no vocab.json (a CTC tokenizer is needed)")
    vocabulary = json.loads(vocabulary_file.read_text())
    if vocabulary and all(isinstance(value, dict) for value in vocabulary.values()):
        vocabulary = next(iter(vocabulary.values()))  # multi-language tokenizers nest by language
    tokens = {int(index): token for token, index in vocabulary.items()}
    model, _ = _load(path, True)
    blank = model.config.pad_token_id
    return tokens, int(blank if blank is not None else vocabulary.get("<pad>", 0))


def _chunks(samples: np.ndarray, normalize: bool) -> list[np.ndarray]:
    step = int(CHUNK_SECONDS * RATE)
    pieces = [samples[start : start + step] for start in range(0, samples.size, step)]
    if len(pieces) > 1 and pieces[-1].size < RATE // 2:
        pieces[-2] = np.concatenate(
            [pieces[-2], pieces.pop()]
        )  # avoid a sliver too short to encode
    if normalize:
        pieces = [(piece - piece.mean()) / np.sqrt(piece.var() + 1e-7) for piece in pieces]
    return pieces


def _run(path: str, signal: np.ndarray, with_ctc_head: bool, layer: int | None) -> np.ndarray:
    """Frame outputs ``(frames, D)``: CTC logits, or hidden states of ``layer``."""
    import torch

    model, normalize = _load(path, with_ctc_head)
    outputs = []
    with torch.inference_mode():
        for piece in _chunks(signal, normalize):
            inputs = torch.from_numpy(np.ascontiguousarray(piece, dtype=np.float32))[None]
            if with_ctc_head:
                outputs.append(model(inputs).logits[0].numpy())
            else:
                hidden = model(inputs, output_hidden_states=True).hidden_states
                outputs.append(hidden[layer][0].numpy())
    return np.concatenate(outputs, axis=0)


def speechbertscore_layer(num_layers: int) -> int:
    """Hidden-state index used by SpeechBERTScore for an encoder with ``num_layers`` layers."""
    return {12: 8, 24: 14}.get(num_layers, max(1, round(num_layers * 2 / 3)))


def speech_bert_score(
    estimate: np.ndarray, reference: np.ndarray | None, sample_rate: int, weights: str
) -> dict[str, float]:
    """SpeechBERTScore precision of ``estimate`` against ``reference``."""
    model, _ = _load(weights, False)
    layer = speechbertscore_layer(int(model.config.num_hidden_layers))
    features = [
        _run(weights, prepare_signal(signal, sample_rate, RATE, source), False, layer)
        for signal, source in ((estimate, "estimate"), (reference, "reference"))
    ]
    estimated, referenced = (
        item / np.maximum(np.linalg.norm(item, axis=1, keepdims=True), 1e-12) for item in features
    )
    similarity = estimated @ referenced.T  # (estimate frames, reference frames)
    return {"sbert": float(similarity.max(axis=1).mean())}


def _transcripts(
    estimate: np.ndarray, reference: np.ndarray | None, sample_rate: int, weights: str
) -> tuple[list[str], list[str]]:
    tokens, blank = _vocabulary(weights)
    estimated, referenced = (
        ctc_greedy_decode(
            _run(weights, prepare_signal(signal, sample_rate, RATE, source), True, None),
            tokens,
            blank,
        )
        for signal, source in ((estimate, "estimate"), (reference, "reference"))
    )
    return estimated, referenced


def phoneme_similarity(
    estimate: np.ndarray, reference: np.ndarray | None, sample_rate: int, weights: str
) -> dict[str, float]:
    """Levenshtein phoneme similarity; NaN when the reference decodes to no phoneme."""
    estimated, referenced = (
        [unit for unit in units if unit != WORD_DELIMITER]
        for units in _transcripts(estimate, reference, sample_rate, weights)
    )
    if not referenced:
        raise ValueError("the reference decodes to no phoneme")
    return {"lps": 1.0 - edit_distance(estimated, referenced) / len(referenced)}


def character_error_rate(
    estimate: np.ndarray, reference: np.ndarray | None, sample_rate: int, weights: str
) -> dict[str, float]:
    """CER of the estimate's transcript against the reference's; NaN for an empty reference."""
    estimated, referenced = (
        " ".join("".join(units).replace(WORD_DELIMITER, " ").split())
        for units in _transcripts(estimate, reference, sample_rate, weights)
    )
    if not referenced:
        raise ValueError("the reference decodes to an empty transcript")
    return {"cer": edit_distance(estimated, referenced) / len(referenced)}
