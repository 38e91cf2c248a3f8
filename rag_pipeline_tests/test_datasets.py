"""The paper registry and the question sets: validation, skipped entries, content hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_pipeline.datasets import (
    PaperSpec,
    RegistryError,
    load_demo_questions,
    load_papers,
    load_questions,
    paper_from_entry,
    papers_by_id,
    questions_for_paper,
    read_papers,
)
from rag_pipeline.settings import REPO_ROOT

ATTENTION = '  - {id: attention, arxiv: "https://arxiv.org/abs/1706.03762v7", title: "Attention", collection: study}\n'
LOCAL = "  - {id: local-paper, pdf: pdfs/local.pdf}\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_registry_resolves_sources():
    papers = papers_by_id(REPO_ROOT / "data" / "papers.yaml")
    assert len(papers) == 16 and not read_papers(REPO_ROOT / "data" / "papers.yaml").errors
    attention = papers["attention"]
    assert (attention.arxiv_id, attention.arxiv_version, attention.pdf_path) == ("1706.03762", None, None)
    assert attention.source == "https://arxiv.org/abs/1706.03762"
    demo = papers["demo-sparse-routing"]
    assert demo.pdf_path == REPO_ROOT / "data" / "demo_corpus" / "pdf" / "demo-sparse-routing.pdf"
    assert demo.collection == "demo" and demo.arxiv_id is None


def test_a_bad_entry_is_skipped_and_reported_while_the_others_load(tmp_path, caplog):
    registry = write(
        tmp_path / "papers.yaml",
        "papers:\n"
        + ATTENTION
        + "  - {id: Bad Slug, arxiv: 2005.11401}\n"
        + "  - {id: two-sources, arxiv: 2005.11401, pdf: x.pdf}\n"
        + "  - {arxiv: 2005.11401}\n"
        + "  - {id: typo, pdf: x.pdf, colection: demo}\n"
        + LOCAL,
    )
    report = read_papers(registry)
    assert [paper.id for paper in report.entries] == ["attention", "local-paper"]
    assert [(error.index, error.key) for error in report.errors] == [
        (1, "Bad Slug"),
        (2, "two-sources"),
        (3, None),
        (4, "typo"),
    ]
    bad_slug, two_sources, no_id, typo = (str(error) for error in report.errors)
    assert bad_slug.startswith(f"{registry} entry 1: paper 'Bad Slug': id: invalid paper id 'Bad Slug'")
    assert two_sources.startswith(f"{registry} entry 2: paper 'two-sources': ")
    assert "needs exactly one of 'arxiv' or 'pdf'" in two_sources
    assert no_id == f"{registry} entry 3: id: Field required"
    assert typo.startswith(f"{registry} entry 4: paper 'typo': unknown paper configuration key(s) ['colection']")

    with caplog.at_level("WARNING"):
        papers = load_papers(registry)
    assert [paper.id for paper in papers] == ["attention", "local-paper"]
    assert f"{registry} entry 1: paper 'Bad Slug'" in caplog.text
    assert papers[1].pdf_path == (tmp_path / "pdfs" / "local.pdf").resolve()
    assert set(papers_by_id(registry)) == {"attention", "local-paper"}


def test_an_invalid_arxiv_reference_fails_only_its_paper_partition(tmp_path):
    # Kept from before: the entry loads with `source_error`; ingesting it fails with that message.
    registry = write(tmp_path / "papers.yaml", "papers:\n  - {id: broken, arxiv: not-an-id}\n" + LOCAL)
    report = read_papers(registry)
    assert not report.errors
    broken = report.entries[0]
    assert broken.id == "broken" and broken.arxiv_id is None
    assert broken.source_error.startswith("invalid arXiv reference 'not-an-id'")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("papers: [\n", "not valid YAML"),
        ("- {id: a, pdf: a.pdf}\n", "expected a mapping with a 'papers' list"),
        ("papers:\n" + LOCAL + LOCAL, "duplicate paper id 'local-paper'"),
    ],
)
def test_a_broken_registry_file_raises(tmp_path, text, message):
    with pytest.raises(RegistryError, match=message):
        read_papers(write(tmp_path / "papers.yaml", text))


def test_a_missing_registry_raises(tmp_path):
    with pytest.raises(RegistryError, match="registry file not found"):
        load_papers(tmp_path / "missing.yaml")


def test_paper_from_entry_raises_naming_the_entry_and_the_field(tmp_path):
    with pytest.raises(RegistryError, match=r"^papers.yaml entry 7: paper 'x': title: Input should be a valid string"):
        paper_from_entry({"id": "x", "pdf": "x.pdf", "title": ["a list"]}, tmp_path, "papers.yaml entry 7")
    # YAML numbers in text fields are read as written, as before
    numeric = paper_from_entry({"id": 2024, "pdf": "x.pdf", "title": 42}, tmp_path)
    assert (numeric.id, numeric.title) == ("2024", "42")


def _paper_hashes(registry: Path, text: str) -> dict[str, str]:
    return {paper.id: paper.content_hash() for paper in load_papers(write(registry, text))}


def test_content_hash_covers_exactly_the_entry_own_settings(tmp_path):
    registry = tmp_path / "papers.yaml"
    base = _paper_hashes(registry, "papers:\n" + ATTENTION + LOCAL)
    assert base["attention"] != base["local-paper"]
    retitled = _paper_hashes(registry, "papers:\n" + ATTENTION.replace('"Attention"', '"Attention!"') + LOCAL)
    assert retitled["attention"] != base["attention"] and retitled["local-paper"] == base["local-paper"]
    moved = _paper_hashes(registry, "papers:\n" + ATTENTION + LOCAL.replace("local.pdf", "other.pdf"))
    assert moved["attention"] == base["attention"] and moved["local-paper"] != base["local-paper"]
    reordered = _paper_hashes(
        registry,
        "# comment\npapers:\n"
        "  - collection: study   # the study\n    title: Attention\n"
        '    arxiv: "https://arxiv.org/abs/1706.03762v7"\n    id: attention\n'
        "  - {pdf: pdfs/local.pdf, id: local-paper}\n",
    )
    assert reordered == base


def test_paper_spec_is_an_immutable_section():
    spec = PaperSpec(id="tiny", pdf_path="x.pdf")
    assert spec.pdf_path == Path("x.pdf") and spec.source == "x.pdf"
    with pytest.raises(ValueError):
        spec.id = "other"  # type: ignore[misc]
    assert PaperSpec(id="tiny", pdf_path=Path("x.pdf")) == spec
    assert PaperSpec(id="tiny").content_hash() != spec.content_hash()


def test_shipped_questions_load_for_their_papers():
    demo = load_demo_questions()
    assert demo and all(q.collection == "demo" and q.gold_evidence for q in demo)
    assert len({q.question_id for q in demo}) == len(demo)
    everything = load_questions()
    assert {q.collection for q in everything} == {"demo", "reference_study"}
    first = demo[0]
    assert first in questions_for_paper(first.paper_id)


def test_a_bad_question_is_an_error_naming_file_entry_and_field(tmp_path):
    questions = tmp_path / "demo_corpus" / "questions.yaml"
    questions.parent.mkdir()
    write(
        questions,
        "questions:\n"
        "  - {id: 'p:q01', paper: p, question: 'Q?', reference_answer: 6, gold_evidence: [a]}\n"
        "  - {id: 'p:q02', paper: P/Q, question: 'Q?'}\n",
    )
    with pytest.raises(RegistryError) as excinfo:
        load_demo_questions(tmp_path)
    lines = str(excinfo.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{questions} entry 1: question 'p:q02': paper: invalid paper id 'P/Q'")
    assert lines[1] == f"{questions} entry 1: question 'p:q02': reference_answer: Field required"
    write(questions, "questions:\n  - {id: 'p:q01', paper: p, question: 'Q?', reference_answer: 6}\n")
    (question,) = load_demo_questions(tmp_path)
    assert (question.question_id, question.reference_answer, question.gold_evidence) == ("p:q01", "6", ())


def test_question_ids_are_unique(tmp_path):
    questions = tmp_path / "demo_corpus" / "questions.yaml"
    questions.parent.mkdir()
    entry = "  - {id: 'p:q01', paper: p, question: 'Q?', reference_answer: A}\n"
    write(questions, "questions:\n" + entry + entry)
    with pytest.raises(RegistryError, match="duplicate question id 'p:q01'"):
        load_demo_questions(tmp_path)
