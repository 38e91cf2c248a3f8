"""Labels, simulated annotators, calibration and the cascade, with judges written as plain functions
(an oracle that reads the outputs, a judge that always says "A", one that answers at random)."""

from __future__ import annotations

import random
import re

import pandas as pd
import pytest

from rag_pipeline.contracts import CALIBRATION_COLUMNS, LABEL_COLUMNS, VERDICT_COLUMNS
from rag_pipeline.evaluate.judge import GuaranteeSettings, Judge, calibrate_judges, judge_cascade, judge_item_scores
from rag_pipeline.evaluate.judge.annotators import AnnotatorSettings, Pair, annotate, annotator_prompt
from rag_pipeline.evaluate.judge.cascade import thresholds_from
from rag_pipeline.evaluate.judge.labels import (
    STUDY_LABEL_FILE,
    LabelFileError,
    read_label_file,
    read_labels,
    study_labels,
)
from rag_pipeline.evaluate.leaderboard import find_nan
from rag_pipeline.reference_study import load_study_outputs
from rag_pipeline.settings import data_dir


def shown_outputs(messages) -> tuple[str, str]:
    """The two outputs of the last question, in the order shown (A, B)."""
    text = messages[-1]["content"]
    return tuple(re.findall(r"Ответ [AB]:\n<<<\n(.*?)\n>>>", text, flags=re.DOTALL))  # type: ignore[return-value]


def oracle(messages) -> str:
    first, _ = shown_outputs(messages)
    return '{"winner": "A"}' if "GOOD" in first else '{"winner": "B"}'


def always_a(messages) -> str:
    return '{"winner": "A"}'


def coin(messages) -> str:
    return random.Random(messages[-1]["content"] + str(len(messages))).choice(['{"winner": "A"}', '{"winner": "B"}'])


def synthetic_labels(n_items: int = 60, seed: int = 1) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n_items):
        good_first = rng.random() < 0.5
        good, bad = f"GOOD answer {i}", f"poor answer {i}"
        rows.append({"label_id": f"l{i}", "task": "answer", "item_id": f"p:q{i:02d}", "paper_id": "p",
                     "context": f"question {i}", "reference": f"reference {i}", "model_a": "m1",
                     "output_a": good if good_first else bad, "model_b": "m2", "output_b": bad if good_first else good,
                     "preferred": "A" if good_first else "B", "annotator": "tester", "annotator_kind": "human",
                     "source": "synthetic.csv"})
    return pd.DataFrame(rows, columns=list(LABEL_COLUMNS))


SETTINGS = GuaranteeSettings(alpha=0.2, delta=0.1, confidence="annotators",
                             annotators=AnnotatorSettings(annotators=3, shots=2, seed=0))


def test_the_shipped_study_labels_are_what_the_gpt4o_ranks_say():
    shipped = read_labels(data_dir() / "labels")
    derived = study_labels(load_study_outputs())
    assert set(shipped["source"]) == {STUDY_LABEL_FILE}
    pd.testing.assert_frame_equal(shipped.drop(columns="source").reset_index(drop=True),
                                  derived.drop(columns="source").reset_index(drop=True))
    assert set(shipped["annotator_kind"]) == {"reference_judge"}
    assert len(shipped) == 180 and set(shipped["preferred"]) == {"A", "B", "tie"}


def test_a_bad_label_file_is_named_with_its_row_and_column(tmp_path):
    frame = synthetic_labels(3).drop(columns=["label_id", "source"])
    path = tmp_path / "mine.csv"
    frame.drop(columns="annotator").to_csv(path, index=False)
    with pytest.raises(LabelFileError, match=r"mine\.csv: missing column\(s\) \['annotator'\]"):
        read_label_file(path)
    frame.loc[1, "preferred"] = "C"
    frame.to_csv(path, index=False)
    with pytest.raises(LabelFileError, match=r"mine\.csv: row 3: preferred 'C' is not one of"):
        read_label_file(path)
    frame.loc[1, "preferred"] = "tie"
    frame.to_parquet(tmp_path / "mine.parquet")
    path.unlink()
    assert read_label_file(tmp_path / "mine.parquet")["preferred"].tolist() == frame["preferred"].tolist()


def test_annotators_never_see_their_own_item_and_vary_examples_and_order():
    pairs = [Pair(f"k{i}", "answer", f"item{i % 5}", "q", "ref", f"a{i}", f"b{i}", "A") for i in range(20)]
    settings = AnnotatorSettings(annotators=6, shots=2, seed=3)
    prompts = [annotator_prompt(pairs[0], pairs, k, settings) for k in range(6)]
    for messages, _ in prompts:
        examples = [m["content"] for m in messages[1:-1] if m["role"] == "user"]
        assert len(examples) == 2
        assert not any("a0\n" in e or "a5\n" in e or "a10\n" in e for e in examples)  # item0's pairs
    assert len({str(m) for m, _ in prompts}) == 6
    assert {swapped for _, swapped in prompts} == {True, False}


def test_an_oracle_is_unanimous_and_a_position_biased_judge_is_not():
    labels = synthetic_labels(12)
    pool = [Pair(r["label_id"], r["task"], r["item_id"], r["context"], r["reference"], r["output_a"], r["output_b"],
                 r["preferred"]) for r in labels.to_dict("records")]
    settings = AnnotatorSettings(annotators=4, shots=1, seed=0)
    for verdict, pair in zip(annotate(Judge(complete=oracle, name="oracle"), pool, pool, settings), pool):
        assert verdict.confidence == 1.0
        assert verdict.verdict == pair.preferred.lower()
    biased = annotate(Judge(complete=always_a, name="biased"), pool, pool, settings)
    # "A" in swapped order is a vote for output b: the bias turns into disagreement, not confidence.
    assert sum(v.confidence for v in biased) / len(biased) < 0.9
    assert any(set(v.votes) == {"a", "b"} for v in biased)


def test_calibration_certifies_an_oracle_and_not_a_coin_and_the_cascade_escalates():
    labels = synthetic_labels(60)
    judges = [Judge(complete=coin, name="coin"), Judge(complete=oracle, name="oracle")]
    table, verdicts = calibrate_judges(judges, labels, SETTINGS)
    assert list(table.columns) == list(CALIBRATION_COLUMNS)
    assert table["judge"].tolist() == ["coin", "oracle", "cascade"]
    coin_row, oracle_row, whole = (table.iloc[i] for i in range(3))
    assert pd.isna(coin_row["threshold"]) and "abstains on every item" in coin_row["note"]
    assert oracle_row["threshold"] == 1.0 and oracle_row["errors"] == 0
    assert oracle_row["delta_judge"] == pytest.approx(0.05)
    assert whole["heldout_coverage"] == 1.0 and whole["heldout_agreement"] == 1.0
    assert set(verdicts["split"]) == {"calibration", "held_out"}
    assert find_nan({"calibration": table, "label_verdicts": verdicts}) == []  # every empty cell has its note

    items = [{"task": "answer", "item_id": f"x:q{i}", "paper_id": "x", "context": "q", "reference": "r",
              "outputs": {"m1": f"GOOD {i}" if i % 2 else f"poor {i}", "m2": f"poor {i}" if i % 2 else f"GOOD {i}",
                          "m3": f"meh {i}"}} for i in range(4)]
    pool = [Pair(r["label_id"], r["task"], r["item_id"], r["context"], r["reference"], r["output_a"], r["output_b"],
                 r["preferred"]) for r in labels.to_dict("records")]
    rows = judge_cascade(judges, thresholds_from(table, judges), items, pool, SETTINGS)
    assert list(rows.columns) == list(VERDICT_COLUMNS)
    assert find_nan({"verdicts": rows}) == []
    assert len(rows) == 4 * 3 * 2  # 4 items x 3 pairs x 2 rows
    decided = rows[~rows["abstained"]]
    assert set(decided["decided_by"]) == {"oracle"} and decided["escalated"].all()
    assert decided["escalation"].str.contains("coin: not certified").all()
    good_vs_poor = decided[decided["opponent"].isin(["m1", "m2"]) & decided["model"].isin(["m1", "m2"])]
    for row in good_vs_poor.itertuples():
        index = int(row.item_id.split("q")[1])
        winner = "m1" if index % 2 else "m2"
        assert row.win == (1.0 if row.model == winner else 0.0)
    # "meh" pairs: the oracle sees GOOD in neither or one; it still decides unanimously.
    scores = judge_item_scores(rows)
    assert set(scores["metric"]) == {"judge_guaranteed_win_rate"}


def test_an_uncertified_cascade_abstains_everywhere_with_its_reason():
    judges = [Judge(complete=coin, name="coin")]
    table, _ = calibrate_judges(judges, synthetic_labels(40), SETTINGS)
    items = [{"task": "answer", "item_id": "x:q1", "paper_id": "x", "context": "q", "reference": "r",
              "outputs": {"m1": "a", "m2": "b"}}]
    rows = judge_cascade(judges, thresholds_from(table, judges), items, [], SETTINGS)
    assert rows["abstained"].all()
    assert rows["reason"].str.startswith("every judge abstained: coin: not certified").all()
    assert judge_item_scores(rows).empty  # covered items only: nothing covered, no score


def test_no_labels_means_nothing_is_certified():
    table, verdicts = calibrate_judges([Judge(complete=oracle, name="oracle")],
                                       pd.DataFrame(columns=list(LABEL_COLUMNS)), SETTINGS)
    assert pd.isna(table.iloc[0]["threshold"]) and "no usable labels" in table.iloc[0]["note"]
    assert verdicts.empty


def test_the_report_says_what_zero_coverage_means_and_shows_covered_win_rates_only():
    from rag_pipeline.evaluate.report import _guarantee_section

    labels = synthetic_labels(40).assign(annotator_kind="reference_judge")
    uncertified, _ = calibrate_judges([Judge(complete=coin, name="coin")], labels, SETTINGS)
    html = _guarantee_section(uncertified, pd.DataFrame())
    assert "α = 0.2" in html and "ранги GPT-4o" in html and "Покрытие на отложенных метках: <b>0.0%</b>" in html
    assert "Ни один судья каскада не прошёл калибровку" in html

    certified, _ = calibrate_judges([Judge(complete=oracle, name="oracle")], synthetic_labels(40), SETTINGS)
    summary = pd.DataFrame([{"collection": "demo", "task": "answer", "metric": "judge_guaranteed_win_rate", "model": "m1",
                             "n": 7, "mean": 0.75, "ci_low": 0.5, "ci_high": 1.0},
                            {"collection": "demo", "task": "answer", "metric": "bleu", "model": "m1", "n": 9,
                             "mean": 0.1, "ci_low": 0.0, "ci_high": 0.2}])
    html = _guarantee_section(certified, summary)
    assert "с разметкой людей" in html and "100.0%" in html and "не прошёл" not in html
    assert ">7<" in html and ">9<" not in html  # the covered items' n, not the other metrics'
    assert "не настроен" in _guarantee_section(calibrate_judges([], labels.iloc[0:0], SETTINGS)[0], pd.DataFrame())
