"""Weights-based metric adapters, exercised with tiny random ONNX models built in the test.

The ``onnx`` package is not a dependency, so the models are serialised with a minimal protobuf
writer below (only the fields a small graph needs).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from sqa.audio import resample
from sqa.metrics.adapters import SIGMOS_OUTPUTS, sigmos_features
from sqa.metrics.scorer import MetricScorer, ScoringOptions
from sqa.synthetic import speech_like


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _tensor(name: str, values: np.ndarray) -> bytes:
    dims = b"".join(_field(1, int(size)) for size in values.shape)
    raw = struct.pack(f"<{values.size}f", *values.astype(np.float32).ravel())
    return dims + _field(2, 1) + _field(8, name) + _field(9, raw)


def _value_info(name: str, dims: list[int | str]) -> bytes:
    shape = b"".join(_field(1, _field(2, d) if isinstance(d, str) else _field(1, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _field(1, 1) + _field(2, shape)))


def _node(op: str, inputs: list[str], output: str, axes: list[int] | None = None) -> bytes:
    body = b"".join(_field(1, name) for name in inputs) + _field(2, output) + _field(4, op)
    if axes is not None:
        attribute = _field(1, "axes") + b"".join(_field(8, a) for a in axes) + _field(20, 7)
        body += _field(5, attribute) + _field(
            5, _field(1, "keepdims") + _field(3, 0) + _field(20, 2)
        )
    return body


def tiny_model(
    path: Path, input_dims: list[int | str], axes: list[int], weight: np.ndarray
) -> np.ndarray:
    """``output = mean(|x|, axes) * weight + bias`` as an ONNX file; returns the random bias."""
    bias = np.random.default_rng(0).uniform(1.0, 2.0, weight.shape).astype(np.float32)
    nodes = [
        _node("Abs", ["x"], "a"),
        _node("ReduceMean", ["a"], "m", axes),
        _node("Mul", ["m", "w"], "s"),
        _node("Add", ["s", "b"], "y"),
    ]
    graph = b"".join(_field(1, node) for node in nodes) + _field(2, "tiny")
    graph += _field(5, _tensor("w", weight)) + _field(5, _tensor("b", bias))
    graph += _field(11, _value_info("x", input_dims))
    graph += _field(12, _value_info("y", list(weight.shape)))
    model = _field(1, 7) + _field(8, _field(1, "") + _field(2, 13)) + _field(7, graph)
    path.write_bytes(model)
    return bias


def test_sigmos_adapter_feeds_features_and_maps_outputs(tmp_path: Path) -> None:
    weight = np.arange(1, 8, dtype=np.float32).reshape(1, 7) / 10
    bias = tiny_model(tmp_path / "sigmos.onnx", [1, 3, "frames", 481], [1, 2, 3], weight)
    clip = speech_like(0.5, 16000, seed=1)
    options = ScoringOptions(weights={"--sigmos-weights": str(tmp_path / "sigmos.onnx")})
    values = MetricScorer(list(SIGMOS_OUTPUTS), options).score(clip, 16000).values
    features = sigmos_features(resample(clip, 16000, 48000))
    expected = np.abs(features).mean() * weight[0] + bias[0]
    assert [values[name] for name in SIGMOS_OUTPUTS] == pytest.approx(expected, rel=1e-4)


def test_sigmos_features_shape() -> None:
    features = sigmos_features(np.ones(48000 // 2, dtype=np.float32))
    assert features.shape == (1, 3, 51, 481) and features.dtype == np.float32


def test_waveform_and_embedding_adapters(tmp_path: Path) -> None:
    tiny_model(tmp_path / "utmos.onnx", [1, "time"], [1], np.array([2.0], np.float32))
    tiny_model(tmp_path / "spk.onnx", [1, "time"], [1], np.array([[1.0, -2.0, 0.5]], np.float32))
    options = ScoringOptions(
        weights={"--utmos-weights": str(tmp_path / "utmos.onnx"),
                 "--spksim-weights": str(tmp_path / "spk.onnx")}
    )  # fmt: skip
    clip = speech_like(0.5, 8000, seed=2)
    values = MetricScorer(["utmos", "spksim"], options).score(clip, 8000, clip).values
    assert np.isfinite(values["utmos"]) and values["spksim"] == pytest.approx(1.0, abs=1e-6)


def _nisqa_args() -> dict:
    return {
        "model": "NISQA_DIM", "cnn_model": "adapt", "td": "self_att", "td_2": "skip",
        "ms_n_fft": 4096, "ms_hop_length": 0.01, "ms_win_length": 0.02, "ms_n_mels": 48,
        "ms_fmax": 20000, "ms_seg_length": 15, "ms_seg_hop_length": 4, "cnn_c_out_1": 16,
        "cnn_c_out_2": 32, "cnn_c_out_3": 64, "cnn_pool_1": [24, 7], "cnn_pool_2": [12, 5],
        "cnn_pool_3": [6, 3], "td_sa_d_model": 64, "td_sa_nhead": 1, "td_sa_num_layers": 2,
        "td_sa_h": 64, "pool_att_h": 128,
    }  # fmt: skip


def test_nisqa_loads_checkpoint_in_the_original_layout(tmp_path: Path) -> None:
    import torch

    from sqa.errors import CheckpointError
    from sqa.metrics.nisqa import NISQA_OUTPUTS, Nisqa, NisqaConfig, load_nisqa

    torch.manual_seed(0)
    model = Nisqa(NisqaConfig.from_args(_nisqa_args()))
    state = model.state_dict()
    assert "cnn.model.conv6.weight" in state and "pool_layers.4.model.linear3.bias" in state
    assert "time_dependency.model.layers.1.self_attn.in_proj_weight" in state
    path = tmp_path / "nisqa.tar"
    torch.save({"args": _nisqa_args(), "model_state_dict": state}, path)
    options = ScoringOptions(weights={"--nisqa-weights": str(path)})
    values = MetricScorer(list(NISQA_OUTPUTS), options).score(speech_like(1.0), 16000).values
    assert all(np.isfinite(value) for value in values.values())
    torch.save({"args": {**_nisqa_args(), "model": "NISQA"}, "model_state_dict": state}, path)
    load_nisqa.cache_clear()
    with pytest.raises(CheckpointError, match="NISQA_DIM"):
        MetricScorer(["nisqa_mos"], options).score(speech_like(1.0), 16000)


def test_numpy_mel_features_match_librosa() -> None:
    import librosa

    from sqa.metrics.features import mel_spectrogram, power_to_db

    clip = speech_like(0.5, 48000, seed=3)
    settings = {"n_fft": 4096, "n_mels": 48, "power": 1.0, "fmax": 20000.0}
    ours = mel_spectrogram(clip, 48000, hop=480, window_length=960, pad_mode="reflect", **settings)
    theirs = librosa.feature.melspectrogram(
        y=clip, sr=48000, hop_length=480, win_length=960, pad_mode="reflect", **settings
    )
    assert ours == pytest.approx(theirs, abs=1e-5)
    expected = librosa.amplitude_to_db(theirs, ref=1.0, amin=1e-4, top_db=80.0)
    assert power_to_db(ours**2, 1.0, minimum=1e-8) == pytest.approx(expected, abs=1e-3)
    odd = mel_spectrogram(clip[:16000], 16000, n_fft=321, hop=160, n_mels=120)
    reference = librosa.feature.melspectrogram(
        y=clip[:16000], sr=16000, n_fft=321, hop_length=160, n_mels=120
    )
    assert odd == pytest.approx(reference, rel=1e-4, abs=1e-6)
