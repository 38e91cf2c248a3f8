"""The inputs' versions at registry scale: the registry sensor computes them every 30 s, so their
cost must not grow with the square of the papers (docs/scale.md)."""

from __future__ import annotations

import shutil

import yaml

from rag_pipeline.datasets import load_reference_summaries, questions_for_paper, read_papers
from rag_pipeline.hashing import content_hash
from rag_pipeline.settings import REPO_ROOT
from rag_pipeline.versioned_inputs import paper_question_versions
from rag_pipeline_tests.suite_data import SUITE_DATA

DEMO_PDF = REPO_ROOT / "data" / "demo_corpus" / "pdf" / "demo-kv-quant.pdf"


def _data_with_extra_papers(tmp_path, monkeypatch, extra: int):
    data = tmp_path / f"data-{extra}"
    shutil.copytree(SUITE_DATA, data)
    registry = yaml.safe_load((data / "papers.yaml").read_text(encoding="utf-8"))
    registry["papers"] += [{"id": f"extra-{i:03d}", "pdf": str(DEMO_PDF), "collection": "extra"} for i in range(extra)]
    (data / "papers.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("RAG_PIPELINE_DATA", str(data))


def _yaml_documents_read(monkeypatch) -> list[int]:
    """Counts the YAML documents parsed from now on (every registry and question file goes through yaml.load)."""
    calls = [0]
    load = yaml.load

    def counting(*args, **kwargs):
        calls[0] += 1
        return load(*args, **kwargs)

    monkeypatch.setattr(yaml, "load", counting)
    return calls


def test_each_papers_question_version_hashes_exactly_its_questions_and_summary(tmp_path, monkeypatch):
    _data_with_extra_papers(tmp_path, monkeypatch, 3)
    versions = paper_question_versions()
    summaries = load_reference_summaries()
    papers = [spec.id for spec in read_papers().entries]
    assert sorted(versions) == sorted(papers)
    for paper in papers:  # the definition, paper by paper
        expected = content_hash({"questions": [repr(q) for q in questions_for_paper(paper)],
                                 "summary": summaries.get(paper, "")})
        assert versions[paper] == expected, paper
    # A paper without questions still has a version, and it differs from one with questions.
    assert versions["extra-000"] != versions["demo-kv-quant"]


def test_the_question_versions_read_each_file_once_whatever_the_number_of_papers(tmp_path, monkeypatch):
    extra = 40
    _data_with_extra_papers(tmp_path, monkeypatch, 0)
    calls = _yaml_documents_read(monkeypatch)
    paper_question_versions()
    few = calls[0]
    _data_with_extra_papers(tmp_path, monkeypatch, extra)
    calls[0] = 0
    versions = paper_question_versions()
    assert len(versions) >= extra
    assert calls[0] == few, f"{calls[0]} YAML documents read for {extra} more papers (was {few})"
