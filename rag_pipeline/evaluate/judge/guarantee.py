"""Selective judging with a guarantee of agreement (Jung, Brahman & Choi, "Trust or Escalate", ICLR 2025).

A judge may abstain. Calibrated on a labelled set, it accepts an item only when its confidence is
at least a threshold λ chosen so that, with probability at least 1 − δ over the calibration draw,
its disagreement with the labels on the items it accepts is at most α.

- :func:`calibrate_threshold`: fixed-sequence testing. Thresholds are scanned from strict to lax;
  at each, H0 "risk(λ) > α" is tested with the exact binomial tail P(Bin(n, α) ≤ errors); the scan
  stops at the first threshold whose H0 cannot be rejected at level δ. Testing in a fixed order
  needs no multiplicity correction, so the guarantee holds in finite samples. Thresholds accepting
  fewer items than any test could certify (``min_testable_size``) are skipped. When even the
  strictest threshold fails, the judge abstains on everything (coverage 0), never a false guarantee.
- :func:`calibrate_cascade`: judges ordered cheap → strong, each calibrated on the calibration
  items the ones before it would escalate, at level δ / (number of judges) (a union bound), so
  every judge's accepted risk is ≤ α together with probability ≥ 1 − δ, and so is the cascade's
  (a mixture of per-judge risks ≤ α).
- :func:`apply_cascade`: which judge decides each item, or that every judge abstained.
- :func:`calibration_quality`: expected calibration error and AUROC of confidence vs agreement.

Pure numpy/scipy: the judge, the labels and Dagster live elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Threshold:
    """One judge's calibrated threshold and the evidence for it.

    ``threshold`` is None when no threshold passed the test: the judge then accepts nothing.
    ``risk_bound`` is the exact (Clopper-Pearson) upper (1 − δ) bound on the disagreement of the
    accepted calibration items; ``p_value`` the binomial test's at the chosen threshold.
    """

    threshold: float | None
    alpha: float
    delta: float
    n_calibration: int
    n_accepted: int
    errors: int
    p_value: float | None
    risk_bound: float | None
    thresholds_tested: int

    @property
    def coverage(self) -> float:
        return self.n_accepted / self.n_calibration if self.n_calibration else 0.0

    def accepts(self, confidence: np.ndarray) -> np.ndarray:
        confidence = np.asarray(confidence, dtype=float)
        if self.threshold is None:
            return np.zeros(confidence.shape, dtype=bool)
        return confidence >= self.threshold

    def as_row(self) -> dict:
        return {**asdict(self), "coverage": self.coverage}


def binomial_p_value(errors: int, n: int, alpha: float) -> float:
    """P(Bin(n, α) ≤ errors): small when ``errors`` disagreements in ``n`` are unlikely at risk α."""
    from scipy.stats import binom

    return float(binom.cdf(errors, n, alpha))


def risk_upper_bound(errors: int, n: int, delta: float) -> float:
    """Exact one-sided (1 − δ) Clopper-Pearson upper bound on a disagreement rate."""
    from scipy.stats import beta

    if n == 0:
        return 1.0
    if errors >= n:
        return 1.0
    return float(beta.ppf(1.0 - delta, errors + 1, n - errors))


def default_candidates(confidence: np.ndarray, steps: int = 20) -> np.ndarray:
    """Thresholds to test: the distinct confidences when there are at most ``steps`` (K annotators
    give K + 1 levels), else ``steps`` confidence quantiles. Every test is a chance to stop early,
    so a coarse grid keeps coverage from hanging on the noise of a few top items; the grid depends
    on the confidences only, never on the labels, which keeps the sequence fixed.
    """
    distinct = np.unique(confidence)
    if distinct.size <= steps:
        return distinct
    return np.unique(np.quantile(confidence, np.linspace(0.0, 1.0, steps + 1)[:-1], method="lower"))


def min_testable_size(alpha: float, delta: float) -> int:
    """The fewest accepted items at which zero errors rejects "risk > α" at level δ: (1 − α)^n ≤ δ."""
    return max(1, math.ceil(math.log(delta) / math.log(1.0 - alpha) - 1e-12))


def _check_levels(alpha: float, delta: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha (the tolerated disagreement) must lie in (0, 1), got {alpha}")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta (the allowed failure probability) must lie in (0, 1), got {delta}")


def calibrate_threshold(confidence: Sequence[float], agrees: Sequence[bool], alpha: float, delta: float,
                        candidates: Sequence[float] | None = None) -> Threshold:
    """The laxest threshold λ that fixed-sequence testing certifies: risk(λ) ≤ α with prob. ≥ 1 − δ.

    ``confidence`` and ``agrees`` (the judge's verdict equals the label) are per calibration item.
    ``candidates`` default to :func:`default_candidates`; they are tested strictest first.
    """
    _check_levels(alpha, delta)
    confidence = np.asarray(confidence, dtype=float)
    agrees = np.asarray(agrees, dtype=bool)
    if confidence.shape != agrees.shape:
        raise ValueError(f"{confidence.size} confidences but {agrees.size} agreement flags")
    if np.isnan(confidence).any():
        raise ValueError("confidence contains NaN: an unreadable verdict must carry confidence 0")
    n_total = int(confidence.size)
    grid = (default_candidates(confidence) if candidates is None else np.unique(np.asarray(candidates, dtype=float)))[::-1]
    chosen: tuple[float, int, int, float] | None = None
    tested = 0
    smallest_testable = min_testable_size(alpha, delta)
    for threshold in grid:
        accepted = confidence >= threshold
        n = int(accepted.sum())
        errors = int((~agrees[accepted]).sum())
        if n < smallest_testable:
            # Even zero errors could not reject H0 here. Skipping depends on the confidences alone,
            # never on the labels, so the sequence stays fixed given the confidences.
            continue
        tested += 1
        p_value = binomial_p_value(errors, n, alpha)
        if p_value > delta:
            break  # the first failure ends the fixed sequence
        chosen = (float(threshold), n, errors, p_value)
    if chosen is None:
        return Threshold(None, alpha, delta, n_total, 0, 0, None, None, tested)
    threshold, n, errors, p_value = chosen
    return Threshold(threshold, alpha, delta, n_total, n, errors, p_value, risk_upper_bound(errors, n, delta), tested)


def calibrate_cascade(confidences: Sequence[Sequence[float]], agreements: Sequence[Sequence[bool]],
                      alpha: float, delta: float) -> list[Threshold]:
    """One threshold per judge (cheap → strong), each on the items the judges before it escalate.

    ``confidences[j][i]`` / ``agreements[j][i]``: judge j on calibration item i (all judges judged
    the same items, in the same order). Each judge is tested at δ / m.
    """
    _check_levels(alpha, delta)
    if not confidences:
        raise ValueError("a cascade needs at least one judge")
    level = delta / len(confidences)
    remaining = np.ones(len(confidences[0]), dtype=bool)
    thresholds = []
    for confidence, agrees in zip(confidences, agreements):
        confidence = np.asarray(confidence, dtype=float)
        agrees = np.asarray(agrees, dtype=bool)
        threshold = calibrate_threshold(confidence[remaining], agrees[remaining], alpha, level)
        thresholds.append(threshold)
        remaining &= ~threshold.accepts(confidence)
    return thresholds


@dataclass(frozen=True)
class CascadeDecision:
    """Who decided an item: the judge's index in the cascade, or None when every judge abstained."""

    decided_by: int | None
    escalations: tuple[str, ...]  # why each earlier judge passed the item on


def apply_cascade(confidences: Sequence[float | None], thresholds: Sequence[Threshold],
                  names: Sequence[str]) -> CascadeDecision:
    """Walk one item through the cascade: the first judge confident enough decides it.

    ``confidences[j]`` is None when judge j was not asked (or could not answer): it escalates.
    """
    escalations = []
    for index, (confidence, threshold, name) in enumerate(zip(confidences, thresholds, names)):
        if threshold.threshold is None:
            escalations.append(f"{name}: not certified at alpha={threshold.alpha:g} (abstains on everything)")
        elif confidence is None:
            escalations.append(f"{name}: no verdict")
        elif confidence >= threshold.threshold:
            return CascadeDecision(index, tuple(escalations))
        else:
            escalations.append(f"{name}: confidence {confidence:.3f} < threshold {threshold.threshold:.3f}")
    return CascadeDecision(None, tuple(escalations))


def calibration_quality(confidence: Sequence[float], agrees: Sequence[bool], bins: int = 10) -> dict:
    """How well confidence predicts agreement: expected calibration error (equal-width bins over
    [0, 1], weighted by bin size) and AUROC (P(a random agreeing item is more confident than a
    random disagreeing one), ties half). None where undefined (no items, or one class only)."""
    confidence = np.asarray(confidence, dtype=float)
    agrees = np.asarray(agrees, dtype=bool)
    result: dict = {"n": int(confidence.size), "ece": None, "auroc": None,
                    "agreement": float(agrees.mean()) if agrees.size else None}
    if confidence.size == 0:
        return result
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(agrees[members].mean() - confidence[members].mean())
    result["ece"] = float(ece)
    positives, negatives = confidence[agrees], confidence[~agrees]
    if positives.size and negatives.size:
        from scipy.stats import rankdata

        ranks = rankdata(np.concatenate([positives, negatives]))
        auc = (ranks[: positives.size].sum() - positives.size * (positives.size + 1) / 2) / (positives.size * negatives.size)
        result["auroc"] = float(auc)
    return result
