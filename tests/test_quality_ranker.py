"""Ranker on a frozen pretrained quality model (Distill-MOS) and its cached-feature training."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

# find_spec, not importorskip: distillmos imports torchaudio, which needs our fallback first.
if importlib.util.find_spec("distillmos") is None:
    pytest.skip("distillmos is not installed", allow_module_level=True)

from rankers.ecs import ecs_scores
from rankers.feature_cache import FeaturePairDataset, supports_frozen_cache
from rankers.inference import RankerScorer
from rankers.quality import MODEL_KIND, QualityEncoderRanker, QualityRankerConfig
from rankers.train import TrainConfig, train
from sqa.checkpoint import build_model, load_checkpoint
from sqa.stats import ktau
from sqa.synthetic import speech_like, write_system_folders

# Random Distill-MOS weights keep the test independent of the shipped ones (and fast).
TINY = QualityRankerConfig(layers=(0, 6), hidden=16, embedding_size=8, head_hidden=8, dropout=0.0)


@pytest.fixture(autouse=True)
def _single_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def model() -> QualityEncoderRanker:
    torch.manual_seed(0)
    return QualityEncoderRanker(TINY).eval()


def test_frozen_features_pool_each_layer_and_ignore_padding(model: QualityEncoderRanker) -> None:
    wave = torch.from_numpy(speech_like(0.5, seed=1))[None]
    padded = torch.nn.functional.pad(wave, (0, 8000))
    features = model.frozen_features(wave)
    assert features.shape == (1, 2, 400)
    masked = model.frozen_features(padded, torch.tensor([wave.shape[1]]))
    torch.testing.assert_close(masked, features, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model.embed(wave), model.embed_frozen(features))


def test_swapping_inputs_negates_the_logit_exactly(model: QualityEncoderRanker) -> None:
    first = torch.from_numpy(speech_like(0.4, seed=2))[None]
    second = first + 0.1 * torch.randn_like(first)
    forward, backward = model(first, second), model(second, first)
    torch.testing.assert_close(forward.logit, -backward.logit)
    torch.testing.assert_close(forward.mos_a, backward.mos_b)


def test_encoder_stays_frozen_and_in_eval_mode(model: QualityEncoderRanker) -> None:
    model.train()
    assert not model.encoder.training
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and not any(name.startswith("encoder.") for name in trainable)
    assert supports_frozen_cache(model)
    model.eval()


def test_cached_training_learns_a_known_noise_order(tmp_path: Path) -> None:
    snr = {"s1": 30.0, "s2": 12.0, "s3": 0.0, "s4": -10.0}
    mos = {"s1": 4.5, "s2": 3.5, "s3": 2.5, "s4": 1.5}
    # Every file costs one 7.68 s Distill-MOS window whatever its length: keep the set tiny.
    write_system_folders(tmp_path / "data", snr, 5, duration=0.5)
    shutil.rmtree(tmp_path / "data" / "_reference")
    lines = ["system_id,sample_id,mos"]
    lines += [f"{system},utt{index:03d},{mos[system]}" for system in snr for index in range(5)]
    (tmp_path / "mos.csv").write_text("\n".join(lines) + "\n")
    settings = TrainConfig(
        data=str(tmp_path / "data"),
        mos_csv=str(tmp_path / "mos.csv"),
        output_dir=str(tmp_path / "run"),
        validation_utterances=1,
        epochs=25,
        learning_rate=1e-2,
        batch_size=16,
        keep_best=1,
    )
    best = train(settings, TINY, MODEL_KIND)
    payload = load_checkpoint(best)
    assert payload["metadata"]["mos_head_trained"] is True  # MOS labels and beta > 0
    trained = build_model(payload)
    assert isinstance(trained, QualityEncoderRanker)
    write_system_folders(tmp_path / "test", snr, 2, duration=0.5, seed=100)
    from sqa.audio import load_audio

    table = np.full((4, 4, 2), np.nan)
    for index in range(2):
        waves = np.stack(
            [load_audio(tmp_path / "test" / system / f"utt{index:03d}.wav")[0] for system in snr]
        )
        table[:, :, index] = RankerScorer(trained).utterance_table(waves)[0]
    assert ktau(ecs_scores(table, "nbs"), list(mos.values())) == pytest.approx(1.0)


def test_feature_pairs_dataset_returns_cached_tensors() -> None:
    from rankers.data import PairExample

    features = {"a": torch.zeros(2, 400), "b": torch.ones(2, 400)}
    fields = PairExample.__dataclass_fields__
    values = {name: None for name in fields}
    values.update(path_a="a", path_b="b", label=1.0, mos_a=float("nan"), mos_b=float("nan"))
    item = FeaturePairDataset([PairExample(**values)], features)[0]
    assert torch.equal(item["features_b"], features["b"]) and item["label"] == 1.0


def test_feature_store_is_reused_and_ignored_for_another_encoder(
    model: QualityEncoderRanker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rankers import feature_cache

    paths = []
    for index in range(2):
        path = tmp_path / f"f{index}.wav"
        soundfile.write(path, speech_like(0.3, seed=index), 16000)
        paths.append(str(path))
    store = tmp_path / "features.pt"
    first = feature_cache.encode_files(model, paths, 16000, "cpu", store)
    calls: list[int] = []
    original = model.frozen_features
    monkeypatch.setattr(model, "frozen_features", lambda *a: calls.append(1) or original(*a))
    again = feature_cache.encode_files(model, paths, 16000, "cpu", store)
    assert not calls and all(torch.equal(first[p], again[p]) for p in paths)
    monkeypatch.setattr(model, "frozen_signature", lambda: "another encoder")
    feature_cache.encode_files(model, paths, 16000, "cpu", store)
    assert len(calls) == 2
