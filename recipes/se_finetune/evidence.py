"""Small-scale reproduction of the SQA-guided paper's table shape (Table V / VI) on a CPU.

Stages (each resumable; run them in order, logs and checkpoints under ``--work``):

    python recipes/se_finetune/evidence.py pretrain --work /work/runs/se_finetune
    python recipes/se_finetune/evidence.py rows --work /work/runs/se_finetune [--only NAME]
    python recipes/se_finetune/evidence.py table --work /work/runs/se_finetune

``pretrain`` trains a compact BSRNN with ``L_spec`` on simulated data from ``--data``; ``rows``
fine-tunes it under each loss configuration with the differentiable DNSMOS critic (asem) or a
predictor checkpoint (``--critic``); ``table`` writes ``table.md`` / ``table.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from se_finetune.bsrnn import BSRNNConfig
from se_finetune.evaluation import evaluate_inputs, evaluate_restorer, teacher_scorer
from se_finetune.finetune import Finetuner
from se_finetune.finetune_config import FinetuneConfig, LossWeights, write_summary
from se_finetune.guard import GuardConfig
from sqa.checkpoint import load_model
from sqa.fileio import dumps_json
from sqa.simulation.simulate import SimulationConfig

METRICS = ("sdr", "pesq", "estoi", "lsd", "dnsmos_ovrl")
# name -> (λ_spec, λ_score, λ_feat, λ_reg, real_ratio, learning-rate multiplier)
ROWS = {
    "spec-only": (1.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    "spec+score": (1.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    "spec+score+feat": (1.0, 1.0, 1.0, 0.0, 0.0, 1.0),
    "score-only": (0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    "score-only lr x10": (0.0, 1.0, 0.0, 0.0, 0.0, 10.0),
    "score-only lr x10 unguarded": (0.0, 1.0, 0.0, 0.0, 0.0, 10.0),
    "real score+reg": (0.0, 1.0, 0.0, 1.0, 1.0, 1.0),
    "real score-only": (0.0, 1.0, 0.0, 0.0, 1.0, 1.0),
}


def _folder_name(row: str) -> str:
    return row.replace(" ", "_").replace("+", "_")


def base_config(arguments: argparse.Namespace, output_dir: Path) -> FinetuneConfig:
    data = Path(arguments.data)
    return FinetuneConfig(
        output_dir=str(output_dir),
        model=BSRNNConfig(sample_rate=16000, num_channels=24, num_layers=2),
        simulation=SimulationConfig(sample_rate=16000, segment_seconds=1.0),
        speech_dir=str(data / "speech"),
        noise_dir=str(data / "noise"),
        rir_dir=str(data / "rir"),
        batch_size=4,
        eval_count=12,
        eval_metrics=METRICS,
        seed=arguments.seed,
    )


def pretrain(arguments: argparse.Namespace) -> None:
    work = Path(arguments.work)
    config = dataclasses.replace(
        base_config(arguments, work / "pretrain"),
        steps=arguments.pretrain_steps,
        weights=LossWeights(spec=1.0, time=1.0),
        learning_rate=1e-3,
        lr_step_size=400,
        lr_gamma=0.7,
        grad_clip=5.0,
        eval_interval=200,
        checkpoint_interval=50,
    )
    result = Finetuner(config).run(progress=True)
    write_summary(result, work / "pretrain" / "summary.json")


def run_row(arguments: argparse.Namespace, name: str) -> None:
    work = Path(arguments.work)
    spec, score, feat, reg, real_ratio, lr_multiplier = ROWS[name]
    folder = work / "rows" / _folder_name(name)
    config = dataclasses.replace(
        base_config(arguments, folder),
        init_checkpoint=str(work / "pretrain" / "last.pt"),
        critic=arguments.critic,
        weights=LossWeights(spec=spec, score=score, feat=feat, reg=reg, time=1.0),
        real_dir=str(work / "real"),
        real_ratio=real_ratio,
        steps=arguments.row_steps,
        learning_rate=arguments.row_lr * lr_multiplier,
        eval_interval=arguments.row_steps,
        guard_interval=10,
        checkpoint_interval=20,
        guard=GuardConfig(enabled="unguarded" not in name),
    )
    result = Finetuner(config).run(progress=True)
    write_summary(result, folder / "summary.json")


def _last_guard_check(folder: Path) -> str:
    records = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    checks = [r for r in records if "consistency_db" in r]
    return f"{checks[-1]['consistency_db']:.1f}" if checks else "-"


def table(arguments: argparse.Namespace) -> None:
    work = Path(arguments.work)
    config = dataclasses.replace(
        base_config(arguments, work / "table"),
        init_checkpoint=str(work / "pretrain" / "last.pt"),
        real_dir=str(work / "real"),
    )
    finetuner = Finetuner(config)
    columns = [*METRICS, "real_dnsmos_ovrl"]
    rows = {"noisy": evaluate_inputs(finetuner.eval_pairs, METRICS, 16000)}
    real_noisy = [
        teacher_scorer(("dnsmos_ovrl",)).score(clip, 16000, None).values["dnsmos_ovrl"]
        for clip in finetuner.real_clips[:12]
    ]
    rows["noisy"]["real_dnsmos_ovrl"] = float(np.mean(real_noisy))
    pretrained = load_model(work / "pretrain" / "last.pt")
    rows["pretrained (L_spec)"] = evaluate_restorer(
        pretrained,
        finetuner.eval_pairs,
        METRICS,
        real_clips=finetuner.real_clips[:12],
        real_metric_names=("dnsmos_ovrl",),
        sample_rate=16000,
    )
    notes, guard = {}, {"noisy": "-", "pretrained (L_spec)": "-"}
    for name in ROWS:
        folder = work / "rows" / _folder_name(name)
        if (folder / "summary.json").is_file():
            summary = json.loads((folder / "summary.json").read_text())
            rows[name] = {key: summary["evaluation"].get(key, float("nan")) for key in columns}
            notes[name] = f"{summary['status']} at step {summary['step']}. {summary['message']}"
            guard[name] = _last_guard_check(folder)
    header = [*columns, "SI-SNR vs initial (dB)"]
    lines = ["| row | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for name, values in rows.items():
        cells = [f"{values.get(m, float('nan')):.3f}" for m in columns] + [guard[name]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n\n" + "\n".join(f"- {k}: {v}" for k, v in notes.items()) + "\n"
    (work / "table.md").write_text(text)
    (work / "table.json").write_text(dumps_json({"rows": rows, "notes": notes}, indent=2))
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("pretrain", "rows", "table"))
    parser.add_argument("--work", default="runs/se_finetune")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--critic", default="dnsmos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--row-steps", type=int, default=60)
    parser.add_argument("--row-lr", type=float, default=1e-4)
    parser.add_argument("--only", action="append", choices=list(ROWS))
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    if arguments.stage == "pretrain":
        pretrain(arguments)
    elif arguments.stage == "rows":
        for name in arguments.only or list(ROWS):
            run_row(arguments, name)
    else:
        table(arguments)


if __name__ == "__main__":
    main()
