"""Seconds per fine-tuning step: L_spec only vs L_spec + L_score + L_feat (target ratio ≤ 1.5).

    python benchmarks/finetune_step.py                       # compact BSRNN, both critics
    python benchmarks/finetune_step.py --model full --rate 48000 --batch 2 --seconds 1

Critics: ``dnsmos`` (the differentiable asem DNSMOS, 16 kHz) and ``universa-mel`` (the issue-5
predictor with its log-mel front end and paper trunk, randomly initialised: same cost as a trained
one). Synthetic speech-like audio; one optimizer step per timed iteration (Adam, clipping).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
from common import emit_summary

from se_finetune.bsrnn import BSRNN, BSRNNConfig, compact_config, count_parameters
from se_finetune.losses import (
    DnsmosCritic,
    FrozenCritic,
    MultiResolutionSpectralLoss,
    critic_metric_weights,
    feature_loss,
    score_loss,
)
from sqa.synthetic import add_noise_at_snr, speech_like


def build_critic(name: str, rate: int) -> FrozenCritic:
    if name == "dnsmos":
        return FrozenCritic(DnsmosCritic(), rate)
    from sqa.predictors import UniVersa, UniVersaConfig

    return FrozenCritic(UniVersa(UniVersaConfig(front_end="mel")), rate)


def time_steps(model, losses, noisy, clean, steps: int, warmup: int) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    durations = []
    for index in range(warmup + steps):
        started = time.perf_counter()
        enhanced = model(noisy)
        loss = sum(term(enhanced) for term in losses)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if index >= warmup:
            durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("compact", "full"), default="compact")
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--critic", action="append", choices=("dnsmos", "universa-mel"))
    parser.add_argument("--output", help="also write the JSON summary here")
    return parser.parse_args()


def time_with_critic(name: str, model, spec_term, noisy, clean, arguments) -> float:
    """Median step time of ``L_spec + L_score + L_feat`` with one pass of critic ``name``."""
    critic = build_critic(name, arguments.rate)
    weights = critic_metric_weights(critic, {})
    with torch.no_grad():
        clean_hidden = critic(clean).hidden

    def score_and_feature(enhanced: torch.Tensor) -> torch.Tensor:
        # One critic pass serves both terms, as in training.
        output = critic(enhanced)
        return score_loss(output.scores, weights) + feature_loss(output.hidden, clean_hidden)

    terms = [*spec_term, score_and_feature]
    return time_steps(model, terms, noisy, clean, arguments.steps, arguments.warmup)


def main() -> int:
    arguments = parse_arguments()
    torch.set_num_threads(arguments.threads)
    torch.manual_seed(0)
    rate = arguments.rate
    config = compact_config(rate) if arguments.model == "compact" else BSRNNConfig(sample_rate=rate)
    model = BSRNN(config)
    clean = np.stack([speech_like(arguments.seconds, rate, seed=s) for s in range(arguments.batch)])
    noisy = np.stack([add_noise_at_snr(c, 5.0, seed=s) for s, c in enumerate(clean)])
    noisy_tensor, clean_tensor = torch.from_numpy(noisy), torch.from_numpy(clean)
    spectral = MultiResolutionSpectralLoss(rate)
    spec_term = [lambda enhanced: spectral(enhanced, clean_tensor)]
    spec_only = time_steps(
        model, spec_term, noisy_tensor, clean_tensor, arguments.steps, arguments.warmup
    )
    report = {
        "model": arguments.model,
        "parameters": count_parameters(model),
        "rate": rate,
        "batch": arguments.batch,
        "seconds_per_clip": arguments.seconds,
        "threads": arguments.threads,
        "spec_only_s_per_step": round(spec_only, 3),
    }
    for name in arguments.critic or ["dnsmos", "universa-mel"]:
        full = time_with_critic(name, model, spec_term, noisy_tensor, clean_tensor, arguments)
        report[f"spec_score_feat_{name}_s_per_step"] = round(full, 3)
        report[f"ratio_{name}"] = round(full / spec_only, 2)
    emit_summary(report, arguments.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
