"""Non-intrusive torch teachers: Distill-MOS (weights shipped in ``distillmos``).

Models are built once per process (``functools.cache``) and run under ``torch.inference_mode``.

Long input: Distill-MOS scores a clip as the mean of 7.68 s crops whose starts are spread evenly
from the first to the last possible start, at most 1 s apart (``distillmos``'s own forward does
this, but runs every crop of the file in one batch: 3.7 GB for 60 s, out of memory for 10 min).
:func:`distill_mos_score` takes the same crops and averages the same per-crop scores, but runs
them :data:`DISTILL_MOS_CROPS_PER_BATCH` at a time, so memory no longer grows with the length.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math

import numpy as np

from sqa.audio import resample, validate_audio
from sqa.errors import MissingDependencyError

DISTILL_MOS_RATE = 16000
DISTILL_MOS_CROP = 122880  # 7.68 s, the network's input length
DISTILL_MOS_MAX_HOP = 16000  # at most 1 s between crop starts, as in distillmos
DISTILL_MOS_CROPS_PER_BATCH = 8


@functools.cache
def distill_mos_model() -> object:
    """The per-process Distill-MOS model in eval mode (loaded on first use)."""
    from sqa.compat.torchaudio_fallback import ensure_torchaudio

    ensure_torchaudio()
    try:
        import distillmos
    except ImportError as error:
        raise MissingDependencyError(
            f"distill_mos needs the distillmos package ({error})"
        ) from None
    # The constructor prints the weights path on stdout, which would corrupt piped output.
    with contextlib.redirect_stdout(io.StringIO()):
        model = distillmos.ConvTransformerSQAModel(load_weights=True)
    return model.eval()


def distill_mos_score(estimate: np.ndarray, *, sample_rate: int) -> float:
    """Distill-MOS of one clip.

    Args:
        estimate: Signal (T,) at ``sample_rate`` (resampled to 16 kHz, which the model requires).
        sample_rate: Its rate in Hz.

    Returns:
        Predicted MOS in [1, 5].
    """
    import torch

    validate_audio(estimate, sample_rate, min_duration=0.0, source="estimate")
    audio = resample(np.asarray(estimate, dtype=np.float32), sample_rate, DISTILL_MOS_RATE)
    waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    crops = [waveform[start : start + DISTILL_MOS_CROP] for start in crop_starts(waveform.numel())]
    model = distill_mos_model()
    scores = []
    with torch.inference_mode():
        for first in range(0, len(crops), DISTILL_MOS_CROPS_PER_BATCH):
            batch = crops[first : first + DISTILL_MOS_CROPS_PER_BATCH]
            # A clip shorter than one crop is zero-padded at the end, as distillmos does.
            padded = torch.stack(
                [
                    torch.nn.functional.pad(crop, (0, DISTILL_MOS_CROP - crop.numel()))
                    for crop in batch
                ]
            )
            # Given exactly one crop per row, the model scores each row on its own.
            scores.append(model(padded).reshape(-1))
    return float(torch.cat(scores).mean())


def crop_starts(length: int) -> list[int]:
    """Start samples of Distill-MOS's crops of a ``length``-sample 16 kHz clip.

    ``ceil(excess / 1 s) + 1`` starts spread evenly over ``[0, excess]`` (truncated to samples),
    ``excess`` being how much longer than one crop the clip is; a single start for shorter clips.

    Example:
        >>> crop_starts(122880), crop_starts(122880 + 24000)
        ([0], [0, 12000, 24000])
    """
    excess = max(length - DISTILL_MOS_CROP, 0)
    count = math.ceil(excess / DISTILL_MOS_MAX_HOP) + 1
    return [int(fraction * excess) for fraction in np.linspace(0, 1, count)]
