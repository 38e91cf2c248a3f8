"""The reference study's recorded outputs as models, and the extractive baselines."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rag_pipeline.cache import ContentCache
from rag_pipeline.datasets import Question, load_papers, load_study_questions
from rag_pipeline.generate.backends.extractive_backend import lead_sentences, split_sentences
from rag_pipeline.generate.registry import models_by_name
from rag_pipeline.generate.requests import answer_requests, summary_requests
from rag_pipeline.generate.runner import run_generation
from rag_pipeline.generate.types import rows_to_frame
from rag_pipeline.settings import REPO_ROOT, data_dir

RECORDED = {"recorded-tbank": "Tbank", "recorded-yandexgpt": "YandexGPT", "recorded-qwen3": "Qwen3"}


@pytest.fixture(scope="module")
def study():
    base = data_dir() / "reference_study"
    return {
        "summaries": json.loads((base / "summaries.json").read_text(encoding="utf-8")),
        "questions": json.loads((base / "questions.json").read_text(encoding="utf-8")),
        "paper_of": {p.arxiv_id: p.id for p in load_papers() if p.arxiv_id},
    }


def _question_ids(study):
    """The study's questions' ids as formed by the registry: paper slug + 1-based order in the paper."""
    ids, seen = [], {}
    for entry in study["questions"]:
        paper = study["paper_of"][entry["arxiv_id"]]
        seen[paper] = seen.get(paper, 0) + 1
        ids.append(f"{paper}:q{seen[paper]:02d}")
    return ids


def _study_rows(model_name, tmp_path):
    spec = models_by_name()[model_name]
    papers = [p for p in load_papers() if p.collection == "reference_study"]
    # Offline the study papers are not ingested: recorded models need neither text nor retrievals.
    requests = [r for p in papers for r in summary_requests(spec, p.id, "", "")]
    questions = load_study_questions()
    for paper in papers:
        requests += answer_requests(
            spec, paper.id, [q for q in questions if q.paper_id == paper.id], None
        )
    return run_generation(spec, requests, cache=ContentCache(tmp_path / model_name), progress=False)


@pytest.mark.parametrize("model_name", sorted(RECORDED))
def test_every_study_item_is_present(model_name, study, tmp_path):
    key = RECORDED[model_name]
    rows = _study_rows(model_name, tmp_path)
    summaries = {r.item_id: r for r in rows if r.task == "summary"}
    answers = [r for r in rows if r.task == "answer"]
    assert len(summaries) == 10 and len(answers) == 50
    assert all(r.error == "" and r.output for r in rows)
    for entry in study["summaries"]:
        row = summaries[study["paper_of"][entry["arxiv_id"]]]
        assert row.output == entry["models"][key]["summary"].strip()
        assert row.latency_s == entry["models"][key]["inference_time_s"]  # the study's own timing
    expected = {
        question_id: entry["answers"][key]["text"].strip()
        for question_id, entry in zip(_question_ids(study), study["questions"])
    }
    assert {r.item_id: r.output for r in answers} == expected
    # The study printed only per-paper mean times for answers: each answer carries its paper's mean.
    seed = json.loads((REPO_ROOT / "data/reference_study/seed_results.json").read_text())
    per_paper = seed["qa"]["mean_inference_time_s_per_article"][key]
    arxiv_of = {pid: aid for aid, pid in study["paper_of"].items()}
    for r in answers:
        assert r.latency_s == per_paper[arxiv_of[r.paper_id]]
        assert "per-paper mean" in r.notes
    frame = rows_to_frame(rows)
    assert frame["model"].unique().tolist() == [model_name] and frame[
        "backend"
    ].unique().tolist() == ["recorded"]


def test_truncated_exports_are_flagged_in_notes(study, tmp_path):
    rows = _study_rows("recorded-tbank", tmp_path)
    flagged = {(r.task, r.item_id): r.notes for r in rows if "truncated_in_export" in r.notes}
    expected = {}
    for entry in study["summaries"]:
        flag = entry["models"]["Tbank"]["truncated_in_export"]
        if flag:
            expected[("summary", study["paper_of"][entry["arxiv_id"]])] = flag
    for question_id, entry in zip(_question_ids(study), study["questions"]):
        if entry["answers"]["Tbank"]["truncated_in_export"]:
            expected[("answer", question_id)] = True
    assert set(flagged) == set(expected)
    # As the study's README says: 4 flagged items, one of which lost only trailing newlines.
    assert sorted(map(str, expected.values())) == ["True"] * 3 + ["trailing_newlines_only"]
    for key, flag in expected.items():
        assert flagged[key].startswith(f"truncated_in_export={flag}")
    untruncated = [r for r in rows if (r.task, r.item_id) not in expected]
    assert all("truncated_in_export" not in r.notes for r in untruncated)


def test_items_outside_the_study_are_rows_with_an_error(tmp_path):
    spec = models_by_name()["recorded-qwen3"]
    requests = summary_requests(spec, "demo-paper", "", "") + answer_requests(
        spec, "demo-paper", [Question("demo-paper:q01", "demo-paper", "Вопрос?", "Ответ")], None
    )
    rows = run_generation(spec, requests, cache=ContentCache(tmp_path), progress=False)
    assert (
        rows[0].error
        == "no recorded output for summary 'demo-paper' of 'Qwen3' in the reference study"
    )
    assert rows[1].error.startswith("no recorded output for answer 'demo-paper:q01'")


def test_sentence_split_and_lead_k():
    text = "We study X. It works (see Fig. 3), e.g. on Y. Мы изучаем Z! Итог: 5.3 раза. Конец."
    assert split_sentences(text) == [
        "We study X.",
        "It works (see Fig. 3), e.g. on Y.",
        "Мы изучаем Z!",
        "Итог: 5.3 раза.",
        "Конец.",
    ]
    assert lead_sentences("Один. Два.", "Три. Четыре.", 3) == "Один. Два. Три."
    assert lead_sentences("", "", 3) == ""


def test_top_chunk_answers_with_the_best_kept_chunk(tmp_path):
    spec = models_by_name()["top-chunk"]
    retrievals = pd.DataFrame(
        [
            ("demo-paper:q01", "demo-paper:3", 1, False, "Vector-best but dropped."),
            ("demo-paper:q01", "demo-paper:8", 2, True, "Second kept."),
            ("demo-paper:q01", "demo-paper:1", 1, True, "  Reranked best kept chunk.  "),
        ],
        columns=["question_id", "chunk_id", "final_rank", "kept", "text"],
    )
    questions = [Question("demo-paper:q01", "demo-paper", "Вопрос?", "Ответ")]
    rows = run_generation(
        spec,
        answer_requests(spec, "demo-paper", questions, retrievals),
        cache=ContentCache(tmp_path),
        progress=False,
    )
    assert rows[0].output == "Reranked best kept chunk."
    assert json.loads(rows[0].context_ids) == ["demo-paper:1", "demo-paper:8"]
