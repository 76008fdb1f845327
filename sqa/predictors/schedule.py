"""Learning-rate warm-up and the step progress bar of ``sqa train-predictor``.

The paper's warm-up is 25 000 linear steps, then a constant learning rate (``lr_schedule:
constant``; ``linear`` decays to 0 at the last update, as the Track-2 baseline does). A run shorter
than its warm-up would never reach the peak rate (a 30-step run would end at ``30 / 25000`` of it),
so :func:`effective_warmup` shrinks the warm-up to :data:`SHORT_RUN_WARMUP_FRACTION` of the run's
total steps and says so in one stderr line. Ten per cent is the usual warm-up ratio of short fine-
tuning schedules (BERT-style recipes use 6-10 %): long enough for AdamW's second-moment estimates
to settle before full-size updates, short enough that 90 % of the run trains at the configured
rate. Runs at least as long as their warm-up keep it unchanged.
"""

from __future__ import annotations

import math
import sys
from typing import Any

SHORT_RUN_WARMUP_FRACTION = 0.1


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Learning-rate multiplier: linear from 1/warmup to 1, then constant.

    Args:
        step: Zero-based index of the update about to be made.
        warmup_steps: Warm-up length (0 or less: no warm-up).

    Returns:
        The multiplier in (0, 1].
    """
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


LR_SCHEDULES = ("constant", "linear")


def schedule_factor(step: int, warmup_steps: int, total: int, schedule: str = "constant") -> float:
    """Learning-rate multiplier of a whole run: the warm-up, then constant or linear decay.

    ``"linear"`` decays from 1 after the warm-up to 0 at the last update, the schedule of the
    URGENT 2026 Track-2 baseline (``transformers.get_linear_schedule_with_warmup``).

    Args:
        step: Zero-based index of the update about to be made.
        warmup_steps: Warm-up length (0 or less: no warm-up).
        total: Total updates of the run (0: unknown, no decay).
        schedule: One of :data:`LR_SCHEDULES`.

    Returns:
        The multiplier in [0, 1].

    Raises:
        ValueError: Unknown ``schedule``.
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {schedule!r}; use one of {', '.join(LR_SCHEDULES)}")
    if step < warmup_steps or schedule == "constant" or total <= 0:
        return warmup_factor(step, warmup_steps)
    return max(0.0, (total - step) / max(1, total - max(warmup_steps, 0)))


def total_steps(max_steps: int, epochs: int, batches_per_epoch: int) -> int:
    """Updates a run makes: ``epochs`` passes over the data, capped by ``max_steps`` (0: no cap).

    Args:
        max_steps: Step limit of the run (0: none).
        epochs: Number of passes over the data.
        batches_per_epoch: Batches (updates) per pass on this process.

    Returns:
        The number of updates of the whole run.
    """
    planned = max(0, epochs) * max(0, batches_per_epoch)
    return min(planned, max_steps) if max_steps > 0 else planned


def effective_warmup(warmup_steps: int, total: int, *, announce: bool = True) -> int:
    """The warm-up to use: ``warmup_steps``, or a fraction of a run shorter than it.

    Args:
        warmup_steps: Configured warm-up length.
        total: Total updates of the run (see :func:`total_steps`).
        announce: Print one stderr line when the warm-up is scaled.

    Returns:
        ``warmup_steps`` when ``total >= warmup_steps`` (or ``total`` is 0), otherwise
        ``max(1, round(SHORT_RUN_WARMUP_FRACTION * total))``.
    """
    if warmup_steps <= 0 or total <= 0 or total >= warmup_steps:
        return warmup_steps
    scaled = max(1, round(SHORT_RUN_WARMUP_FRACTION * total))
    if announce:
        print(
            f"sqa train-predictor: the run has {total} steps, fewer than the warm-up of "
            f"{warmup_steps}; warming up over {scaled} steps "
            f"({SHORT_RUN_WARMUP_FRACTION:.0%} of the run) instead",
            file=sys.stderr,
            flush=True,
        )
    return scaled


def step_bar(total: int, initial: int, *, enabled: bool) -> Any:
    """A tqdm bar on stderr over training steps (``set_postfix`` shows loss and lr).

    Args:
        total: Total steps of the run.
        initial: Steps already done (a resumed run).
        enabled: Show the bar (False on non-zero ranks).

    Returns:
        The ``tqdm`` instance (a no-op bar when disabled).
    """
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc="sqa train-predictor",
        unit="step",
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
    )


def bar_postfix(loss: float, learning_rate: float) -> dict[str, str]:
    """The bar's postfix: the last update's loss (``skipped`` for a skipped one) and the lr."""
    shown = f"{loss:.4f}" if math.isfinite(loss) else "skipped"
    return {"loss": shown, "lr": f"{learning_rate:.2e}"}
