"""The leaderboard: every table the report and the Dagster ``leaderboard`` asset show.

``build_leaderboard(metrics, generations, judgments)`` returns a dict of DataFrames for one
collection of papers; ``build_leaderboard_by_collection`` runs it once per collection (papers.yaml's
``collection``: models answer different items in each, so nothing is pooled across collections)
and stacks the tables with a first ``collection`` column:

- ``summary``: task x metric x model mean with a paired-bootstrap 95% CI, n, failures and a
  plain-language ``noise_note`` (is the model distinguishable from the best one?).
- ``ranks``: mean per-item rank (``rank(method="min")``, 1 = best) per task x metric.
- ``pairwise``: paired tests between every pair of models (difference, CI, p, Holm p).
- ``bradley_terry``: judge-based Bradley-Terry strengths with bootstrap intervals.
- ``notebook_table``: the reference notebook's final table from our data (rows = models): mean
  judge rank, mean cosine rank and mean inference time per task; ``notebook_cells`` has the
  same numbers in long form.
- ``per_paper``: paper x model mean of a headline metric.
- ``noise``: per task x metric, how many pairwise differences survive Holm.
- ``failures``: failed metric values per task x model x metric with their reasons.
- ``signatures`` and ``generation_signatures``: what reproduces every score and generation.

No table holds NaN: a value that cannot be computed is an absent row, or (``notebook_table``
only, a wide table) a null cell whose reason is in the row's ``note``. Trivial baselines
(lead-3, top-chunk) are models like any other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from rag_pipeline.evaluate import statistics
from rag_pipeline.evaluate.judge import (
    ITEM_SCORE_COLUMNS,
    JUDGE_MODES,
    judge_item_scores,
    judge_metric_direction,
    pairwise_outcomes,
)
from rag_pipeline.evaluate.metrics import direction_of

TASK_NAMES_RU = {"summary": "суммаризация", "answer": "генерация ответов"}
HEADLINE_PREFERENCE = ("judge_rank", "cosine", "rougeL_fmeasure", "bleu", "chrf")
UNREGISTERED = "unregistered"  # the collection of a paper missing from the registry


def metric_direction(metric: str) -> int:
    """+1 higher is better, -1 lower is better, 0 descriptive (judge metrics may carry a [judge] suffix).

    From the judge mode that yields the metric, else the registered text metric (0 for a name neither knows).
    """
    base = metric.split("[", 1)[0]
    judged = judge_metric_direction(base)
    return int(judged if judged is not None else direction_of(base))


def _plural(n: int, one: str, few: str, many: str) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def _items_phrase(task: str, n: int) -> str:
    if task == "summary":
        return f"{n} {_plural(n, 'статья', 'статьи', 'статей')}"
    return f"{n} {_plural(n, 'вопрос', 'вопроса', 'вопросов')}"


def notebook_column_name(key: str, task: str, n_items: int, judge_display: str) -> str:
    """A column name of the notebook's final table, e.g. 'Средний ранг на основе оценки Gpt4o
    (суммаризация) (10 статей)'; the judge's name and the item count are ours."""
    task_ru = TASK_NAMES_RU[task]
    items = _items_phrase(task, n_items)
    if key == "judge":
        return f"Средний ранг на основе оценки {judge_display} ({task_ru}) ({items})"
    if key == "cosine":
        return f"Средний ранг на основе косинусной близости ({task_ru}) ({items})"
    return f"Среднее время инференса ({task_ru}) ({items})"


# --------------------------------------------------------------------------------- item scores


def item_scores(metrics: pd.DataFrame, judgments: pd.DataFrame | None = None) -> pd.DataFrame:
    """Successful per-item values, metrics and judge scores together: ``task, paper_id, item_id,
    model, metric, value``. A judge metric gets a ``[judge name]`` suffix when several judges yield it."""
    columns = ["task", "paper_id", "item_id", "model", "metric", "value"]
    parts = []
    if metrics is not None and not metrics.empty:
        ok = metrics[metrics["value"].notna() & (metrics["error"].fillna("") == "")]
        parts.append(ok.assign(value=ok["value"].astype(float))[columns])
    judged = judge_item_scores(judgments) if judgments is not None else pd.DataFrame(columns=ITEM_SCORE_COLUMNS)
    if not judged.empty:
        several = judged.groupby("metric")["judge"].transform("nunique") > 1
        judged = judged.assign(metric=judged["metric"].where(~several, judged["metric"] + "[" + judged["judge"] + "]"))
        parts.append(judged[columns])
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "value" else object) for c in columns})
    frame = pd.concat(parts, ignore_index=True)
    finite = np.isfinite(frame["value"].astype(float))
    return frame[finite].reset_index(drop=True)


# ------------------------------------------------------------------------------------- tables


def _summary(scores: pd.DataFrame, failures: pd.DataFrame, n_boot: int, n_permutations: int, seed: int,
             alpha: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    summary_rows, rank_rows, pair_frames, noise_rows = [], [], [], []
    failed = {(r.task, r.model, r.metric): int(r.n_failed) for r in failures.itertuples()} if not failures.empty else {}
    for (task, metric), group in scores.groupby(["task", "metric"], sort=True):
        direction = metric_direction(metric)
        means = statistics.bootstrap_means(group, n_boot=n_boot, seed=seed)
        pairs = pd.DataFrame()
        if direction != 0:
            pairs = statistics.paired_tests(group, direction, n_boot=n_boot, n_permutations=n_permutations,
                                            seed=seed, alpha=alpha)
            if not pairs.empty:
                pair_frames.append(pairs.assign(task=task, metric=metric, higher_is_better=direction > 0))
                noise_rows.append({"task": task, "metric": metric, "n_items": int(pairs["n_items"].max()),
                                   "n_pairs": len(pairs), "n_significant": int(pairs["significant"].sum()),
                                   "note": statistics.noise_summary(pairs)})
            ranked = statistics.mean_ranks(group, direction)
            rank_rows.extend({"task": task, "metric": metric, "model": r.model, "mean_rank": float(r.mean_rank),
                              "n_items": int(r.n_items), "higher_is_better": direction > 0}
                             for r in ranked.itertuples())
        best = None
        if direction != 0 and not means.empty:
            best = means.sort_values("mean", ascending=direction < 0).iloc[0]["model"]
        for row in means.itertuples():
            within, note = _noise_note(row.model, best, pairs, direction)
            summary_rows.append({
                "task": task, "metric": metric, "model": row.model, "n": int(row.n),
                "failures": failed.get((task, row.model, metric), 0), "mean": row.mean, "std": row.std,
                "ci_low": row.ci_low, "ci_high": row.ci_high,
                "direction": {1: "higher is better", -1: "lower is better", 0: "descriptive"}[direction],
                "within_noise_of_best": within, "noise_note": note,
            })
    pairwise = (pd.concat(pair_frames, ignore_index=True) if pair_frames else pd.DataFrame(
        columns=["model_a", "model_b", "n_items", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "p_value",
                 "p_adjusted", "significant", "better", "noise_note", "task", "metric", "higher_is_better"]))
    front = ["task", "metric", "higher_is_better"]
    pairwise = pairwise[front + [c for c in pairwise.columns if c not in front]]
    return (pd.DataFrame(summary_rows, columns=["task", "metric", "model", "n", "failures", "mean", "std", "ci_low",
                                                "ci_high", "direction", "within_noise_of_best", "noise_note"]),
            pd.DataFrame(rank_rows, columns=["task", "metric", "model", "mean_rank", "n_items", "higher_is_better"]),
            pairwise,
            pd.DataFrame(noise_rows, columns=["task", "metric", "n_items", "n_pairs", "n_significant", "note"]))


def _noise_note(model: str, best: str | None, pairs: pd.DataFrame, direction: int) -> tuple[bool, str]:
    if direction == 0 or best is None:
        return False, "descriptive metric (not ranked)"
    if pairs.empty:
        return True, "only one model: nothing to compare"
    if model == best:
        tied = pairs[((pairs["model_a"] == model) | (pairs["model_b"] == model)) & ~pairs["significant"]]
        others = sorted((set(tied["model_a"]) | set(tied["model_b"])) - {model})
        if others:
            return True, f"best mean, but not distinguishable from {', '.join(others)} ({statistics.NOISE})"
        return True, "best mean; significantly better than every other model"
    pair = pairs[((pairs["model_a"] == model) & (pairs["model_b"] == best)) |
                 ((pairs["model_a"] == best) & (pairs["model_b"] == model))]
    if pair.empty:
        return False, f"no items shared with the best model {best}"
    row = pair.iloc[0]
    if row["significant"]:
        return False, f"significantly worse than {best} (p_adj={row['p_adjusted']:.3g}, n={row['n_items']})"
    return True, f"{statistics.NOISE} vs the best model {best} (p_adj={row['p_adjusted']:.3g}, n={row['n_items']})"


def _failures(metrics: pd.DataFrame) -> pd.DataFrame:
    columns = ["task", "model", "metric", "n_failed", "reasons"]
    if metrics is None or metrics.empty:
        return pd.DataFrame(columns=columns)
    failed = metrics[(metrics["error"].fillna("") != "") | metrics["value"].isna()]
    if failed.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (task, model, metric), group in failed.groupby(["task", "model", "metric"], sort=True):
        reasons = group["error"].fillna("").replace("", "no value").value_counts()
        rows.append({"task": task, "model": model, "metric": metric, "n_failed": len(group),
                     "reasons": "; ".join(f"{reason} (x{count})" for reason, count in reasons.head(3).items())})
    return pd.DataFrame(rows, columns=columns)


def _bradley_terry(judgments: pd.DataFrame | None, scores: pd.DataFrame, n_boot: int, seed: int) -> pd.DataFrame:
    columns = ["task", "source", "model", "strength", "ci_low", "ci_high", "n_comparisons", "wins"]
    frames = []
    outcomes = pairwise_outcomes(judgments) if judgments is not None and not judgments.empty else pd.DataFrame()
    for task in sorted(scores["task"].unique()) if not scores.empty else []:
        task_outcomes = outcomes[outcomes["task"] == task] if not outcomes.empty else outcomes
        source = "pairwise judge verdicts (both orders; a flip is a tie)"
        if task_outcomes.empty:
            ranks = scores[(scores["task"] == task) & scores["metric"].str.startswith("judge_rank")]
            if ranks.empty:
                continue
            task_outcomes = statistics.outcomes_from_ranks(ranks.rename(columns={"value": "rank"}))
            source = "listwise judge ranks (pairs within each item)"
        table = statistics.bradley_terry(task_outcomes, n_boot=n_boot, seed=seed)
        frames.append(table.assign(task=task, source=source))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def notebook_cells(scores: pd.DataFrame, generations: pd.DataFrame, judge_display: str = "судьи") -> pd.DataFrame:
    """The notebook's final-table numbers in long form: ``key, task, model, value, n_items, column``.

    ``judge``: mean over items of the listwise judge rank; ``cosine``: mean per-item rank of the
    cosine to the reference (``rank(method="min")``, higher cosine = 1); ``latency``: mean
    inference time of the successful generations (seconds).
    """
    rows = []
    for task in ("summary", "answer"):
        judged = scores[(scores["task"] == task) & scores["metric"].str.startswith("judge_rank")]
        if not judged.empty:
            n_items = judged["item_id"].nunique()
            for model, value in judged.groupby("model")["value"].mean().items():
                rows.append({"key": "judge", "task": task, "model": model, "value": float(value), "n_items": n_items})
        cosine = scores[(scores["task"] == task) & (scores["metric"] == "cosine")]
        if not cosine.empty:
            ranked = statistics.mean_ranks(cosine, direction=1)
            rows.extend({"key": "cosine", "task": task, "model": r.model, "value": float(r.mean_rank),
                         "n_items": int(r.n_items)} for r in ranked.itertuples())
        if generations is not None and not generations.empty and "latency_s" in generations.columns:
            done = generations[(generations["task"] == task) & (generations["error"].fillna("") == "")]
            done = done[pd.to_numeric(done["latency_s"], errors="coerce").notna()]
            if not done.empty:
                n_items = done["item_id"].nunique()
                for model, value in done.groupby("model")["latency_s"].mean().items():
                    rows.append({"key": "latency", "task": task, "model": model, "value": float(value),
                                 "n_items": n_items})
    frame = pd.DataFrame(rows, columns=["key", "task", "model", "value", "n_items"])
    frame["column"] = [notebook_column_name(k, t, int(n), judge_display)
                       for k, t, n in zip(frame["key"], frame["task"], frame["n_items"])]
    return frame


def notebook_table(cells: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """The final table, wide (rows = models, the notebook's six columns in its order).

    A cell that cannot be computed (a baseline that does not do a task, no judge verdicts) is a
    null and the row's ``note`` says why.
    """
    order = [(key, task) for task in ("summary", "answer") for key in ("judge", "cosine")] + \
            [("latency", "summary"), ("latency", "answer")]
    reasons = {"judge": "нет вердиктов судьи", "cosine": "нет косинусной близости",
               "latency": "нет успешных генераций"}
    columns, rows = [], []
    for key, task in order:
        subset = cells[(cells["key"] == key) & (cells["task"] == task)]
        if not subset.empty:
            columns.append((key, task, subset["column"].iloc[0]))
    for model in models:
        row: dict = {"model": model}
        notes = []
        for key, task, name in columns:
            match = cells[(cells["key"] == key) & (cells["task"] == task) & (cells["model"] == model)]
            if match.empty:
                row[name] = None
                notes.append(f"{name}: {reasons[key]} для этой модели")
            else:
                row[name] = float(match["value"].iloc[0])
        missing = [f"{reasons[k]} ({TASK_NAMES_RU[t]})" for k, t in order
                   if not any(c[0] == k and c[1] == t for c in columns)]
        if missing:
            notes.append("столбцы не вычислены: " + ", ".join(missing))
        row["note"] = "; ".join(notes)
        rows.append(row)
    table = pd.DataFrame(rows, columns=["model", *[c[2] for c in columns], "note"])
    for _, _, name in columns:
        table[name] = pd.array([None if pd.isna(v) else float(v) for v in table[name]], dtype="Float64")
    return table


def _per_paper(scores: pd.DataFrame, headline_metric: str | None) -> pd.DataFrame:
    columns = ["task", "paper_id", "model", "metric", "mean", "n_items", "higher_is_better"]
    if scores.empty:
        return pd.DataFrame(columns=columns)
    frames = []
    for task, group in scores.groupby("task", sort=True):
        available = set(group["metric"])
        metric = headline_metric if headline_metric in available else next(
            (m for m in HEADLINE_PREFERENCE if m in available), None)
        if metric is None:
            continue
        chosen = group[group["metric"] == metric]
        table = chosen.groupby(["paper_id", "model"], as_index=False)["value"].agg(mean="mean", n_items="count")
        frames.append(table.assign(task=task, metric=metric, higher_is_better=metric_direction(metric) > 0))
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _signatures(metrics: pd.DataFrame) -> pd.DataFrame:
    columns = ["metric", "signature", "n_rows"]
    if metrics is None or metrics.empty:
        return pd.DataFrame(columns=columns)
    table = metrics.groupby(["metric", "signature"], as_index=False).size().rename(columns={"size": "n_rows"})
    return table[columns]


def _generation_signatures(generations: pd.DataFrame) -> pd.DataFrame:
    keys = ["model", "task", "backend", "model_revision", "prompt_version", "decoding"]
    columns = keys + ["prompt_hashes", "n_generations", "n_failed"]
    if generations is None or generations.empty:
        return pd.DataFrame(columns=columns)
    frame = generations.copy()
    for key in keys:
        frame[key] = frame[key].fillna("").astype(str) if key in frame.columns else ""
    frame["failed"] = frame["error"].fillna("") != ""
    prompt_hash = frame["prompt_hash"].fillna("").astype(str) if "prompt_hash" in frame.columns else ""
    frame["prompt_hash"] = prompt_hash
    table = frame.groupby(keys, as_index=False).agg(
        prompt_hashes=("prompt_hash", lambda s: int(s.nunique())),
        n_generations=("failed", "size"), n_failed=("failed", "sum"))
    table["n_failed"] = table["n_failed"].astype(int)
    return table[columns]


def build_leaderboard(
    metrics: pd.DataFrame,
    generations: pd.DataFrame,
    judgments: pd.DataFrame | None = None,
    *,
    n_boot: int = statistics.DEFAULT_BOOTSTRAP,
    n_permutations: int = statistics.DEFAULT_PERMUTATIONS,
    seed: int = 0,
    alpha: float = statistics.ALPHA,
    headline_metric: str | None = None,
) -> dict[str, pd.DataFrame]:
    """All leaderboard tables from metric rows, generation rows and (optionally) judge verdicts.

    Statistics are paired by item within each task x metric; the Holm correction runs over the
    model pairs of one task x metric. ``n_boot`` bootstrap replicates (seeded, so tables are
    reproducible), ``n_permutations`` sign-flip draws when an exact test is too large.
    """
    scores = item_scores(metrics, judgments)
    failures = _failures(metrics)
    summary, ranks, pairwise, noise = _summary(scores, failures, n_boot, n_permutations, seed, alpha)
    judge_names = sorted(judgments["judge"].unique()) if judgments is not None and not judgments.empty else []
    judge_display = judge_names[0] if len(judge_names) == 1 else "судьи"
    cells = notebook_cells(scores, generations, judge_display)
    models = set(scores["model"])
    if generations is not None and not generations.empty:
        models |= set(generations["model"])
    return {
        "summary": summary,
        "ranks": ranks,
        "pairwise": pairwise,
        "bradley_terry": _bradley_terry(judgments, scores, n_boot, seed),
        "notebook_table": notebook_table(cells, sorted(models)),
        "notebook_cells": cells,
        "per_paper": _per_paper(scores, headline_metric),
        "noise": noise,
        "failures": failures,
        "signatures": _signatures(metrics),
        "generation_signatures": _generation_signatures(generations),
    }


def split_by_collection(frame: pd.DataFrame | None, collection_of: Mapping[str, str]) -> dict[str, pd.DataFrame]:
    """Rows of a frame with a ``paper_id`` column, by collection (``UNREGISTERED`` for unknown papers)."""
    if frame is None or frame.empty:
        return {}
    collections = frame["paper_id"].astype(str).map(lambda paper: collection_of.get(paper, UNREGISTERED))
    return {str(name): group.reset_index(drop=True) for name, group in frame.groupby(collections, sort=True)}


def _stack(named: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Tables of several collections under each other, ``collection`` first."""
    marked = [table.copy() for _, table in named]
    for (collection, _), table in zip(named, marked):
        table.insert(0, "collection", collection)
    filled = [table for table in marked if not table.empty]
    if not filled:
        return marked[0]
    return pd.concat(filled, ignore_index=True) if len(filled) > 1 else filled[0].reset_index(drop=True)


def _align_notebook_tables(named: list[tuple[str, pd.DataFrame]]) -> list[tuple[str, pd.DataFrame]]:
    """Give every collection's wide notebook table the union of columns; a column of another
    collection is null and the row's ``note`` says so (item counts in the names differ)."""
    union: list[str] = []
    for _, table in named:
        union += [c for c in table.columns if c not in ("model", "note") and c not in union]
    aligned = []
    for collection, table in named:
        foreign = [c for c in union if c not in table.columns]
        table = table.copy()
        for column in foreign:
            table[column] = pd.array([None] * len(table), dtype="Float64")
        if foreign and not table.empty:
            remark = (f"{len(foreign)} {_plural(len(foreign), 'столбец', 'столбца', 'столбцов')} "
                      f"других коллекций не относятся к коллекции {collection}")
            table["note"] = [f"{note}; {remark}" if note else remark for note in table["note"]]
        aligned.append((collection, table[["model", *union, "note"]]))
    return aligned


def build_leaderboard_by_collection(
    metrics: pd.DataFrame,
    generations: pd.DataFrame,
    judgments: pd.DataFrame | None = None,
    *,
    collection_of: Mapping[str, str],
    **options,
) -> dict[str, pd.DataFrame]:
    """``build_leaderboard`` within each collection, never pooled: every table gets ``collection``
    as its first column. ``collection_of`` maps paper id to collection (papers.yaml); a paper it
    does not know goes to ``UNREGISTERED``. ``options`` are ``build_leaderboard``'s keywords.
    """
    by_metrics = split_by_collection(metrics, collection_of)
    by_generations = split_by_collection(generations, collection_of)
    by_judgments = split_by_collection(judgments, collection_of)
    collections = sorted(set(by_metrics) | set(by_generations) | set(by_judgments))
    if not collections:  # nothing stored: the empty tables, with the column
        collections, by_metrics = [UNREGISTERED], {UNREGISTERED: metrics}
    empty_metrics = metrics.iloc[0:0] if metrics is not None else pd.DataFrame()
    empty_generations = generations.iloc[0:0] if generations is not None else pd.DataFrame()
    per_collection = [
        (collection, build_leaderboard(by_metrics.get(collection, empty_metrics),
                                       by_generations.get(collection, empty_generations),
                                       by_judgments.get(collection), **options))
        for collection in collections
    ]
    names = per_collection[0][1].keys()
    stacked = {}
    for name in names:
        named = [(collection, tables[name]) for collection, tables in per_collection]
        stacked[name] = _stack(_align_notebook_tables(named) if name == "notebook_table" else named)
    return stacked


def find_nan(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Cells that break the no-NaN rule: a float NaN anywhere, or a null without a reason.

    A null is allowed only where the row carries its reason: ``error`` (metrics), ``note``
    (notebook_table, verify_study) or ``abstained``/``reason`` (judge verdicts) or a verdict
    column that does not apply to the row's mode.
    """
    problems = []
    modes_of_column: dict[str, set[str]] = {"confidence": {"cascade"}}  # rank -> {listwise}, win -> {pairwise, cascade}
    for mode in JUDGE_MODES.values():
        modes_of_column.setdefault(mode.verdict_column, set()).add(mode.name)
    for name, table in tables.items():
        for column in table.columns:
            series = table[column]
            as_object = series.astype(object)
            nan_mask = as_object.map(lambda v: isinstance(v, float) and math.isnan(v))
            if nan_mask.any():
                problems.append(f"{name}.{column}: {int(nan_mask.sum())} NaN")
                continue
            nulls = series.isna()
            if not nulls.any():
                continue
            reason_columns = [c for c in ("error", "note", "reason") if c in table.columns]
            if column in modes_of_column and "mode" in table.columns:
                unexplained = nulls & table["mode"].isin(modes_of_column[column]) & ~table["abstained"]
            elif reason_columns:
                has_reason = table[reason_columns].astype(str).apply(lambda r: any(v.strip() for v in r), axis=1)
                unexplained = nulls & ~has_reason
            else:
                unexplained = nulls
            if unexplained.any():
                problems.append(f"{name}.{column}: {int(unexplained.sum())} null(s) without a reason")
    return problems


def leaderboard_records(table: pd.DataFrame) -> list[dict]:
    """A table as JSON-safe records (nulls as None, numpy scalars as Python values)."""
    records = []
    for record in table.to_dict("records"):
        clean = {}
        for key, value in record.items():
            if value is pd.NA or value is None or (isinstance(value, float) and math.isnan(value)):
                clean[key] = None
            elif isinstance(value, np.generic):
                clean[key] = value.item()
            else:
                clean[key] = value
        records.append(clean)
    return json.loads(json.dumps(records, default=str))
