"""Judging a generations frame in the chosen modes, and the per-item scores of all modes."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from tqdm.auto import tqdm

from rag_pipeline.evaluate.judge.core import ITEM_SCORE_COLUMNS, JUDGE_MODES, Judge, verdict_frame


def judge_items(generations: pd.DataFrame, references: dict[str, str], contexts: dict[str, str]) -> list[dict]:
    """Judgeable items: (task, item) groups of successful, non-empty outputs that have a reference."""
    usable = generations[(generations["error"].fillna("") == "") & (generations["output"].fillna("").str.strip() != "")]
    items = []
    for (task, item_id), group in usable.groupby(["task", "item_id"], sort=True):
        reference = references.get(str(item_id))
        if not reference:
            continue  # nothing to judge against; metrics record the missing reference
        group = group.drop_duplicates("model", keep="last")
        items.append({
            "task": task, "item_id": str(item_id), "paper_id": str(group["paper_id"].iloc[0]),
            "reference": reference, "context": contexts.get(str(item_id), ""),
            "outputs": dict(zip(group["model"], group["output"])),
        })
    return items


def run_judge(
    generations: pd.DataFrame,
    references: dict[str, str],
    judge: Judge,
    modes: Iterable[str] = ("listwise",),
    contexts: dict[str, str] | None = None,
    n_permutations: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Judge every item's outputs across models; one verdict row per item x model x mode x permutation.

    ``generations``: rows of the generations schema (several models, same items). ``references``:
    reference text by item id. ``contexts``: what the judge sees as the task, by item id (the
    question for an answer, the paper title for a summary). Failed or empty generations and
    items without a reference are not judged. ``n_permutations`` limits the listwise cyclic
    shifts (default: one per model, which cancels position bias).
    """
    modes = list(modes)
    unknown = [m for m in modes if m not in JUDGE_MODES]
    if unknown:
        raise ValueError(f"unknown judge mode(s) {unknown}; choose from {list(JUDGE_MODES)}")
    missing = [c for c in ("task", "item_id", "paper_id", "model", "output", "error") if c not in generations.columns]
    if missing:
        raise ValueError(f"generations frame lacks columns {missing}")
    items = judge_items(generations, references, contexts or {})
    rows: list[dict] = []
    for item in tqdm(items, desc=f"judge {judge.name}", disable=not progress, unit="item"):
        models = sorted(item["outputs"])
        for mode in (JUDGE_MODES[name] for name in modes):
            if mode.asked_by_run_judge and len(models) >= mode.min_models:
                rows.extend(mode.judge_item(judge, item, models, n_permutations))
    return verdict_frame(rows)


def judge_item_scores(verdicts: pd.DataFrame) -> pd.DataFrame:
    """All judge-derived per-item scores, one metric per mode: ``judge_rank``, ``judge_win_rate``, ``judge_grade``."""
    if verdicts is None or verdicts.empty:
        return pd.DataFrame(columns=ITEM_SCORE_COLUMNS)
    parts = [mode.item_scores(verdicts) for mode in JUDGE_MODES.values()]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ITEM_SCORE_COLUMNS)
