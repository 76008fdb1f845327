"""The ``Example:`` blocks of the public metric and statistics functions run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ("sqa.stats", "sqa.metrics.signal", "sqa.metrics.perceptual", "sqa.mel", "sqa.configs")


@pytest.mark.parametrize("name", MODULES)
def test_examples_in_docstrings_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
