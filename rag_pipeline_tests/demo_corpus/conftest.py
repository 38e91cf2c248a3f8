"""Shared fixtures: the shipped demo sources and the markdown pymupdf4llm makes of their PDFs."""

from __future__ import annotations

import re

import pymupdf4llm
import pytest

from rag_pipeline.demo_corpus.build import load_sources, pdf_path


def normalise(text: str) -> str:
    """Lower-case, drop markdown emphasis (`*`, `_`) and collapse whitespace."""
    return " ".join(re.sub(r"[*_]", "", text).lower().split())


@pytest.fixture(scope="session")
def demo_sources() -> dict[str, dict]:
    return load_sources()


@pytest.fixture(scope="session")
def demo_markdown(demo_sources) -> dict[str, str]:
    """pymupdf4llm markdown of every shipped demo PDF, by paper id (converted once per session)."""
    return {
        paper_id: pymupdf4llm.to_markdown(str(pdf_path(paper_id)), show_progress=False)
        for paper_id in demo_sources
    }
