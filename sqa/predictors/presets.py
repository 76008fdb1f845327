"""Named predictor configurations for the command line and the benchmark.

* ``paper``: SSL front end (``--ssl-path``, e.g. a local WavLM-Large) + three parallel encoders
  (4 layers, 4 heads, d=256, FFN 1024), as in the Uni-VERSA-Ext paper.
* ``baseline``: SSL front end + one shared encoder (6 layers, d=768, 8 heads, FFN 2048), the
  URGENT 2026 Track-2 baseline trunk.
* ``compact-mel`` / ``compact-distillmos``: CPU-sized models (three encoders of 2 layers, d=128,
  FFN 256, sinusoidal positions) on the log-mel or the frozen Distill-MOS front end; these need no
  downloaded weights.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from sqa.errors import SqaError

if TYPE_CHECKING:  # the config classes live beside their torch modules (nanoGPT style)
    from sqa.predictors.model import TrunkConfig, UniVersaConfig

PRESETS = ("paper", "baseline", "compact-mel", "compact-distillmos")


def compact_trunk() -> TrunkConfig:
    """The CPU-sized trunk of the ``compact-*`` presets (imported lazily: ``--help`` needs none)."""
    from sqa.predictors.model import TrunkConfig

    return TrunkConfig(
        num_layers=2, num_heads=4, d_model=128, ffn_dim=256, dropout=0.1, positional_encoding=True
    )


def preset_config(
    name: str, *, ssl_path: str = "", metrics: tuple[str, ...] | None = None
) -> UniVersaConfig:
    """Build a named configuration.

    Args:
        name: One of :data:`PRESETS`.
        ssl_path: Local SSL model folder (``paper`` and ``baseline``).
        metrics: Heads (default: the 22 Track-2 keys).

    Raises:
        SqaError: Unknown preset, or an SSL preset without ``ssl_path``.
    """
    if name not in PRESETS:
        raise SqaError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")
    if name in ("paper", "baseline") and not ssl_path:
        raise SqaError(f"preset {name!r} needs a local SSL model folder (--ssl-path)")
    from sqa.predictors.frontends import SslFrontEndConfig
    from sqa.predictors.model import TrunkConfig, UniVersaConfig

    trunk = {"paper": TrunkConfig(), "baseline": TrunkConfig.baseline()}.get(
        name
    ) or compact_trunk()
    front_end = {"compact-mel": "mel", "compact-distillmos": "distillmos"}.get(name, "ssl")
    config = UniVersaConfig(front_end=front_end, trunk=trunk, ssl=SslFrontEndConfig(path=ssl_path))
    return replace(config, metrics=tuple(metrics)) if metrics else config
