"""Multi-metric predictor: range heads, masked loss, frozen front ends, gradients, checkpoints."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sqa.audio import save_audio
from sqa.checkpoint import build_model, load_checkpoint, save_checkpoint
from sqa.data import write_track2_jsonl
from sqa.data.records import AudioRecord
from sqa.predictors import MODEL_KIND, RangeActivation, TrunkConfig, UniVersa, UniVersaConfig
from sqa.predictors.data import DurationBatches
from sqa.predictors.inference import pack_by_duration
from sqa.predictors.losses import label_statistics, masked_standardised_mse
from sqa.predictors.train import TrainConfig, train_predictor
from sqa.synthetic import speech_like

TINY = TrunkConfig(num_layers=1, num_heads=2, d_model=16, ffn_dim=32, dropout=0.0)


def tiny_mel(metrics: tuple[str, ...] = ("mos", "pesq", "sdr", "sbert")) -> UniVersa:
    torch.manual_seed(0)
    return UniVersa(UniVersaConfig(front_end="mel", trunk=TINY, metrics=metrics))


@pytest.mark.parametrize(
    ("low", "high"), [(1.0, 5.0), (-0.5, 4.644), (0.0, None), (None, 50.0), (None, None)]
)
def test_range_activation_respects_bounds_at_extremes(low: float | None, high: float | None):
    logits = torch.tensor([-1e30, -1e4, -30.0, 0.0, 30.0, 1e4, 1e30])
    values = RangeActivation(low, high)(logits)
    assert torch.isfinite(values).all()
    if low is not None:
        assert (values >= low).all()
    if high is not None:
        assert (values <= high).all()
    if low is None and high is None:
        assert torch.equal(values, logits)


def test_heads_use_registry_ranges_and_groups():
    model = tiny_mel(("mos", "pesq", "sbert", "lsd"))
    ranges = {name: (low, high) for name, low, high in model.config.metric_ranges}
    assert ranges["mos"] == (1.0, 5.0) and ranges["lsd"][1] is None
    assert model.group_members == {
        "signal": ["pesq", "lsd"],
        "perceptual": ["mos"],
        "content": ["sbert"],
    }
    assert model.higher_is_better("mos") and not model.higher_is_better("lsd")
    baseline = UniVersa(
        UniVersaConfig(front_end="mel", metrics=("mos",), trunk=TrunkConfig.baseline())
    )
    assert list(baseline.group_members) == ["shared"] and baseline.hidden_dim == 768


def test_masked_loss_ignores_missing_labels_and_absent_metrics():
    predictions = {"a": torch.tensor([1.0, 2.0, 3.0], requires_grad=True), "b": torch.zeros(3)}
    mean, std = torch.tensor([0.0, 0.0]), torch.tensor([2.0, 1.0])
    labels = torch.tensor([[1.5, math.nan], [math.nan, math.nan], [2.0, math.nan]])
    loss, details = masked_standardised_mse(predictions, labels, ["a", "b"], mean, std)
    expected = (((1.0 - 1.5) / 2) ** 2 + ((3.0 - 2.0) / 2) ** 2) / 2
    assert details == pytest.approx({"a": expected}) and loss.item() == pytest.approx(expected)
    changed = predictions["a"].detach().clone()
    changed[1] = 1e6  # the unlabelled entry must not matter
    assert float(
        masked_standardised_mse(
            {"a": changed, "b": predictions["b"]}, labels, ["a", "b"], mean, std
        )[0]
    ) == pytest.approx(expected)
    empty, details = masked_standardised_mse(
        predictions, torch.full((3, 2), math.nan), ["a", "b"], mean, std
    )
    empty.backward()
    assert details == {} and float(empty.detach()) == 0.0
    assert torch.isfinite(predictions["a"].grad).all()


def test_label_statistics_skip_nan():
    labels = torch.tensor([[1.0, math.nan, math.nan], [3.0, 4.0, math.nan]])
    mean, std = label_statistics(labels)
    assert mean.tolist() == [2.0, 4.0, 0.0]
    assert std[0] == pytest.approx(math.sqrt(2.0)) and std[1] == 1.0 and std[2] == 1.0


def test_gradient_reaches_waveform_and_batch_independence():
    model = tiny_mel().eval()
    waveform = torch.from_numpy(np.stack([speech_like(1.0, seed=1), speech_like(1.0, seed=2)]))
    waveform[1, 8000:] = 0.0
    lengths = torch.tensor([16000, 8000])
    waveform.requires_grad_(True)
    output = model(waveform, lengths)
    assert output.hidden.shape == (2, model.hidden_dim)
    sum(score.sum() for score in output.scores.values()).backward()
    assert torch.isfinite(waveform.grad).all() and waveform.grad[0].abs().sum() > 0
    with torch.no_grad():
        alone = model(waveform[1:, :8000].detach(), torch.tensor([8000]))
    for name in model.metric_names:
        assert output.scores[name][1].item() == pytest.approx(
            alone.scores[name][0].item(), abs=1e-5
        )


def _tiny_ssl_folder(folder: Path) -> str:
    transformers = pytest.importorskip("transformers")
    config = transformers.WavLMConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2, num_buckets=8, max_bucket_distance=20,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.WavLMModel(config).save_pretrained(folder)
    return str(folder)


def test_frozen_ssl_front_end_layer_weights_learn_and_round_trip(tmp_path: Path):
    path = _tiny_ssl_folder(tmp_path / "ssl")
    config = UniVersaConfig(front_end="ssl", trunk=TINY, metrics=("mos", "pesq"))
    config = UniVersaConfig(**{**config.__dict__, "ssl": type(config.ssl)(path=path)})
    model = UniVersa(config).train()
    assert not model.front_end.model.training  # frozen backbone stays in eval mode
    waveform = torch.randn(2, 4000, requires_grad=True)
    output = model(waveform, torch.tensor([4000, 3000]))
    (output.scores["mos"].sum() + output.hidden.sum()).backward()
    assert (
        model.front_end.mix.logits.grad is not None
        and model.front_end.mix.logits.grad.abs().sum() > 0
    )
    assert all(p.grad is None for p in model.front_end.model.parameters())
    assert waveform.grad is not None and waveform.grad.abs().sum() > 0
    model.eval()
    checkpoint = save_checkpoint(tmp_path / "m.pt", model, model.config, kind=MODEL_KIND)
    for item in Path(path).iterdir():
        item.unlink()  # the checkpoint must not need the SSL folder any more
    rebuilt = build_model(load_checkpoint(checkpoint))
    with torch.no_grad():
        before = model(waveform.detach(), torch.tensor([4000, 3000])).scores["mos"]
        after = rebuilt(waveform.detach(), torch.tensor([4000, 3000])).scores["mos"]
    torch.testing.assert_close(before, after)


def test_distillmos_front_end_is_frozen_with_finite_input_gradients():
    if importlib.util.find_spec("distillmos") is None:
        pytest.skip("distillmos is not installed")
    config = UniVersaConfig(front_end="distillmos", trunk=TINY, metrics=("mos",))
    config = UniVersaConfig(
        **{**config.__dict__, "distillmos": type(config.distillmos)(pretrained=False)}
    )
    model = UniVersa(config).train()
    waveform = torch.zeros(1, 20000)
    waveform[0, :12000] = torch.from_numpy(speech_like(0.75, seed=3))
    waveform.requires_grad_(True)
    model(waveform, torch.tensor([20000])).scores["mos"].sum().backward()
    assert torch.isfinite(waveform.grad).all() and waveform.grad.abs().sum() > 0
    assert model.front_end.mix.logits.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.front_end.network.parameters())


def test_distillmos_window_cache_gives_the_same_features_and_still_trains_the_mix():
    if importlib.util.find_spec("distillmos") is None:
        pytest.skip("distillmos is not installed")
    from sqa.predictors.distillmos_frontend import DistillMosConfig, DistillMosFrontEnd

    torch.manual_seed(0)
    front_end = DistillMosFrontEnd(DistillMosConfig(layers=(1, 5), pretrained=False)).eval()
    waveform = torch.from_numpy(speech_like(0.6, seed=4))[None].repeat(2, 1)
    waveform[1] *= 0.5  # peak normalisation makes it the same window content: one cache entry
    lengths = torch.tensor([waveform.shape[1]] * 2)
    reference, frames = front_end(waveform, lengths)
    front_end.enable_window_cache()
    first, _ = front_end(waveform, lengths)
    assert len(front_end.window_cache) == 2  # distinct raw samples, distinct keys
    second, second_frames = front_end(waveform, lengths)  # served from the cache
    torch.testing.assert_close(first, reference, atol=2e-3, rtol=2e-3)  # fp16 storage
    torch.testing.assert_close(second, first)
    assert torch.equal(second_frames, frames)
    second.sum().backward()
    assert front_end.mix.logits.grad.abs().sum() > 0


def test_mel_checkpoint_round_trip_reproduces_predictions(tmp_path: Path):
    model = tiny_mel().eval()
    model.set_target_statistics({"mos": 3.0}, {"mos": 0.5})
    checkpoint = save_checkpoint(tmp_path / "m.pt", model, model.config, kind=MODEL_KIND)
    rebuilt = build_model(load_checkpoint(checkpoint))
    waveform = torch.from_numpy(speech_like(0.5, seed=4))[None]
    with torch.no_grad():
        for name, value in model(waveform).scores.items():
            torch.testing.assert_close(rebuilt(waveform).scores[name], value)
    standard = rebuilt.standardise({"mos": torch.tensor([3.5])})
    assert standard["mos"].item() == pytest.approx(1.0)


def test_duration_packing_covers_every_item_within_budget():
    durations = [3.0, 1.0, 2.5, 0.5, 9.0, 1.5, 1.0]
    batches = pack_by_duration(durations, 5.0, max_batch_size=3)
    assert sorted(i for batch in batches for i in batch) == list(range(len(durations)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(durations[i] for i in batch) <= 5.0
    shards = [list(DurationBatches(durations, 5.0, 3, None, 0, rank, 2)) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) and not set(map(tuple, shards[0])) & set(
        map(tuple, shards[1])
    )


def test_tiny_model_overfits_tiny_labelled_set(tmp_path: Path):
    records = []
    for index, snr in enumerate([0.0, 10.0, 20.0, 30.0]):
        clean = speech_like(0.5, seed=index)
        noisy = clean + np.random.default_rng(index).normal(0, 0.5 * 10 ** (-snr / 20), clean.shape)
        path = save_audio(tmp_path / f"u{index}.wav", np.clip(noisy, -1, 1), 16000)
        label = {"mos": 1.5 + snr / 10, "sdr": snr} if index != 2 else {"mos": 3.5}
        records.append(AudioRecord(f"u{index}", "sys", str(path), metrics=label))
    data = write_track2_jsonl(tmp_path / "data.jsonl", records)
    config = TrainConfig(
        train=(str(data),), valid=(str(data),), output_dir=str(tmp_path / "run"),
        model=UniVersaConfig(front_end="mel", trunk=TINY, metrics=("mos", "sdr")),
        learning_rate=3e-3, warmup_steps=5, max_steps=60, epochs=1000, batch_seconds=4.0,
        valid_every=30, criterion="mos/utt_mse", seed=0,
    )  # fmt: skip
    summary = train_predictor(config)
    log = [row for row in map(eval_json, (tmp_path / "run" / "log.jsonl").read_text().splitlines())]
    validations = [row["validation"] for row in log if "validation" in row]
    assert summary["step"] == 60 and summary["skipped"] == 0
    assert validations[-1]["loss"] < 0.1 * validations[0]["loss"] or validations[-1]["loss"] < 0.02
    assert validations[-1]["metrics"]["mos"]["utt_srcc"] == pytest.approx(1.0)
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert "training_state" not in best and best["metadata"]["label_statistics"]["mos"][
        0
    ] == pytest.approx(3.0)
    assert "training_state" in load_checkpoint(tmp_path / "run" / "last.pt")


def eval_json(line: str) -> dict:
    import json

    return json.loads(line)
