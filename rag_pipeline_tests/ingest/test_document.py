"""``ingest_document`` end to end on rendered PDFs (the ``rag-pipeline ingest`` command)."""

import json

import pandas as pd
import pytest

from rag_pipeline.ingest.document import OUTPUT_FILES, ingest_document, paper_spec_for_source
from rag_pipeline.ingest.errors import InvalidSourceError, NoTextLayerError
from rag_pipeline_tests.ingest.conftest import Reply, ScriptedServer, render_image_only_pdf


def test_ingest_local_pdf_writes_every_output(sample_pdf, tmp_path):
    out = tmp_path / "out"
    summary = ingest_document(str(sample_pdf), out, chunk_size=300, chunk_overlap=50)

    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES.values())  # no staging left
    assert summary["paper_id"] == "sample"
    assert summary["pages"] >= 1 and summary["sections_found"] == ["abstract", "conclusion"]
    assert summary["sections_missing"] == [] and summary["references_heading"] == "References"
    assert set(summary["timings_s"]) == {"fetch", "markdown", "text", "chunk", "write"}
    assert summary["paths"]["pdf"] == str(out / "paper.pdf")
    assert (out / "paper.pdf").read_bytes() == sample_pdf.read_bytes()

    text = (out / "text.md").read_text(encoding="utf-8")
    assert "Extra material that follows the references" not in text  # references and appendix cut
    assert "A. Author. A paper about retrieval" not in text
    assert (out / "markdown.md").read_text(encoding="utf-8").count("## **References**") == 1

    sections = json.loads((out / "sections.json").read_text(encoding="utf-8"))
    assert sections["abstract"].startswith("We study retrieval over long scientific papers")
    assert sections["conclusion"].startswith("Tiny dense retrievers are enough")
    assert sections["missing"] == [] and sections["references_heading"] == "References"
    assert "1 Introduction" in sections["headings"]

    chunks = pd.read_parquet(out / "chunks.parquet")
    assert len(chunks) == summary["n_chunks"] > 1
    assert set(chunks.columns) >= {
        "chunk_id",
        "paper_id",
        "index",
        "text",
        "section",
        "start",
        "end",
    }
    for row in chunks.itertuples():
        assert text[row.start : row.end] == row.text and len(row.text) <= 300
        assert row.chunk_id == f"sample:{row.index}"
    assert "1 Introduction" in set(chunks["section"])


def test_rerun_with_new_settings_replaces_outputs(sample_pdf, tmp_path):
    first = ingest_document(
        str(sample_pdf), tmp_path, paper_id="tiny", chunk_size=800, chunk_overlap=100
    )
    second = ingest_document(
        str(sample_pdf), tmp_path, paper_id="tiny", chunk_size=200, chunk_overlap=20
    )
    assert second["n_chunks"] > first["n_chunks"]
    assert len(pd.read_parquet(tmp_path / "chunks.parquet")) == second["n_chunks"]
    assert set(pd.read_parquet(tmp_path / "chunks.parquet")["paper_id"]) == {"tiny"}


def test_failed_ingest_leaves_the_output_directory_untouched(sample_pdf, tmp_path):
    out = tmp_path / "out"
    ingest_document(str(sample_pdf), out, paper_id="tiny")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    scanned = render_image_only_pdf(tmp_path / "scan.pdf")
    with pytest.raises(NoTextLayerError, match="^paper 'tiny': .*OCR"):
        ingest_document(str(scanned), out, paper_id="tiny")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_arxiv_source_downloads_and_derives_the_paper_id(sample_pdf, tmp_path):
    with ScriptedServer([Reply(200, sample_pdf.read_bytes())]) as server:
        summary = ingest_document(
            "https://arxiv.org/abs/1706.03762v7",
            tmp_path,
            pdf_url=server.url + "/pdf/1706.03762v7",
            backoff_s=0.01,
        )
    assert summary["paper_id"] == "1706.03762v7"
    assert (summary["arxiv_id"], summary["arxiv_version"]) == ("1706.03762", "v7")
    assert summary["source_url"].endswith("/pdf/1706.03762v7")


@pytest.mark.parametrize(
    "source, message",
    [
        ("not a paper", "neither an existing PDF file nor an arXiv id"),
        ("missing/paper.pdf", "local PDF not found"),
        ("1706.037", "neither an existing PDF file nor an arXiv id"),
    ],
)
def test_bad_sources_fail_before_anything_is_written(source, message, tmp_path):
    with pytest.raises(InvalidSourceError, match=message):
        ingest_document(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_paper_id_is_a_validated_slug(sample_pdf, tmp_path):
    assert paper_spec_for_source(str(sample_pdf)).id == "sample"
    named = tmp_path / "My Paper (v2).pdf"
    named.write_bytes(sample_pdf.read_bytes())
    assert paper_spec_for_source(str(named)).id == "my-paper-v2"
    with pytest.raises(InvalidSourceError, match="invalid paper id"):
        paper_spec_for_source(str(sample_pdf), paper_id="../escape")
    cyrillic = tmp_path / "Статья.pdf"
    cyrillic.write_bytes(b"")
    with pytest.raises(InvalidSourceError, match="pass an explicit paper id"):
        paper_spec_for_source(str(cyrillic))


def test_invalid_chunk_settings_fail_before_fetching(sample_pdf, tmp_path):
    with pytest.raises(ValueError, match="chunk_size > chunk_overlap"):
        ingest_document(str(sample_pdf), tmp_path / "out", chunk_size=100, chunk_overlap=100)
    assert not (tmp_path / "out").exists()
