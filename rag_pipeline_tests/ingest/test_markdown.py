"""PDF → markdown with the real converter on a rendered PDF."""

import re

import pymupdf4llm
import pytest

from rag_pipeline.ingest.errors import CorruptPdfError
from rag_pipeline.ingest.markdown import markdown_engine, pdf_to_markdown


def test_headings_come_out_as_markdown_headings(sample_markdown):
    headings = [_.strip("* ") for _ in re.findall(r"^#{1,6} (.+)$", sample_markdown, re.MULTILINE)]
    for expected in ["Abstract", "1 Introduction", "2 Method", "4 Conclusion", "References"]:
        assert expected in headings
    assert "We study retrieval over long scientific papers" in sample_markdown


def test_conversion_is_deterministic(sample_pdf, sample_markdown):
    assert pdf_to_markdown(sample_pdf) == sample_markdown


def test_engine_names_converter_version_and_mode():
    engine = markdown_engine()
    assert engine.startswith(f"pymupdf4llm {pymupdf4llm.__version__} (")
    assert engine.endswith("(layout)") == bool(getattr(pymupdf4llm, "_use_layout", False))


def test_converter_failure_is_a_corrupt_pdf_error_naming_the_paper(tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50)
    with pytest.raises(
        CorruptPdfError, match=r"^paper 'p1': pymupdf4llm could not convert .*broken\.pdf"
    ):
        pdf_to_markdown(broken, paper_id="p1")
    with pytest.raises(CorruptPdfError, match=r"^paper 'broken\.pdf': "):
        pdf_to_markdown(broken)
