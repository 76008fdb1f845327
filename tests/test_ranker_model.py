"""URGENT-PK model: mel front end, architecture, swap behaviour, ssl variant, training."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from rankers.cached import MODEL_KIND as CACHED_KIND
from rankers.cached import CachedPairwiseRanker, CachedRankerConfig
from rankers.data import build_pairs
from rankers.ecs import ecs_scores, symmetrise
from rankers.features import LogMelSpectrogram
from rankers.inference import RankerScorer
from rankers.model import (
    MODEL_KIND,
    PAPER_CONFIG,
    PAPER_PARAMETER_COUNT,
    PairwiseRanker,
    PairwiseRankerConfig,
    compact_config,
    count_parameters,
)
from rankers.resnet import masked_mean_std
from rankers.train import TrainConfig, ranker_loss, train
from sqa.checkpoint import build_model, load_checkpoint, save_checkpoint
from sqa.data.records import AudioRecord
from sqa.mel import empty_mel_filters, htk_mel_filterbank
from sqa.stats import ktau
from sqa.synthetic import speech_like, write_system_folders

TINY_CACHED = CachedRankerConfig(
    n_mels=32, stem_channels=8, widths=(8, 8, 8, 8), embedding_size=16, head_hidden=16, dropout=0.0
)
TINY_EARLY = compact_config(n_mels=32, stem_channels=8, widths=(8, 8, 8, 8), dropout=0.0)


@pytest.fixture(autouse=True)
def _single_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.mark.filterwarnings("ignore:Empty filters detected")
def test_htk_filterbank_matches_librosa_and_reports_empty_bands() -> None:
    librosa = pytest.importorskip("librosa")
    ours = htk_mel_filterbank(161, 120, 16000).numpy()
    reference = librosa.filters.mel(sr=16000, n_fft=320, n_mels=120, htk=True, norm=None).T
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    empty = empty_mel_filters(torch.from_numpy(ours))
    assert empty and empty[0] == 0  # narrow low bands hold no 50 Hz-spaced FFT bin
    assert all(index < 20 for index in empty)


def test_log_mel_of_a_tone_peaks_at_its_band_and_floors_empty_bands() -> None:
    frontend = LogMelSpectrogram()
    time = torch.arange(16000) / 16000
    features = frontend(torch.sin(2 * math.pi * 1000 * time).unsqueeze(0))
    assert features.shape == (1, 120, 1 + 16000 // 80)
    centres = 700 * (10 ** (torch.linspace(0, 2595 * math.log10(1 + 8000 / 700), 122) / 2595) - 1)
    expected_band = int(torch.argmin((centres[1:-1] - 1000).abs()))
    assert abs(int(features[0, :, 100].argmax()) - expected_band) <= 1
    empty = empty_mel_filters(frontend.filterbank)
    assert torch.all(features[0, empty] == -100.0)


def test_paper_configuration_has_about_5_35_million_parameters() -> None:
    model = PairwiseRanker(PAPER_CONFIG)
    assert count_parameters(model) == PAPER_PARAMETER_COUNT
    assert abs(PAPER_PARAMETER_COUNT - 5.35e6) < 0.01e6
    assert model.head.in_features == 256 * 15 * 2  # 120 mel bins / 8, mean and std
    assert count_parameters(PairwiseRanker(compact_config())) < PAPER_PARAMETER_COUNT / 10


def test_forward_shapes_and_masked_pooling_ignores_padding() -> None:
    model = PairwiseRanker(TINY_EARLY).eval()
    waves = torch.randn(3, 4000)
    output = model(waves, waves.flip(0), torch.tensor([4000, 3000, 2000]), None)
    assert all(tensor.shape == (3,) for tensor in output)
    features = torch.randn(2, 4, 5, 10)
    padded = features.clone()
    padded[:, :, :, 6:] = 1e6
    lengths = torch.tensor([6, 6])
    np.testing.assert_allclose(
        masked_mean_std(features[..., :6], None), masked_mean_std(padded, lengths), rtol=1e-5
    )


def test_swap_behaviour() -> None:
    waves = np.stack([speech_like(0.5, seed=seed) for seed in range(3)])
    cached = CachedPairwiseRanker(TINY_CACHED).eval()
    first, second = torch.from_numpy(waves[:2]), torch.from_numpy(waves[1:])
    with torch.inference_mode():
        forward, backward = cached(first, second), cached(second, first)
    torch.testing.assert_close(forward.logit, -backward.logit)
    torch.testing.assert_close(forward.mos_a, backward.mos_b)
    early = PairwiseRanker(TINY_EARLY).eval()
    table, _ = RankerScorer(early).utterance_table(waves, symmetric=True)
    assert not np.allclose(table, 1 - table.T, equal_nan=True)  # early fusion is order-aware
    symmetric = symmetrise(table[:, :, None])[:, :, 0]
    off_diagonal = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(symmetric[off_diagonal], 1 - symmetric.T[off_diagonal])


def test_checkpoint_round_trip_of_both_kinds(tmp_path: Path) -> None:
    waves = torch.from_numpy(np.stack([speech_like(0.3, seed=seed) for seed in range(2)]))
    for kind, model in (
        (MODEL_KIND, PairwiseRanker(TINY_EARLY)),
        (CACHED_KIND, CachedPairwiseRanker(TINY_CACHED)),
    ):
        model.eval()
        path = save_checkpoint(tmp_path / f"{kind}.pt", model, model.config, kind=kind)
        loaded = build_model(load_checkpoint(path))
        with torch.inference_mode():
            torch.testing.assert_close(model(waves, waves.flip(0)), loaded(waves, waves.flip(0)))


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
def test_ssl_encoder_from_a_local_directory_frozen_with_bilstm(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    backbone_config = transformers.WavLMConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        num_buckets=8,
        max_bucket_distance=16,
    )
    folder = tmp_path / "wavlm"
    transformers.WavLMModel(backbone_config).save_pretrained(folder)
    from rankers.encoders import ssl_config_from_directory

    config = PairwiseRankerConfig(
        encoder="ssl",
        ssl_path=str(folder),
        ssl_config_json=ssl_config_from_directory(str(folder)),
        freeze=True,
        lstm_hidden=4,
        stem_channels=4,
        widths=(4, 4, 4, 4),
        block_counts=(1, 1, 1, 1),
    )
    model = PairwiseRanker(config).eval()
    assert not any(parameter.requires_grad for parameter in model.encoder.backbone.parameters())
    assert model.head.in_features == 4 * 1 * 2  # BiLSTM 2x4 features -> 1 after three strides
    waves = torch.from_numpy(np.stack([speech_like(0.5, seed=seed) for seed in range(2)]))
    path = save_checkpoint(tmp_path / "ssl.pt", model, config, kind=MODEL_KIND)
    shutil.rmtree(folder)  # the checkpoint alone must rebuild the backbone
    loaded = build_model(load_checkpoint(path))
    with torch.inference_mode():
        torch.testing.assert_close(model(waves, waves.flip(0)), loaded(waves, waves.flip(0)))


def test_loss_masks_missing_mos_and_pairs_follow_delta() -> None:
    output = (torch.zeros(2), torch.tensor([3.0, 1.0]), torch.tensor([2.0, 1.0]))
    label = torch.tensor([1.0, 0.0])
    mos = torch.tensor([[4.0, float("nan")], [float("nan"), float("nan")]])
    loss, parts = ranker_loss(output, label, mos, alpha=2.0, beta=1.0)
    assert parts["mse"] == pytest.approx(1.0)
    assert float(loss) == pytest.approx(2 * math.log(2) + 1.0)
    records = [
        AudioRecord("u", system, f"{system}.wav", "u", metrics={"mos": value})
        for system, value in (("a", 3.0), ("b", 3.2), ("c", 4.0), ("d", 3.0))
    ]
    pairs = build_pairs(records, delta=0.3)
    assert {(pair.system_a, pair.system_b, pair.label) for pair in pairs} == {
        ("c", "a", 1.0),
        ("a", "c", 0.0),
        ("c", "b", 1.0),
        ("b", "c", 0.0),
        ("c", "d", 1.0),
        ("d", "c", 0.0),
    }
    assert len(build_pairs(records, delta=0.0, ties="drop")) == 10
    halves = [pair for pair in build_pairs(records, delta=0.0, ties="half") if pair.label == 0.5]
    assert {(pair.system_a, pair.system_b) for pair in halves} == {("a", "d"), ("d", "a")}


@pytest.mark.parametrize(("config", "kind"), [(TINY_CACHED, CACHED_KIND), (TINY_EARLY, MODEL_KIND)])
def test_tiny_model_learns_a_known_noise_order(tmp_path: Path, config: object, kind: str) -> None:
    snr = {"s1": 30.0, "s2": 15.0, "s3": 5.0, "s4": -5.0}
    mos = {"s1": 4.5, "s2": 3.5, "s3": 2.5, "s4": 1.5}
    write_system_folders(tmp_path / "data", snr, 8, duration=0.6)
    shutil.rmtree(tmp_path / "data" / "_reference")
    lines = ["system_id,sample_id,mos"]
    lines += [f"{system},utt{index:03d},{mos[system]}" for system in snr for index in range(8)]
    (tmp_path / "mos.csv").write_text("\n".join(lines) + "\n")
    settings = TrainConfig(
        data=str(tmp_path / "data"),
        mos_csv=str(tmp_path / "mos.csv"),
        output_dir=str(tmp_path / "run"),
        validation_utterances=2,
        epochs=3,
        learning_rate=3e-3,
        keep_best=2,
        cache_audio=True,
    )
    model = build_model(load_checkpoint(train(settings, config, kind)))
    write_system_folders(tmp_path / "test", snr, 3, duration=0.6, seed=100)
    from sqa.audio import load_audio

    table = np.full((4, 4, 3), np.nan)
    for index in range(3):
        waves = np.stack(
            [load_audio(tmp_path / "test" / system / f"utt{index:03d}.wav")[0] for system in snr]
        )
        table[:, :, index] = RankerScorer(model).utterance_table(waves)[0]
    for scoring in ("bs", "nbs"):
        assert ktau(ecs_scores(table, scoring), list(mos.values())) == pytest.approx(1.0)


def test_training_data_from_urgentpk_split_and_track2_jsonl(tmp_path: Path) -> None:
    from rankers.data import load_training_records
    from rankers.selection import split_by_utterance
    from sqa.data.track2 import write_track2_jsonl
    from sqa.data.urgentpk import write_urgentpk

    records = [
        AudioRecord(
            f"{system}_{utterance}",
            system,
            f"/audio/{system}/{utterance}.wav",
            utterance,
            metrics={"mos": value + index},
        )
        for index, utterance in enumerate(("u1", "u2", "u3"))
        for system, value in (("a", 1.0), ("b", 2.0), ("c", 3.5))
    ]
    write_urgentpk(tmp_path / "pk", records, {"tr": ["u1", "u3"], "cv": ["u2"], "tt": []})
    loaded, split = load_training_records(tmp_path / "pk")
    training, validation = split_by_utterance(loaded, 1, split=split)
    assert {record.utterance_id for record in validation} == {"u2"}
    assert len(build_pairs(training)) == 2 * 6  # 3 systems -> 6 ordered pairs per utterance
    write_track2_jsonl(tmp_path / "data.jsonl", records)
    loaded, split = load_training_records(tmp_path / "data.jsonl")
    assert split == {}
    pairs = build_pairs(loaded, delta=1.0)
    assert {(pair.system_a, pair.system_b) for pair in pairs} == {
        ("c", "a"),
        ("a", "c"),
        ("c", "b"),
        ("b", "c"),
    }
    assert all(pair.path_a.endswith(f"{pair.utterance_id}.wav") for pair in pairs)


def test_preference_pairs_from_sqa_pairs_output() -> None:
    from rankers.data import pairs_from_preferences
    from sqa.commands.pairs import unanimous_pairs

    rows = [
        {
            "system_id": system,
            "sample_id": "u1",
            "audio_path": f"/{system}/u1.wav",
            "metrics": {"pesq": pesq, "estoi": estoi},
        }
        for system, pesq, estoi in (("a", 3.0, 0.9), ("b", 2.0, 0.8), ("c", 2.5, 0.95))
    ]
    preferences, _ = unanimous_pairs(rows, ["pesq", "estoi"])
    pairs = pairs_from_preferences(preferences)
    assert {(pair.system_a, pair.system_b, pair.label) for pair in pairs} == {
        ("a", "b", 1.0),
        ("b", "a", 0.0),
        ("c", "b", 1.0),
        ("b", "c", 0.0),
    }
    assert all(
        math.isnan(pair.mos_a) and pair.path_a == f"/{pair.system_a}/u1.wav" for pair in pairs
    )
