"""The leaderboard tables on a small offline benchmark: contents, noise notes, baselines, no NaN."""

import pandas as pd
import pytest

from rag_pipeline import atomic
from rag_pipeline.evaluate.leaderboard import build_leaderboard, find_nan, notebook_column_name

TABLES = {"summary", "ranks", "pairwise", "bradley_terry", "notebook_table", "notebook_cells", "per_paper", "noise",
          "failures", "signatures", "generation_signatures"}


@pytest.fixture(scope="module")
def tables(benchmark_run):
    generations, _, metrics, judgments, _ = benchmark_run
    return build_leaderboard(metrics, generations, judgments, n_boot=200, n_permutations=2000)


def test_all_tables_are_built_without_nan(tables):
    assert set(tables) == TABLES
    assert find_nan(tables) == []


def test_summary_has_means_cis_counts_and_failures(tables):
    summary = tables["summary"].set_index(["task", "metric", "model"])
    good = summary.loc[("answer", "rougeL_fmeasure", "llm-good")]
    bad = summary.loc[("answer", "rougeL_fmeasure", "llm-bad")]
    assert good["mean"] == 1.0 and bad["mean"] < 0.2 and good["n"] == 12
    assert good["ci_low"] <= good["mean"] <= good["ci_high"]
    mid = summary.loc[("answer", "bleu", "llm-mid")]
    assert mid["n"] == 11 and mid["failures"] == 1
    assert summary.loc[("answer", "length_chars", "llm-good"), "noise_note"] == "descriptive metric (not ranked)"
    failures = tables["failures"].set_index(["task", "model", "metric"])
    assert "generation failed: CUDA out of memory" in failures.loc[("answer", "llm-mid", "bleu"), "reasons"]


def test_baselines_are_models_like_any_other(tables):
    summary = tables["summary"]
    assert set(summary.loc[summary["task"] == "summary", "model"]) >= {"lead-3"}
    assert set(summary.loc[summary["task"] == "answer", "model"]) >= {"top-chunk"}
    assert "lead-3" in set(tables["ranks"]["model"]) and "top-chunk" in set(tables["bradley_terry"]["model"])


def test_few_items_are_within_noise_many_consistent_items_are_significant(tables):
    pairs = tables["pairwise"].set_index(["task", "metric", "model_a", "model_b"])
    answer = pairs.loc[("answer", "judge_rank", "llm-bad", "llm-good")]
    assert answer["n_items"] == 12 and answer["significant"] and answer["better"] == "llm-good"
    summary = pairs.loc[("summary", "judge_rank", "llm-bad", "llm-good")]
    assert summary["n_items"] == 4 and not summary["significant"]  # 4 papers cannot separate anything
    assert "within noise" in summary["noise_note"]
    noise = tables["noise"].set_index(["task", "metric"])
    assert noise.loc[("summary", "judge_rank"), "n_significant"] == 0
    assert "within noise" in noise.loc[("summary", "judge_rank"), "note"]


def test_ranks_and_bradley_terry_put_the_best_model_first(tables):
    ranks = tables["ranks"]
    judge = ranks[(ranks["task"] == "answer") & (ranks["metric"] == "judge_rank")].set_index("model")["mean_rank"]
    assert judge.idxmin() == "llm-good" and judge.idxmax() == "llm-bad"
    latency = ranks[(ranks["task"] == "answer") & (ranks["metric"] == "latency_s")].set_index("model")["mean_rank"]
    assert latency.idxmin() == "top-chunk"  # lower latency is better
    bt = tables["bradley_terry"]
    for task in ("summary", "answer"):
        ordered = bt[bt["task"] == task]
        assert ordered["model"].iloc[0] == "llm-good" and ordered["model"].iloc[-1] == "llm-bad"
        assert ordered["source"].str.startswith("pairwise").all()


def test_notebook_table_has_the_notebooks_columns_and_explains_missing_cells(tables):
    table = tables["notebook_table"].set_index("model")
    judge_summary = notebook_column_name("judge", "summary", 4, "scripted-oracle")
    assert judge_summary == "Средний ранг на основе оценки scripted-oracle (суммаризация) (4 статьи)"
    expected = [judge_summary,
                "Средний ранг на основе косинусной близости (суммаризация) (4 статьи)",
                "Средний ранг на основе оценки scripted-oracle (генерация ответов) (12 вопросов)",
                "Средний ранг на основе косинусной близости (генерация ответов) (11 вопросов)",
                "Среднее время инференса (суммаризация) (4 статьи)",
                "Среднее время инференса (генерация ответов) (12 вопросов)"]
    assert list(table.columns) == expected + ["note"]
    assert set(table.index) == {"llm-good", "llm-mid", "llm-bad", "lead-3", "top-chunk"}
    assert table.loc["llm-good", judge_summary] == 1.0
    assert pd.isna(table.loc["lead-3", expected[2]]) and "нет вердиктов судьи" in table.loc["lead-3", "note"]
    assert pd.isna(table.loc["top-chunk", expected[4]]) and table.loc["llm-good", "note"] == ""
    assert table.loc["llm-good", expected[5]] == pytest.approx(4.0)  # len("llm-good") / 2


def test_per_paper_uses_the_judge_rank_as_headline(tables):
    per_paper = tables["per_paper"]
    assert set(per_paper["metric"]) == {"judge_rank"}
    answer = per_paper[per_paper["task"] == "answer"]
    assert set(answer["paper_id"]) == {"p1", "p2", "p3", "p4"}
    assert answer.groupby("paper_id").size().eq(4).all()


def test_signatures_list_every_metric_and_generation_setting(tables, benchmark_run):
    metrics = benchmark_run[2]
    assert set(tables["signatures"]["metric"]) == set(metrics["metric"])
    assert tables["signatures"]["n_rows"].sum() == len(metrics)
    generation_signatures = tables["generation_signatures"]
    assert set(generation_signatures["model"]) == {"llm-good", "llm-mid", "llm-bad", "lead-3", "top-chunk"}
    assert generation_signatures["n_failed"].sum() == 1


def test_tables_round_trip_through_parquet(tables, tmp_path):
    for name, table in tables.items():
        path = atomic.write_parquet(tmp_path / f"{name}.parquet", table)
        back = pd.read_parquet(path)
        assert back.shape == table.shape and list(back.columns) == list(table.columns)


def test_leaderboard_without_judgments_or_rows_still_builds(benchmark_run):
    generations, _, metrics, _, _ = benchmark_run
    tables = build_leaderboard(metrics, generations, None, n_boot=20, n_permutations=100)
    assert tables["bradley_terry"].empty and find_nan(tables) == []
    assert not any("оценки" in c for c in tables["notebook_table"].columns)
    assert "нет вердиктов судьи" in tables["notebook_table"]["note"].iloc[0]
    empty = build_leaderboard(metrics.iloc[0:0], generations.iloc[0:0], None, n_boot=20)
    assert all(table.empty for name, table in empty.items()) and find_nan(empty) == []
