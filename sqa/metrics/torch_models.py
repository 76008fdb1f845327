"""Non-intrusive torch teachers: Distill-MOS (weights shipped in ``distillmos``).

Models are built once per process (``functools.cache``) and run under ``torch.inference_mode``.
"""

from __future__ import annotations

import contextlib
import functools
import io

import numpy as np

from sqa.audio import resample, validate_audio
from sqa.errors import MissingDependencyError

DISTILL_MOS_RATE = 16000


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
    model = distill_mos_model()
    with torch.inference_mode():
        score = model(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None])
    return float(score.reshape(-1)[0])
