"""The training configuration of `sqa train-ranker` (torch-free: its CLI is built from it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a ranker training run (defaults: paper mel model).

    The ``distillmos`` preset (:mod:`rankers.quality`) has a frozen pretrained encoder and trains
    on its features computed once per file (:mod:`rankers.feature_cache`).

    Attributes:
        data: Training data (folder root, data.jsonl, Kaldi folder, CSV or URGENT-PK layout).
        output_dir: Run folder (checkpoints, config.yaml, environment.json).
        mos_csv: Per-file MOS table for a folder root.
        preferences: Preference pairs from `sqa pairs` (CSV/JSONL), used with or instead of MOS.
        model: Preset: ``paper``, ``compact``, ``cached``, ``distillmos`` or ``ssl``.
        ssl_path: Local transformers model directory for ``ssl``.
        freeze: Freeze the ssl backbone.
        lstm_hidden: BiLSTM units after the ssl backbone (0: none).
        validation_utterances: Utterances held out for validation (paper: 8 of 300).
        delta: MOS difference threshold for keeping a pair.
        ties: ``drop`` or ``half`` for exact ties when ``delta`` is 0.
        alpha: Weight of the BCE term.
        beta: Weight of the MSE term.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        lr_decay: StepLR factor per epoch.
        grad_clip: Gradient norm clip.
        batch_size: Pairs per batch (per process).
        epochs: Training epochs.
        max_steps_per_epoch: Cap on steps per epoch (0: none; for smoke tests).
        max_seconds: Random crop length for long pairs (0: no crop).
        keep_best: Checkpoints kept by validation loss.
        scoring: ECS scoring used for selection.
        seed: Global seed.
        device: ``cpu`` or ``cuda``.
        cache_audio: Keep decoded audio in memory.
        resume: Continue from ``output_dir/last.pt`` when present.
        force: Start over in a run folder that has a checkpoint (else refused unless resume).
        feature_store: File keeping a frozen encoder's features between runs (``distillmos``).
    """

    data: str
    output_dir: str
    mos_csv: str | None = None
    preferences: str | None = None
    model: str = "paper"
    ssl_path: str | None = None
    freeze: bool = True
    lstm_hidden: int = 0
    validation_utterances: int = 8
    delta: float = 0.3
    ties: str = "drop"
    alpha: float = 0.5
    beta: float = 0.5
    learning_rate: float = 1e-4
    weight_decay: float = 1e-6
    lr_decay: float = 0.85
    grad_clip: float = 0.5
    batch_size: int = 12
    epochs: int = 30
    max_steps_per_epoch: int = 0
    max_seconds: float = 0.0
    keep_best: int = 9
    scoring: str = "bs"
    seed: int = 0
    device: str = "cpu"
    cache_audio: bool = False
    resume: bool = False
    force: bool = False
    feature_store: str | None = None
