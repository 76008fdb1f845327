"""SpeechBERTScore, LPS and CER with tiny random transformers models saved in the test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sqa.errors import MissingWeightsError
from sqa.metrics.scorer import MetricScorer, ScoringOptions
from sqa.metrics.speech_content import (
    ctc_greedy_decode,
    edit_distance,
    speechbertscore_layer,
)
from sqa.synthetic import add_noise_at_snr, speech_like

transformers = pytest.importorskip("transformers")
RATE = 16000
TINY = {
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "conv_dim": (16, 16),
    "conv_stride": (5, 4),
    "conv_kernel": (10, 8),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
VOCABULARY = {"<pad>": 0, "<unk>": 1, "|": 2, "a": 3, "b": 4, "c": 5}


def test_edit_distance_closed_form() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a", "b"]) == 2
    assert edit_distance(["p", "a"], ["p", "a"]) == 0


def test_ctc_greedy_decode_merges_repeats_and_drops_blanks_and_specials() -> None:
    tokens = {index: token for token, index in VOCABULARY.items()}
    frames = [3, 3, 0, 3, 4, 4, 1, 2, 5]  # a a _ a b b <unk> | c
    logits = np.eye(len(VOCABULARY))[frames]
    assert ctc_greedy_decode(logits, tokens, blank=0) == ["a", "a", "b", "|", "c"]


def test_speechbertscore_layer_rule() -> None:
    assert (speechbertscore_layer(12), speechbertscore_layer(24), speechbertscore_layer(6)) == (
        8,
        14,
        4,
    )


@pytest.fixture(scope="module")
def encoder_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("hubert")
    transformers.HubertModel(transformers.HubertConfig(**TINY)).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def ctc_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ctc")
    config = transformers.Wav2Vec2Config(**TINY, vocab_size=len(VOCABULARY), pad_token_id=0)
    model = transformers.Wav2Vec2ForCTC(config)
    with torch.no_grad():
        # The emitted token follows the signs of two hidden units: transcripts vary with the input.
        model.lm_head.weight.zero_()
        model.lm_head.bias.zero_()
        model.lm_head.weight[3, 0], model.lm_head.weight[4, 0] = 50.0, -50.0
        model.lm_head.weight[5, 1] = 80.0
    model.save_pretrained(folder)
    (folder / "vocab.json").write_text(json.dumps(VOCABULARY))
    return str(folder)


def scorer(name: str, folder: str) -> MetricScorer:
    return MetricScorer([name], ScoringOptions(weights={f"--{name}-weights": folder}))


def test_speechbertscore_is_one_for_identical_and_lower_for_noisy(encoder_folder: str) -> None:
    clean = speech_like(1.5, RATE, seed=1)
    noisy = add_noise_at_snr(clean, -5.0, seed=2)
    metric = scorer("sbert", encoder_folder)
    assert metric.score(clean, RATE, clean).values["sbert"] == pytest.approx(1.0, abs=1e-5)
    assert metric.score(noisy, RATE, clean).values["sbert"] < 0.999


def test_phoneme_similarity_and_cer_through_the_scorer(ctc_folder: str) -> None:
    clean = speech_like(1.5, RATE, seed=3)
    # Another sample rate on purpose: the adapter resamples both signals to 16 kHz.
    clean_8k = clean[::2].copy()
    lps = scorer("lps", ctc_folder).score(clean_8k, 8000, clean_8k)
    cer = scorer("cer", ctc_folder).score(clean_8k, 8000, clean_8k)
    assert lps.values["lps"] == pytest.approx(1.0) and lps.errors == {}
    assert cer.values["cer"] == pytest.approx(0.0) and cer.errors == {}
    noisy = add_noise_at_snr(clean, 0.0, seed=1)
    assert scorer("lps", ctc_folder).score(noisy, RATE, clean).values["lps"] < 0.99
    assert scorer("cer", ctc_folder).score(noisy, RATE, clean).values["cer"] > 0.01


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    clean = speech_like(1.0, RATE, seed=5)
    with pytest.raises(MissingWeightsError, match="cannot load a speech model"):
        scorer("sbert", str(tmp_path)).score(clean, RATE, clean)
