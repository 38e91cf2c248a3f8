"""The judge's guarantee as statistics: simulated judges with a known accuracy-vs-confidence relation.

Over many random calibration/test draws, the realised disagreement on the accepted items may exceed
α in at most about δ of them (binomial tolerance). The naive rule (the laxest threshold whose
*empirical* disagreement is ≤ α) is run through the same check and must fail it, so the check has
the power to catch a broken calibration.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from rag_pipeline.evaluate.judge.guarantee import (
    Threshold,
    apply_cascade,
    calibrate_cascade,
    calibrate_threshold,
    calibration_quality,
    min_testable_size,
)

ALPHA, DELTA = 0.15, 0.1
SPLITS = 200
N_CAL, N_TEST = 300, 3000
# At most this share of splits may violate: the 99.9% quantile of Bin(SPLITS, δ) over SPLITS.
TOLERANCE = binom.ppf(0.999, SPLITS, DELTA) / SPLITS


def calibrated_judge(rng, n, skill=1.0):
    """Confidence ~ U(0.5, 1); the verdict agrees with the label with probability 0.5 + skill·(c − 0.5)."""
    confidence = rng.uniform(0.5, 1.0, n)
    agrees = rng.uniform(size=n) < 0.5 + skill * (confidence - 0.5)
    return confidence, agrees


def no_signal_judge(rng, n):
    return rng.uniform(0.5, 1.0, n), rng.uniform(size=n) < 0.5


def naive_threshold(confidence, agrees, alpha):
    """The laxest threshold whose empirical disagreement is ≤ α: no finite-sample bound."""
    best = None
    for threshold in np.unique(confidence)[::-1]:
        accepted = confidence >= threshold
        if (~agrees[accepted]).mean() <= alpha:
            best = threshold
    return best


def realised_risk(confidence, agrees, threshold):
    accepted = confidence >= threshold
    return float((~agrees[accepted]).mean()) if accepted.any() else 0.0, float(accepted.mean())


def test_guarantee_holds_over_random_splits():
    rng = np.random.default_rng(7)
    violations, coverages = 0, []
    for _ in range(SPLITS):
        calibration = calibrated_judge(rng, N_CAL)
        test = calibrated_judge(rng, N_TEST)
        result = calibrate_threshold(*calibration, ALPHA, DELTA)
        if result.threshold is None:
            coverages.append(0.0)
            continue
        risk, coverage = realised_risk(*test, result.threshold)
        violations += risk > ALPHA
        coverages.append(coverage)
    assert violations / SPLITS <= TOLERANCE
    # A judge this well calibrated earns real coverage (a no-signal judge gets < 0.02, below).
    assert np.mean(coverages) > 0.2


def test_the_check_catches_a_threshold_without_a_bound():
    rng = np.random.default_rng(7)
    violations = 0
    for _ in range(SPLITS):
        confidence, agrees = calibrated_judge(rng, N_CAL)
        test = calibrated_judge(rng, N_TEST)
        threshold = naive_threshold(confidence, agrees, ALPHA)
        risk, _ = realised_risk(*test, threshold if threshold is not None else np.inf)
        violations += risk > ALPHA
    assert violations / SPLITS > TOLERANCE


def test_a_judge_without_signal_ends_near_zero_coverage_not_with_a_false_guarantee():
    rng = np.random.default_rng(3)
    coverages, violations = [], 0
    for _ in range(SPLITS):
        calibration = no_signal_judge(rng, N_CAL)
        test = no_signal_judge(rng, N_TEST)
        result = calibrate_threshold(*calibration, ALPHA, DELTA)
        if result.threshold is None:
            coverages.append(0.0)
            continue
        risk, coverage = realised_risk(*test, result.threshold)
        coverages.append(coverage)
        violations += risk > ALPHA
    assert np.mean(coverages) < 0.02
    assert violations / SPLITS <= TOLERANCE


def cascade_coverage_and_risk(rng, skills):
    calibration = [calibrated_judge(rng, N_CAL, skill) for skill in skills]
    test = [calibrated_judge(rng, N_TEST, skill) for skill in skills]
    thresholds = calibrate_cascade([c for c, _ in calibration], [a for _, a in calibration], ALPHA, DELTA)
    decided = np.zeros(N_TEST, dtype=bool)
    agreed = np.zeros(N_TEST, dtype=bool)
    for (confidence, agrees), threshold in zip(test, thresholds):
        takes = threshold.accepts(confidence) & ~decided
        agreed |= takes & agrees
        decided |= takes
    risk = float((decided & ~agreed).sum() / decided.sum()) if decided.any() else 0.0
    return float(decided.mean()), risk


def test_a_better_judge_joining_the_cascade_raises_coverage_and_keeps_the_guarantee():
    rng = np.random.default_rng(11)
    alone, cascade, violations = [], [], 0
    for _ in range(60):
        coverage, _ = cascade_coverage_and_risk(rng, [0.6])
        alone.append(coverage)
        coverage, risk = cascade_coverage_and_risk(rng, [0.6, 1.0])
        cascade.append(coverage)
        violations += risk > ALPHA
    assert np.mean(cascade) > np.mean(alone) + 0.2
    assert violations / 60 <= binom.ppf(0.999, 60, DELTA) / 60


def test_fixed_sequence_stops_at_the_first_failure():
    # Strict thresholds are clean, then a block of errors: the scan must stop before it, even though
    # laxer thresholds (diluted by many agreeing items further down) would pass again.
    confidence = np.array([0.99] * 40 + [0.9] * 10 + [0.8] * 200)
    agrees = np.array([True] * 40 + [False] * 10 + [True] * 200)
    result = calibrate_threshold(confidence, agrees, 0.1, 0.1)
    assert result.threshold == pytest.approx(0.99)
    assert result.n_accepted == 40 and result.errors == 0
    assert result.risk_bound is not None and result.risk_bound < 0.1


def test_too_few_items_certify_nothing():
    assert min_testable_size(0.2, 0.1) == 11  # 0.8^11 ≈ 0.086 ≤ 0.1 < 0.8^10
    result = calibrate_threshold([1.0] * 10, [True] * 10, 0.2, 0.1)
    assert result.threshold is None and result.coverage == 0.0
    assert calibrate_threshold([1.0] * 11, [True] * 11, 0.2, 0.1).threshold == 1.0


@pytest.mark.parametrize("alpha, delta", [(0.0, 0.1), (1.0, 0.1), (0.2, 0.0), (0.2, 1.5)])
def test_levels_outside_zero_one_are_rejected(alpha, delta):
    with pytest.raises(ValueError, match="must lie in"):
        calibrate_threshold([0.9], [True], alpha, delta)


def test_nan_confidence_is_an_error_not_a_silent_pass():
    with pytest.raises(ValueError, match="NaN"):
        calibrate_threshold([0.9, float("nan")], [True, True], 0.2, 0.1)


def test_cascade_escalates_with_reasons():
    strict = Threshold(0.9, 0.2, 0.05, 100, 20, 0, 0.01, 0.1, 3)
    never = Threshold(None, 0.2, 0.05, 100, 0, 0, None, None, 1)
    assert apply_cascade([0.95, 0.5], [strict, strict], ["small", "big"]).decided_by == 0
    decision = apply_cascade([0.5, 0.95], [strict, strict], ["small", "big"])
    assert decision.decided_by == 1 and "small: confidence 0.500 < threshold 0.900" in decision.escalations[0]
    decision = apply_cascade([1.0, None], [never, strict], ["small", "big"])
    assert decision.decided_by is None
    assert "not certified" in decision.escalations[0] and "big: no verdict" in decision.escalations[1]


def test_calibration_quality_separates_informative_from_inverted_confidence():
    rng = np.random.default_rng(5)
    confidence, agrees = calibrated_judge(rng, 5000)
    good = calibration_quality(confidence, agrees)
    assert good["ece"] < 0.03 and good["auroc"] > 0.6
    inverted = calibration_quality(1.5 - confidence, agrees)
    assert inverted["auroc"] < 0.4 and inverted["ece"] > good["ece"]
    assert calibration_quality([], [])["auroc"] is None
    assert calibration_quality([0.9, 0.8], [True, True])["auroc"] is None  # one class: undefined
