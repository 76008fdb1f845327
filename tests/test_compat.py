"""The torchaudio fallback: native when torchaudio works, pure-Python parts otherwise."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from sqa.compat import torchaudio_fallback
from sqa.errors import MissingDependencyError


@pytest.fixture()
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torchaudio_fallback, "_MODE", None)


def test_pure_python_parts_work(fresh_state: None) -> None:
    mode = torchaudio_fallback.ensure_torchaudio()
    assert mode in {"native", "fallback"}
    import torchaudio

    resampled = torchaudio.transforms.Resample(48000, 16000)(torch.randn(1, 4800))
    assert resampled.shape == (1, 1600)


def test_native_import_is_left_alone(fresh_state: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in = types.ModuleType("torchaudio")
    monkeypatch.setitem(sys.modules, "torchaudio", stand_in)
    assert torchaudio_fallback.ensure_torchaudio() == "native"
    assert sys.modules["torchaudio"] is stand_in


def test_missing_torchaudio_is_a_clear_error(
    fresh_state: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = __builtins__["__import__"] if isinstance(__builtins__, dict) else __import__

    def refuse(name: str, *arguments: object, **keywords: object) -> object:
        if name == "torchaudio":
            raise ModuleNotFoundError("No module named 'torchaudio'", name="torchaudio")
        return real_import(name, *arguments, **keywords)

    for name in [name for name in sys.modules if name.startswith("torchaudio")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr("builtins.__import__", refuse)
    with pytest.raises(MissingDependencyError, match="not installed"):
        torchaudio_fallback.ensure_torchaudio()
