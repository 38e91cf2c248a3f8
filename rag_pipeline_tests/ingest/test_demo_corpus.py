"""The ingestion core on the shipped demo corpus PDFs: abstract and conclusion found verbatim,
references cut, gold evidence kept in the cleaned text."""

import re

import pytest
import yaml

from rag_pipeline.datasets import load_demo_questions
from rag_pipeline.ingest.chunking import chunk_text
from rag_pipeline.ingest.markdown import pdf_to_markdown
from rag_pipeline.ingest.text import process_markdown
from rag_pipeline.settings import REPO_ROOT

CORPUS = REPO_ROOT / "data" / "demo_corpus"
PAPER_IDS = sorted(p.stem for p in (CORPUS / "pdf").glob("*.pdf"))


def squeeze(text: str) -> str:
    return " ".join(text.split())


def test_the_demo_corpus_is_there():
    assert len(PAPER_IDS) >= 3


@pytest.fixture(scope="module")
def processed():
    return {
        paper: process_markdown(pdf_to_markdown(CORPUS / "pdf" / f"{paper}.pdf"))
        for paper in PAPER_IDS
    }


@pytest.mark.parametrize("paper", PAPER_IDS)
def test_sections_match_the_source_and_references_are_cut(processed, paper):
    source = yaml.safe_load((CORPUS / "sources" / f"{paper}.yaml").read_text(encoding="utf-8"))
    result = processed[paper]
    assert result.sections.missing == []
    assert squeeze(result.sections.abstract) == squeeze(source["abstract"])
    # A paper without a conclusion heading ends in Discussion, which stands in (the fallback).
    endings = [s for s in source["sections"] if s["heading"].lower().startswith("conclusion")]
    endings = endings or [s for s in source["sections"] if s["heading"].lower().startswith("discussion")]
    conclusion = endings[-1]
    assert squeeze(result.sections.conclusion) == squeeze(" ".join(conclusion["paragraphs"]))
    assert result.references_heading == "References"
    for reference in source["references"]:
        assert squeeze(reference)[:40] not in squeeze(result.text)
    assert not re.search(r"^\s*\d+\s*$", result.text, re.MULTILINE), (
        "a page number survived cleaning"
    )


@pytest.mark.parametrize("paper", PAPER_IDS)
def test_gold_evidence_survives_cleaning_and_chunking(processed, paper):
    text = processed[paper].text
    quotes = [
        q
        for question in load_demo_questions()
        if question.paper_id == paper
        for q in question.gold_evidence
    ]
    assert quotes
    for quote in quotes:
        assert squeeze(quote) in squeeze(text), quote
    chunks = chunk_text(paper, text)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    headings = {c.section for c in chunks}
    assert "Abstract" in headings and any(h.endswith(("Conclusion", "Discussion")) for h in headings)
