"""The leaderboard tables on a small offline benchmark: contents, noise notes, baselines, no NaN."""

import pandas as pd
import pytest

from rag_pipeline import atomic
from rag_pipeline.evaluate.leaderboard import (
    UNREGISTERED,
    build_leaderboard,
    build_leaderboard_by_collection,
    find_nan,
    notebook_column_name,
)
from rag_pipeline_tests.evaluate.factories import COLLECTION_MODELS, COLLECTION_OF

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


# ------------------------------------------------------------------------------ collections


@pytest.fixture(scope="module")
def by_collection(two_collection_run):
    generations, metrics, judgments = two_collection_run
    return build_leaderboard_by_collection(metrics, generations, judgments, collection_of=COLLECTION_OF,
                                           n_boot=100, n_permutations=500)


def test_every_table_has_collection_first_and_no_nan(by_collection):
    assert set(by_collection) == TABLES
    for name, table in by_collection.items():
        assert table.columns[0] == "collection", name
    assert set(by_collection["summary"]["collection"]) == {"alpha", "beta", UNREGISTERED}
    assert find_nan(by_collection) == []


def test_statistics_are_never_pooled_across_collections(by_collection):
    summary = by_collection["summary"].set_index(["collection", "task", "metric", "model"])
    # llm-good answers 6 questions in alpha (p1, p2), 3 in beta (p3) and 3 unregistered (p4): not 12
    assert summary.loc[("alpha", "answer", "rougeL_fmeasure", "llm-good"), "n"] == 6
    assert summary.loc[("beta", "answer", "rougeL_fmeasure", "llm-good"), "n"] == 3
    assert summary.loc[(UNREGISTERED, "summary", "bleu", "llm-good"), "n"] == 1
    for collection, models in COLLECTION_MODELS.items():
        rows = by_collection["summary"][by_collection["summary"]["collection"] == collection]
        assert set(rows["model"]) == models
        pairs = by_collection["pairwise"][by_collection["pairwise"]["collection"] == collection]
        assert set(pairs["model_a"]) | set(pairs["model_b"]) == models
    alpha_pairs = by_collection["pairwise"][by_collection["pairwise"]["collection"] == "alpha"]
    assert "llm-mid" not in set(alpha_pairs["model_a"]) | set(alpha_pairs["model_b"])
    assert (alpha_pairs["n_items"] <= 6).all()
    # every noise note compares with a model of its own collection: nothing is "shared with no item"
    assert not by_collection["summary"]["noise_note"].str.contains("no items shared").any()


def test_ranks_bradley_terry_and_per_paper_stay_within_their_collection(by_collection):
    for name in ("ranks", "bradley_terry", "per_paper", "notebook_cells", "generation_signatures"):
        table = by_collection[name]
        for collection, models in COLLECTION_MODELS.items():
            assert set(table.loc[table["collection"] == collection, "model"]) <= models, name
    per_paper = by_collection["per_paper"]
    assert set(per_paper.loc[per_paper["collection"] == "alpha", "paper_id"]) == {"p1", "p2"}
    assert set(per_paper.loc[per_paper["collection"] == UNREGISTERED, "paper_id"]) == {"p4"}
    bt = by_collection["bradley_terry"]
    for (collection, task), group in bt.groupby(["collection", "task"]):
        assert group["strength"].sum() == pytest.approx(1.0)  # strengths are normalised per collection


def test_notebook_table_counts_items_per_collection_and_explains_foreign_columns(by_collection):
    table = by_collection["notebook_table"]
    assert list(table.columns)[:2] == ["collection", "model"] and list(table.columns)[-1] == "note"
    alpha_cosine = notebook_column_name("cosine", "answer", 6, "scripted-oracle")
    beta_cosine = notebook_column_name("cosine", "answer", 3, "scripted-oracle")  # beta's 3 questions
    assert alpha_cosine in table.columns and beta_cosine in table.columns
    alpha = table[table["collection"] == "alpha"].set_index("model")
    assert alpha.drop(index="lead-3")[alpha_cosine].notna().all() and alpha.loc["llm-good", alpha_cosine] == 1.0
    assert alpha[beta_cosine].isna().all()
    assert alpha["note"].str.contains("других коллекций не относятся к коллекции alpha").all()
    beta = table[table["collection"] == "beta"].set_index("model")
    assert beta[alpha_cosine].isna().all() and beta.loc["llm-good", beta_cosine] == 1.0
    cells = by_collection["notebook_cells"]
    assert set(cells.loc[cells["collection"] == "alpha", "n_items"]) <= {2, 6}  # 2 papers, 6 questions


def test_a_single_collection_reproduces_build_leaderboard(two_collection_run):
    generations, metrics, judgments = two_collection_run
    alpha = {"p1": "alpha", "p2": "alpha"}
    in_alpha = generations["paper_id"].isin(alpha)
    only = build_leaderboard(metrics[metrics["paper_id"].isin(alpha)], generations[in_alpha],
                             judgments[judgments["paper_id"].isin(alpha)], n_boot=50, n_permutations=200)
    stacked = build_leaderboard_by_collection(metrics, generations, judgments, collection_of=COLLECTION_OF,
                                              n_boot=50, n_permutations=200)
    for name in ("summary", "pairwise", "ranks", "bradley_terry"):
        mine = stacked[name][stacked[name]["collection"] == "alpha"].drop(columns="collection").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, only[name].reset_index(drop=True), check_dtype=False)


def test_by_collection_without_rows_still_builds(benchmark_run):
    generations, _, metrics, _, _ = benchmark_run
    empty = build_leaderboard_by_collection(metrics.iloc[0:0], generations.iloc[0:0], None, collection_of={},
                                            n_boot=20)
    assert set(empty) == TABLES and all(t.empty and t.columns[0] == "collection" for t in empty.values())
    assert find_nan(empty) == []
