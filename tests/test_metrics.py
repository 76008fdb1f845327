"""Teacher metrics: closed forms, agreement with the reference packages, NaN on bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sqa.errors import MissingWeightsError, SqaError
from sqa.metrics import METRIC_SPECS, TRACK2_KEYS, expand_metric_names, get_metric_spec
from sqa.metrics.perceptual import dtw_path, estoi_score, mcd_score, pesq_score
from sqa.metrics.rank_score import rank_scores
from sqa.metrics.scorer import MetricScorer, ScoringOptions, compute_metric
from sqa.metrics.signal import lsd, sdr, si_snr
from sqa.synthetic import add_noise_at_snr, speech_like

RATE = 16000


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return speech_like(2.0, RATE, seed=3)


@pytest.fixture(scope="module")
def noisy(clean: np.ndarray) -> np.ndarray:
    return add_noise_at_snr(clean, 10.0, seed=4)


def test_registry_covers_track2_and_extra_keys() -> None:
    for key in (*TRACK2_KEYS, "si_snr", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808", "plcmos"):
        assert key in METRIC_SPECS
    assert len(TRACK2_KEYS) == 22
    assert get_metric_spec("lsd").higher_is_better is False
    assert get_metric_spec("pesq").needs_reference and get_metric_spec("pesq").sample_rate == RATE
    assert get_metric_spec("utmos").needs_weights == "--utmos-weights"
    with pytest.raises(SqaError, match="unknown metric 'nope'"):
        get_metric_spec("nope")
    assert expand_metric_names("dnsmos,sdr,sdr") == [
        "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808", "sdr",
    ]  # fmt: skip


def test_pesq_identical_and_equal_to_package(clean: np.ndarray, noisy: np.ndarray) -> None:
    import pesq

    assert pesq_score(clean, clean, sample_rate=RATE) == pytest.approx(4.64, abs=0.01)
    direct = pesq.pesq(RATE, clean.astype(np.float64), noisy.astype(np.float64), "wb")
    assert pesq_score(noisy, clean, sample_rate=RATE) == pytest.approx(direct, abs=1e-6)


def test_pesq_narrowband_for_8khz_input() -> None:
    import pesq

    reference = speech_like(2.0, 8000, seed=5)
    degraded = add_noise_at_snr(reference, 15.0, seed=6)
    direct = pesq.pesq(8000, reference.astype(np.float64), degraded.astype(np.float64), "nb")
    assert pesq_score(degraded, reference, sample_rate=8000) == pytest.approx(direct, abs=1e-6)


def test_si_snr_closed_forms(clean: np.ndarray) -> None:
    assert si_snr(0.3 * clean, clean) > 60.0
    noise = np.random.default_rng(0).standard_normal(clean.size)
    noise *= np.sqrt(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2) / 10.0)
    assert si_snr(clean + noise, clean) == pytest.approx(10.0, abs=0.3)


def test_sdr_clamps_and_matches_snr(clean: np.ndarray, noisy: np.ndarray) -> None:
    assert sdr(2.0 * clean, clean) == 50.0
    # A short filter (delay + gain) is part of the allowed distortion in BSS-eval.
    delayed = np.concatenate([np.zeros(3, np.float32), 0.5 * clean[:-3]])
    assert sdr(delayed, clean) > 40.0
    assert sdr(noisy, clean) == pytest.approx(10.0, abs=0.5)


def test_lsd_identical_gain_invariant_and_grows_with_noise(
    clean: np.ndarray, noisy: np.ndarray
) -> None:
    # The official definition is 0 for identical signals only without digital silence: a bin
    # where both spectra are 0 contributes ln(eps)^2 (ln(0 / eps^2 + eps) = ln 1e-8).
    dithered = clean + 1e-4 * np.random.default_rng(5).standard_normal(clean.size)
    assert lsd(dithered, dithered, sample_rate=RATE) == pytest.approx(0.0, abs=1e-3)
    assert lsd(0.25 * dithered, dithered, sample_rate=RATE) == pytest.approx(0.0, abs=1e-3)
    exact = np.asarray(clean, dtype=np.float64)  # both computed in float64, as we compute
    assert not np.all(exact) and lsd(exact, exact, sample_rate=RATE) > 1.0
    assert lsd(exact, exact, sample_rate=RATE) == pytest.approx(_official_lsd(exact, exact, RATE))
    louder_noise = add_noise_at_snr(clean, 0.0, seed=4)
    assert 0 < lsd(noisy, clean, sample_rate=RATE) < lsd(louder_noise, clean, sample_rate=RATE)


def test_estoi_identical_is_one(clean: np.ndarray, noisy: np.ndarray) -> None:
    assert estoi_score(clean, clean, sample_rate=RATE) == pytest.approx(1.0, abs=1e-6)
    assert estoi_score(noisy, clean, sample_rate=RATE) < 0.95


def test_estoi_repeats_exactly_and_leaves_the_global_numpy_generator_alone(
    clean: np.ndarray,
) -> None:
    from pystoi import stoi

    # Quiet input: there pystoi's unseeded dithering changes the value by about 5e-14 per call.
    quiet = 1e-3 * clean
    degraded = add_noise_at_snr(quiet, 0.0, seed=9)
    np.random.seed(123)
    before = np.random.get_state()
    first = estoi_score(degraded, quiet, sample_rate=RATE)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    for _ in range(3):
        np.random.random()  # another global state must not change the value
        assert estoi_score(degraded, quiet, sample_rate=RATE) == first  # bit-identical
    # Only the dithering noise differs from an unseeded call.
    assert first == pytest.approx(stoi(quiet, degraded, RATE, extended=True), abs=1e-9)


def test_mcd_identical_is_zero() -> None:
    reference = speech_like(0.6, RATE, seed=7)
    assert mcd_score(reference, reference, sample_rate=RATE) == pytest.approx(0.0, abs=1e-9)
    assert mcd_score(add_noise_at_snr(reference, 5.0), reference, sample_rate=RATE) > 1.0


def test_dtw_path_follows_cheap_cells() -> None:
    cost = np.ones((3, 4))
    cost[0, 0] = cost[1, 1] = cost[1, 2] = cost[2, 3] = 0.0
    rows, columns = dtw_path(cost)
    assert rows.tolist() == [0, 1, 1, 2] and columns.tolist() == [0, 1, 2, 3]


def test_dnsmos_equals_speechmos_direct_call() -> None:
    import speechmos.dnsmos

    # 1.2 s tiles to 9.6 s: one window in both modes, so "fast" and "full" must agree too.
    clip = add_noise_at_snr(speech_like(1.2, RATE, seed=8), 15.0)
    direct = speechmos.dnsmos.run(clip, RATE)
    for mode in ("full", "fast"):
        ours = MetricScorer(list(expand_metric_names("dnsmos")), ScoringOptions(dnsmos_mode=mode))
        values = ours.score(clip, RATE).values
        assert values["dnsmos_ovrl"] == pytest.approx(direct["ovrl_mos"], abs=1e-5)
        assert values["dnsmos_sig"] == pytest.approx(direct["sig_mos"], abs=1e-5)
        assert values["dnsmos_bak"] == pytest.approx(direct["bak_mos"], abs=1e-5)
        assert values["dnsmos_p808"] == pytest.approx(direct["p808_mos"], abs=1e-4)


def test_plcmos_is_deterministic() -> None:
    clip = speech_like(1.0, RATE, seed=9)
    first = compute_metric("plcmos", clip, sample_rate=RATE)
    assert compute_metric("plcmos", clip, sample_rate=RATE) == first
    other = compute_metric("plcmos", clip, sample_rate=RATE, options=ScoringOptions(plcmos_seed=1))
    assert other != first and 1.0 <= first <= 5.0


def test_distill_mos_in_range_and_resamples() -> None:
    clip = speech_like(1.0, 8000, seed=10)
    assert 1.0 <= compute_metric("distill_mos", clip, sample_rate=8000) <= 5.0


def test_silent_input_gives_nan_not_zero(clean: np.ndarray) -> None:
    silent = np.zeros(RATE, dtype=np.float32)
    scorer = MetricScorer(["pesq", "estoi", "sdr", "si_snr", "lsd", "plcmos"])
    result = scorer.score(silent, RATE, clean)
    assert all(math.isnan(value) for value in result.values.values())
    assert "SilentAudioError" in result.errors["pesq"]
    assert math.isnan(compute_metric("pesq", clean, silent, sample_rate=RATE))


def test_missing_reference_skips_only_reference_metrics(clean: np.ndarray) -> None:
    result = MetricScorer(["si_snr", "plcmos"]).score(clean, RATE, None)
    assert math.isnan(result.values["si_snr"]) and result.errors["si_snr"].startswith("no ref")
    assert not math.isnan(result.values["plcmos"])


@pytest.mark.parametrize("name", ["utmos", "sigmos_ovrl", "nisqa_mos", "spksim", "sbert", "cer"])
def test_weights_metrics_need_a_path(name: str) -> None:
    option = get_metric_spec(name).needs_weights
    with pytest.raises(MissingWeightsError, match=f"needs weights: pass {option} PATH"):
        MetricScorer([name])


def test_labels_are_not_computable_per_file() -> None:
    with pytest.raises(SqaError, match="cannot be computed per file"):
        MetricScorer(["mos"])


def test_rank_score_on_hand_made_table() -> None:
    def row(source: str, pesq: float, lsd_value: float) -> dict:
        return {"utterance_id": source, "metrics": {"pesq": pesq, "lsd": lsd_value}}

    rows = [
        row("a", 3.0, 1.0),  # best on both -> 1
        row("a", 2.0, 2.0),  # middle on both -> 0.5
        row("a", 1.0, 3.0),  # worst on both -> 0
        row("b", 2.0, 5.0),  # best pesq, worst lsd -> mean rank 1.5 of 2 -> 0.5
        row("b", 1.0, 4.0),
        row("c", 4.0, 1.0),  # a single version cannot be ranked
        row("d", 2.0, float("nan")),  # NaN ranks last
        row("d", 1.0, 1.0),
    ]
    scores = rank_scores(rows, ["pesq", "lsd"])
    assert scores[:5] == pytest.approx([1.0, 0.5, 0.0, 0.5, 0.5])
    assert math.isnan(scores[5])
    assert scores[6:] == pytest.approx([0.5, 0.5])
    weighted = rank_scores(rows[3:5], ["pesq", "lsd"], weights={"pesq": 3.0})
    assert weighted == pytest.approx([0.75, 0.25])


def _official_lsd(reference: np.ndarray, estimate: np.ndarray, rate: int) -> float:
    """The URGENT 2024/2025 ``lsd_metric``, written out frame by frame from its description:
    LS gain, ``librosa.stft`` defaults (periodic Hann, zero centre padding), int() frame sizes,
    ``ln(|R|^2 / (|E| + eps)^2 + eps)`` squared, mean over bins, square root, mean over frames."""
    eps = 1e-8
    estimate = estimate * np.sum(reference * estimate) / (np.sum(estimate**2) + eps)
    size, hop = int(0.032 * rate), int(0.016 * rate)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)
    padded = [
        np.concatenate([np.zeros(size // 2), x, np.zeros(size // 2)]) for x in (reference, estimate)
    ]
    per_frame = []
    for start in range(0, padded[0].size - size + 1, hop):
        spectra = [np.abs(np.fft.rfft(x[start : start + size] * window)) for x in padded]
        term = np.log(spectra[0] ** 2 / (spectra[1] + eps) ** 2 + eps) ** 2
        per_frame.append(np.sqrt(term.mean()))
    return float(np.mean(per_frame))


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
def test_lsd_matches_the_official_definition(rate: int) -> None:
    generator = np.random.default_rng(rate)
    reference = (
        generator.standard_normal(rate)
        * np.repeat(generator.random(10) > 0.3, rate // 10 + 1)[:rate]
    )
    for estimate in (
        reference + 0.1 * generator.standard_normal(rate),
        0.7 * reference,
        np.convolve(reference, np.ones(8) / 8, "same"),
    ):
        assert lsd(estimate, reference, sample_rate=rate) == pytest.approx(
            _official_lsd(reference, estimate, rate), rel=1e-9, abs=1e-9
        )
