"""The shipped demo corpus: PDFs match their sources, layout, questions, summaries, registry."""

from __future__ import annotations

import re
from pathlib import Path

import pymupdf
import pytest
import yaml

from rag_pipeline.datasets import load_demo_questions, load_papers, load_reference_summaries
from rag_pipeline.demo_corpus.build import (
    build_demo_corpus,
    load_source,
    load_sources,
    pdf_path,
    render_source,
)
from rag_pipeline.demo_corpus.render import DemoSourceError
from rag_pipeline.hashing import sha256_file

from .conftest import normalise

CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)


def body_paragraphs(source: dict) -> list[str]:
    """The abstract and every section paragraph (no tables, captions or references), normalised."""
    return [normalise(source["abstract"])] + [normalise(p) for section in source["sections"] for p in section["paragraphs"]]


def text_share_of_one_sided_blocks(page: pymupdf.Page) -> tuple[float, float]:
    """Shares of the page's text in blocks wholly left / wholly right of the vertical middle."""
    middle = page.rect.width / 2
    blocks = [b for b in page.get_text("blocks") if len(b[4].strip()) > 40]
    total = sum(len(b[4]) for b in blocks) or 1
    left = sum(len(b[4]) for b in blocks if b[2] < middle)
    right = sum(len(b[4]) for b in blocks if b[0] > middle)
    return left / total, right / total


def test_there_are_six_demo_papers_three_in_two_columns(demo_sources):
    assert len(demo_sources) >= 6
    assert all(paper_id.startswith("demo-") for paper_id in demo_sources)
    assert sorted(int(s.get("columns", 1)) for s in demo_sources.values()) == [1, 1, 1, 2, 2, 2]


def test_three_papers_have_the_layout_features_of_arxiv_preprints(demo_sources):
    """Running headers and page numbers, footnotes, figures, tables, display equations, both
    reference styles, a Discussion-only ending and an appendix after the references."""
    arxiv_like = {pid: s for pid, s in demo_sources.items() if s.get("running_header") and s.get("footnotes")}
    assert len(arxiv_like) >= 3
    for paper_id, source in arxiv_like.items():
        sections = source["sections"]
        assert any(s.get("figure") for s in sections), paper_id
        assert any(s.get("table") for s in sections) and any(s.get("formula") for s in sections), paper_id
    assert {s.get("reference_style", "numbered") for s in arxiv_like.values()} == {"numbered", "author-year"}
    assert any(int(s.get("columns", 1)) == 2 for s in arxiv_like.values())
    endings = {pid: s["sections"][-1]["heading"] for pid, s in arxiv_like.items()}
    discussion_only = [pid for pid, s in arxiv_like.items()
                       if endings[pid] == "Discussion" and not any("onclusion" in x["heading"] for x in s["sections"])]
    assert discussion_only, endings
    assert any(s.get("appendix") for s in arxiv_like.values())


def test_shipped_pdfs_equal_a_fresh_render_of_their_sources(demo_sources, tmp_path):
    for paper_id, source in demo_sources.items():
        fresh = render_source(source, tmp_path)
        assert sha256_file(fresh) == sha256_file(pdf_path(paper_id)), (
            f"{pdf_path(paper_id)} is stale: run `python -m rag_pipeline.demo_corpus.build`"
        )


def test_build_renders_every_source_into_the_given_directory(tmp_path, demo_sources):
    paths = build_demo_corpus(tmp_path, progress=False)
    assert sorted(p.name for p in paths) == sorted(f"{paper_id}.pdf" for paper_id in demo_sources)
    assert all(Path(p).parent == tmp_path for p in paths)


def test_each_paper_has_three_or_more_pages_and_its_parts(demo_sources, demo_markdown):
    for paper_id, source in demo_sources.items():
        with pymupdf.open(pdf_path(paper_id)) as doc:
            assert doc.page_count >= 3, paper_id
        headings = [
            normalise(line.lstrip("#"))
            for line in demo_markdown[paper_id].splitlines()
            if line.startswith("#")
        ]
        appendix = source.get("appendix") or []
        body, after = headings[: len(headings) - len(appendix)], headings[len(headings) - len(appendix):]
        assert body[1] == "abstract" and body[-1] == "references", paper_id
        assert body[2] == "1 introduction", paper_id
        assert body[-2].endswith(("conclusion", "discussion")), paper_id
        assert after == [normalise(f"{chr(ord('a') + i)} {a['heading']}") for i, a in enumerate(appendix)], paper_id
        assert len(headings) == len(source["sections"]) + 3 + len(appendix)  # title, abstract, sections, references
        flat = normalise(demo_markdown[paper_id])
        formulas = [s["formula"]["text"] for s in source["sections"] if s.get("formula")]
        tables = [s["table"] for s in source["sections"] if s.get("table")]
        assert formulas and tables and len(source["references"]) >= 5, paper_id
        assert all(normalise(f) in flat for f in formulas), paper_id
        table_line = "|" + "|".join(tables[0]["rows"][0]) + "|"
        assert normalise(table_line).replace(" ", "") in flat.replace(" ", ""), paper_id


def test_the_two_column_paper_really_has_two_columns_and_the_others_one(demo_sources):
    for paper_id, source in demo_sources.items():
        with pymupdf.open(pdf_path(paper_id)) as doc:
            left, right = text_share_of_one_sided_blocks(doc[1])  # a full body page
        if int(source.get("columns", 1)) == 2:
            assert left > 0.3 and right > 0.3, (paper_id, left, right)
        else:
            assert left + right < 0.2, (paper_id, left, right)


def test_questions_are_russian_and_cover_every_paper(demo_sources):
    questions = load_demo_questions()
    assert len(questions) >= 60
    ids = [q.question_id for q in questions]
    assert len(ids) == len(set(ids))
    for paper_id in demo_sources:
        mine = [q for q in questions if q.paper_id == paper_id]
        assert len(mine) >= 6, paper_id
        assert [q.question_id for q in mine] == [
            f"{paper_id}:q{i:02d}" for i in range(1, len(mine) + 1)
        ]
    for question in questions:
        assert question.paper_id in demo_sources, question.question_id
        assert CYRILLIC.search(question.text) and CYRILLIC.search(question.reference_answer), (
            question.question_id
        )
        assert question.text.rstrip().endswith("?"), question.question_id
        assert 1 <= len(question.gold_evidence) <= 3, question.question_id


def test_gold_evidence_is_verbatim_body_text_found_in_the_markdown(demo_sources, demo_markdown):
    flat = {paper_id: normalise(markdown) for paper_id, markdown in demo_markdown.items()}
    for question in load_demo_questions():
        paragraphs = body_paragraphs(demo_sources[question.paper_id])
        for quote in question.gold_evidence:
            where = f"{question.question_id}: {quote!r}"
            assert 8 <= len(quote.split()) <= 30, where
            assert any(normalise(quote) in p for p in paragraphs), (
                f"not in one body paragraph: {where}"
            )
            assert normalise(quote) in flat[question.paper_id], (
                f"not in pymupdf4llm markdown: {where}"
            )


def test_every_demo_paper_in_the_registry_has_pdf_questions_and_summary(demo_sources):
    demo_papers = [p for p in load_papers() if p.collection == "demo"]
    assert sorted(p.id for p in demo_papers) == sorted(demo_sources)
    summaries = load_reference_summaries()
    question_papers = {q.paper_id for q in load_demo_questions()}
    for paper in demo_papers:
        assert paper.pdf_path == pdf_path(paper.id).resolve() and paper.pdf_path.is_file(), paper.id
        assert paper.title == demo_sources[paper.id]["title"], paper.id
        assert paper.id in question_papers, paper.id
        summary = summaries.get(paper.id, "")
        assert CYRILLIC.search(summary) and 4 <= summary.count(". ") + 1 <= 7, paper.id


def test_load_source_rejects_an_id_that_does_not_match_the_file(tmp_path, demo_sources):
    source = dict(next(iter(demo_sources.values())), id="demo-other-name")
    path = tmp_path / "demo-some-paper.yaml"
    path.write_text(yaml.safe_dump(source), encoding="utf-8")
    with pytest.raises(DemoSourceError, match="demo-other-name"):
        load_source(path)
    path.write_text("title: [unclosed", encoding="utf-8")
    with pytest.raises(DemoSourceError, match="demo-some-paper.yaml"):
        load_source(path)
    with pytest.raises(DemoSourceError, match="no demo paper sources"):
        build_demo_corpus(tmp_path / "out", sources_dir=tmp_path / "empty", progress=False)


def test_sources_load_from_the_shipped_directory():
    assert set(load_sources()) == {
        "demo-sparse-routing",
        "demo-rerank-study",
        "demo-morph-tokenizer",
        "demo-kv-quant",
        "demo-bike-demand",
        "demo-contamination",
    }
