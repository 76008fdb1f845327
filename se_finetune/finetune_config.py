"""Settings and outcome of a fine-tuning run (:class:`FinetuneConfig`, read from YAML)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from se_finetune.bsrnn import BSRNNConfig, compact_config
from se_finetune.guard import GuardConfig
from sqa.fileio import atomic_open, dumps_json
from sqa.simulation.simulate import SimulationConfig


@dataclass(frozen=True)
class LossWeights:
    """The λ of each loss term (0 disables it)."""

    spec: float = 1.0
    score: float = 0.0
    feat: float = 0.0
    reg: float = 0.0
    rank: float = 0.0
    time: float = 0.0


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything a fine-tuning (or pre-training) run needs; see recipes/se_finetune/config.yaml.

    The ``*_dir`` pools take what every audio input takes (:func:`sqa.simulation.files.pool_files`:
    a folder, a ``*.scp`` or a listing such as ``data.jsonl``).
    """

    output_dir: str = "exp/se_finetune"
    init_checkpoint: str | None = None
    model: BSRNNConfig = field(default_factory=compact_config)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    speech_dir: str = "../shared/data/speech"
    noise_dir: str = "../shared/data/noise"
    rir_dir: str | None = "../shared/data/rir"
    holdout_every: int = 10
    real_dir: str | None = None
    real_ratio: float = 0.0
    critic: str | None = None
    ranker: str | None = None
    metric_weights: dict[str, float] = field(default_factory=dict)
    weights: LossWeights = field(default_factory=LossWeights)
    batch_size: int = 8
    steps: int = 1000
    learning_rate: float = 1e-5
    lr_step_size: int = 10000
    lr_gamma: float = 0.5
    grad_clip: float = 1.0
    eval_interval: int = 200
    eval_count: int = 16
    eval_metrics: tuple[str, ...] = ("sdr", "pesq", "estoi", "lsd", "dnsmos_ovrl")
    real_eval_metrics: tuple[str, ...] = ("dnsmos_ovrl",)
    guard_interval: int = 25
    guard_clips: int = 8
    guard: GuardConfig = field(default_factory=GuardConfig)
    checkpoint_interval: int = 100
    seed: int = 0
    device: str = "cpu"  # under torchrun with CUDA: cuda:<LOCAL_RANK> (sqa.distributed)


@dataclass
class FinetuneResult:
    """Outcome of :func:`finetune`: final step, status, last evaluation, guard message."""

    step: int
    status: str  # "finished", "collapsed" or "stopped"
    evaluation: dict[str, float]
    message: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)


def write_summary(result: FinetuneResult, path: Path) -> None:
    """Write the outcome as JSON (atomically)."""
    summary = {
        "step": result.step,
        "status": result.status,
        "message": result.message,
        "evaluation": result.evaluation,
    }
    with atomic_open(path, "w") as stream:
        stream.write(dumps_json(summary, indent=2) + "\n")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> FinetuneConfig:
    """Read a YAML config (unknown keys are an error) with overrides (sqa.configs.load_config)."""
    from sqa.configs import load_config as load

    return load(path, FinetuneConfig, overrides)
