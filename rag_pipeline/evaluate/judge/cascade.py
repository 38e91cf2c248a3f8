"""The judge with a guarantee: calibrating a cascade of judges on labels, then judging with it.

``calibrate_judges`` splits the labelled pairs by item into a calibration part and a held-out part,
asks each judge (cheap → strong) about the calibration pairs the judges before it did not accept,
certifies its threshold (``guarantee.calibrate_threshold`` at δ / m) and measures on the held-out
part what the cascade really does: coverage and agreement per judge and overall.

``judge_cascade`` applies the calibrated cascade to every pair of models' outputs per item. One
verdict row per model of a pair (mode ``cascade``): ``win`` 1/0 where a judge decided, else an
abstention whose reason lists why each judge passed; ``confidence``, ``decided_by``, ``escalated``
and ``escalation`` say who decided and how sure it was. The metric ``judge_guaranteed_win_rate``
is the mean over the covered pairs only.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rag_pipeline.contracts import CALIBRATION_COLUMNS, LABEL_VERDICT_COLUMNS
from rag_pipeline.evaluate.direction import Direction
from rag_pipeline.evaluate.judge.annotators import A, AnnotatorSettings, Pair, PairVerdict, annotate
from rag_pipeline.evaluate.judge.core import Judge, JudgeMode, register_mode, verdict_frame, verdict_row
from rag_pipeline.evaluate.judge.guarantee import (
    Threshold,
    apply_cascade,
    calibrate_threshold,
    calibration_quality,
    min_testable_size,
)
from rag_pipeline.hashing import content_hash

CASCADE_ROW = "cascade"  # the calibration table's row for the cascade as a whole


@register_mode
class CascadeMode(JudgeMode):
    """Pairwise verdicts of the calibrated cascade; asked through ``judge_cascade``, not ``run_judge``."""

    name = "cascade"
    verdict_column = "win"
    score_metric = "judge_guaranteed_win_rate"
    direction = Direction.HIGHER
    min_models = 2
    asked_by_run_judge = False


@dataclass(frozen=True)
class GuaranteeSettings:
    alpha: float
    delta: float
    confidence: str  # "annotators" or "logprob"
    annotators: AnnotatorSettings
    held_out_share: float = 0.5
    max_pairs: int | None = None


def cascade_name(judges: list[Judge]) -> str:
    return "cascade(" + " → ".join(judge.name for judge in judges) + ")"


def label_pairs(labels: pd.DataFrame) -> list[Pair]:
    """Label rows as pairs (the label id is the key)."""
    return [Pair(row["label_id"], row["task"], row["item_id"], row["context"], row["reference"], row["output_a"],
                 row["output_b"], row["preferred"]) for row in labels.to_dict("records")]


def split_by_item(pairs: list[Pair], held_out_share: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(calibration, held out): whole items go to one side, so no item informs its own evaluation."""
    items = sorted({pair.item_id for pair in pairs})
    random.Random(f"split|{seed}").shuffle(items)
    n_held_out = round(len(items) * held_out_share)
    held_out = set(items[:n_held_out])
    return [p for p in pairs if p.item_id not in held_out], [p for p in pairs if p.item_id in held_out]


def calibration_split(labels: pd.DataFrame, settings: GuaranteeSettings) -> tuple[list[Pair], list[Pair]]:
    """(calibration, held out) pairs of the labels preferring A or B: at most ``max_pairs`` of them
    (sampled with the seed), split by item. The calibration part is also the few-shot pool."""
    usable = labels[labels["preferred"].isin(["A", "B"])] if not labels.empty else labels
    pairs = label_pairs(usable) if not usable.empty else []
    if settings.max_pairs is not None and len(pairs) > settings.max_pairs:
        random.Random(f"pairs|{settings.annotators.seed}").shuffle(pairs)
        pairs = sorted(pairs[: settings.max_pairs], key=lambda p: p.key)
    return split_by_item(pairs, settings.held_out_share, settings.annotators.seed)


def _confidence(verdict: PairVerdict, method: str) -> float:
    if method == "logprob":
        return verdict.logprob_confidence if verdict.logprob_confidence is not None else 0.0
    return verdict.confidence


def _agrees(verdict: PairVerdict, pair: Pair) -> bool:
    return verdict.verdict is not None and (verdict.verdict == A) == (pair.preferred == "A")


def calibrate_judges(judges: list[Judge], labels: pd.DataFrame, settings: GuaranteeSettings,
                     progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(calibration table: one row per judge and one for the cascade, label verdicts: every labelled
    pair each judge was asked about). Ties in the labels are left out (a forced choice cannot agree
    with a tie); with no usable labels every threshold is None and the cascade decides nothing."""
    usable = labels[labels["preferred"].isin(["A", "B"])] if not labels.empty else labels
    calibration, held_out = calibration_split(labels, settings)
    pairs = calibration + held_out
    kinds = ", ".join(sorted(set(usable["annotator_kind"]))) if not usable.empty else ""
    level = settings.delta / max(len(judges), 1)
    rows, verdict_rows = [], []
    remaining_cal, remaining_held = list(calibration), list(held_out)
    decided_held: list[tuple[Pair, bool]] = []
    for position, judge in enumerate(judges, start=1):
        calls, started = judge.calls, time.perf_counter()
        verdicts_cal = annotate(judge, remaining_cal, calibration, settings.annotators, progress) if remaining_cal else []
        confidence = np.array([_confidence(v, settings.confidence) for v in verdicts_cal], dtype=float)
        agrees = np.array([_agrees(v, p) for v, p in zip(verdicts_cal, remaining_cal)], dtype=bool)
        threshold = calibrate_threshold(confidence, agrees, settings.alpha, level)
        accepted_cal = threshold.accepts(confidence)
        # An uncertified judge accepts nothing: asking it about the held-out pairs would change nothing.
        asked_held = remaining_held if threshold.threshold is not None else []
        verdicts_held = annotate(judge, asked_held, calibration, settings.annotators, progress) if asked_held else []
        confidence_held = np.array([_confidence(v, settings.confidence) for v in verdicts_held], dtype=float)
        accepted_held = threshold.accepts(confidence_held)
        agrees_held = [_agrees(v, p) for v, p in zip(verdicts_held, asked_held)]
        mine = [(p, a) for p, a, ok in zip(asked_held, agrees_held, accepted_held) if ok]
        decided_held += mine
        quality = calibration_quality(confidence, agrees)
        logprobs = [v.logprob_confidence for v in verdicts_cal]
        quality_logprob = (calibration_quality([lp if lp is not None else 0.0 for lp in logprobs], agrees)
                           if logprobs and any(lp is not None for lp in logprobs) else {"ece": None, "auroc": None})
        rows.append({
            "judge": judge.name, "position": position, "confidence_method": settings.confidence,
            "threshold": threshold.threshold, "alpha": settings.alpha, "delta": settings.delta, "delta_judge": level,
            "n_calibration": threshold.n_calibration, "n_accepted": threshold.n_accepted, "errors": threshold.errors,
            "p_value": threshold.p_value, "risk_bound": threshold.risk_bound,
            "calibration_coverage": threshold.coverage, "heldout_n": len(held_out), "heldout_decided": len(mine),
            "heldout_coverage": len(mine) / len(held_out) if held_out else None,
            "heldout_agreement": float(np.mean([a for _, a in mine])) if mine else None,
            "ece": quality["ece"], "auroc": quality["auroc"], "ece_logprob": quality_logprob["ece"],
            "auroc_logprob": quality_logprob["auroc"], "calls": judge.calls - calls,
            "seconds": round(time.perf_counter() - started, 3), "annotator_kind": kinds,
            "note": _note(threshold, len(pairs), len(labels) - len(usable) if not labels.empty else 0,
                          quality, quality_logprob, bool(mine)),
        })
        for split, group, verdicts, accepted in (("calibration", remaining_cal, verdicts_cal, accepted_cal),
                                                 ("held_out", asked_held, verdicts_held, accepted_held)):
            for pair, verdict, ok in zip(group, verdicts, accepted):
                verdict_rows.append({
                    "label_id": pair.key, "item_id": pair.item_id, "split": split, "judge": judge.name,
                    "votes": ",".join(verdict.votes), "verdict": {A: "A", "b": "B"}.get(verdict.verdict or "", ""),
                    "confidence": _confidence(verdict, settings.confidence),
                    "logprob_confidence": verdict.logprob_confidence, "preferred": pair.preferred,
                    "agrees": _agrees(verdict, pair), "accepted": bool(ok),
                    "note": "" if verdict.logprob_confidence is not None else "no token log-probabilities",
                })
        remaining_cal = [p for p, ok in zip(remaining_cal, accepted_cal) if not ok]
        decided = {p.key for p, ok in zip(asked_held, accepted_held) if ok}
        remaining_held = [p for p in remaining_held if p.key not in decided]
    rows.append({
        "judge": CASCADE_ROW, "position": len(judges) + 1, "confidence_method": settings.confidence,
        "threshold": None, "alpha": settings.alpha, "delta": settings.delta, "delta_judge": level,
        "n_calibration": len(calibration), "n_accepted": sum(r["n_accepted"] for r in rows),
        "errors": sum(r["errors"] for r in rows), "p_value": None, "risk_bound": None,
        "calibration_coverage": (sum(r["n_accepted"] for r in rows) / len(calibration)) if calibration else 0.0,
        "heldout_n": len(held_out), "heldout_decided": len(decided_held),
        "heldout_coverage": len(decided_held) / len(held_out) if held_out else None,
        "heldout_agreement": float(np.mean([a for _, a in decided_held])) if decided_held else None,
        "ece": None, "auroc": None, "ece_logprob": None, "auroc_logprob": None,
        "calls": sum(r["calls"] for r in rows), "seconds": round(sum(r["seconds"] for r in rows), 3),
        "annotator_kind": kinds,
        "note": ("the whole cascade: each judge certified at delta/m, so all hold together" if judges
                 else "no cascade configured (judge.modes has no 'cascade'): nothing calibrated"),
    })
    return calibration_frame(rows), label_verdict_frame(verdict_rows)


def _note(threshold: Threshold, n_pairs: int, ties: int, quality: dict, quality_logprob: dict,
          decided_held_out: bool) -> str:
    """Why any cell of the judge's row is empty, and what was left out."""
    parts = []
    needed = min_testable_size(threshold.alpha, threshold.delta)
    if n_pairs == 0:
        parts.append("no usable labels: the judge decides nothing")
    elif threshold.threshold is None and threshold.n_calibration < needed:
        parts.append(f"no threshold certified: {threshold.n_calibration} calibration pairs reached this judge, "
                     f"fewer than the {needed} that even an error-free judge needs at alpha={threshold.alpha:g}, "
                     f"delta={threshold.delta:g}; it abstains on every item (escalates all)")
    elif threshold.threshold is None:
        parts.append("no threshold certified: this judge abstains on every item (escalates all)")
    if not decided_held_out:
        parts.append("decided no held-out pair: no held-out agreement")
    if n_pairs and quality["auroc"] is None:
        parts.append("AUROC undefined: the judge agreed on every pair it saw, or on none")
    if quality_logprob["ece"] is None:
        parts.append("no token log-probabilities from this backend: no logprob calibration")
    if ties:
        parts.append(f"{ties} tie labels left out")
    return "; ".join(parts)


def calibration_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS))
    for column in ("threshold", "p_value", "risk_bound", "heldout_coverage", "heldout_agreement", "ece", "auroc",
                   "ece_logprob", "auroc_logprob", "calibration_coverage", "alpha", "delta", "delta_judge", "seconds"):
        frame[column] = pd.array([None if pd.isna(v) else float(v) for v in frame[column]], dtype="Float64")
    for column in ("position", "n_calibration", "n_accepted", "errors", "heldout_n", "heldout_decided", "calls"):
        frame[column] = frame[column].astype("int64")
    for column in ("judge", "confidence_method", "annotator_kind", "note"):
        frame[column] = frame[column].fillna("").astype(str)
    return frame


def label_verdict_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(LABEL_VERDICT_COLUMNS))
    for column in ("confidence", "logprob_confidence"):
        frame[column] = pd.array([None if pd.isna(v) else float(v) for v in frame[column]], dtype="Float64")
    for column in ("agrees", "accepted"):
        frame[column] = frame[column].astype(bool)
    return frame


def thresholds_from(calibration: pd.DataFrame, judges: list[Judge]) -> list[Threshold]:
    """The stored thresholds, in cascade order; a judge missing from the table decides nothing."""
    by_judge = {row["judge"]: row for row in calibration.to_dict("records")} if not calibration.empty else {}
    thresholds = []
    for judge in judges:
        row = by_judge.get(judge.name)
        if row is None:
            thresholds.append(Threshold(None, 0.5, 0.5, 0, 0, 0, None, None, 0))
            continue
        value = row["threshold"]
        thresholds.append(Threshold(None if pd.isna(value) else float(value), float(row["alpha"]),
                                    float(row["delta_judge"]), int(row["n_calibration"]), int(row["n_accepted"]),
                                    int(row["errors"]), None, None, 0))
    return thresholds


def judge_cascade(judges: list[Judge], thresholds: list[Threshold], items: list[dict], pool: list[Pair],
                  settings: GuaranteeSettings, progress: bool = False) -> pd.DataFrame:
    """Verdict rows of the cascade for every pair of models per item (``items`` as ``run_judge`` builds
    them: task, item_id, paper_id, context, reference, outputs by model). Judge j is asked only
    about the pairs the judges before it passed on; each judge's questions go in one batch."""
    pairs, meta = [], []
    for item in items:
        for model_a, model_b in itertools.combinations(sorted(item["outputs"]), 2):
            output_a, output_b = item["outputs"][model_a], item["outputs"][model_b]
            key = content_hash({"task": item["task"], "item_id": item["item_id"], "a": [model_a, output_a],
                                "b": [model_b, output_b], "reference": item["reference"]})
            pairs.append(Pair(key, item["task"], item["item_id"], item["context"], item["reference"], output_a, output_b))
            meta.append((item, model_a, model_b))
    confidences: list[list[float | None]] = [[None] * len(judges) for _ in pairs]
    verdicts: list[list[PairVerdict | None]] = [[None] * len(judges) for _ in pairs]
    open_pairs = list(range(len(pairs)))
    for j, (judge, threshold) in enumerate(zip(judges, thresholds)):
        if not open_pairs or threshold.threshold is None:
            continue  # a judge that certified nothing is not asked: it would escalate every pair
        asked = annotate(judge, [pairs[i] for i in open_pairs], pool, settings.annotators, progress)
        for i, verdict in zip(open_pairs, asked):
            verdicts[i][j] = verdict
            confidences[i][j] = _confidence(verdict, settings.confidence) if verdict.verdict else None
        open_pairs = [i for i in open_pairs if confidences[i][j] is None or confidences[i][j] < threshold.threshold]
    cascade = Judge(complete=_never, name=cascade_name(judges),
                    identity={"cascade": [j.identity_key() for j in judges],
                              "thresholds": [t.threshold for t in thresholds], "settings": repr(settings)})
    names = [judge.name for judge in judges]
    rows = []
    for i, pair in enumerate(pairs):
        item, model_a, model_b = meta[i]
        decision = apply_cascade(confidences[i], thresholds, names)
        messages = [{"role": "user", "content": f"pair {pair.key}"}]
        escalation = "; ".join(decision.escalations)
        if decision.decided_by is None:
            reason = "every judge abstained: " + escalation if escalation else "every judge abstained"
            verdict, confidence, decided_by, raw = None, None, "", ""
        else:
            reason = ""
            chosen = verdicts[i][decision.decided_by]
            verdict, confidence = chosen.verdict, confidences[i][decision.decided_by]
            decided_by, raw = names[decision.decided_by], "votes " + ",".join(chosen.votes)
        for position, (model, opponent, side) in enumerate(((model_a, model_b, A), (model_b, model_a, "b")), start=1):
            win = None if verdict is None else float(verdict == side)
            rows.append(verdict_row(cascade, item, model, CascadeMode.name, 0, position, "AB"[position - 1], messages,
                                    opponent=opponent, win=win, reason=reason, raw=raw, confidence=confidence,
                                    decided_by=decided_by, escalated=bool(decision.escalations), escalation=escalation))
    return verdict_frame(rows)


def _never(messages):  # the cascade's own Judge record is never asked: its members are
    raise RuntimeError("the cascade is not a chat model")
