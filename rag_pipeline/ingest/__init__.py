"""Ingestion core (no Dagster): fetch and validate a PDF, convert it to markdown, cut the
references, clean, find the abstract and conclusion, and chunk with exact character offsets.

Names are imported lazily (PEP 562): ``from rag_pipeline.ingest.errors import IngestError`` stays
cheap instead of loading pymupdf4llm, pandas and the arXiv client.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "chunking": ("Chunk", "chunk_text", "chunks_to_frame"),
    "document": ("ingest_document", "paper_spec_for_source"),
    "errors": (
        "CorruptPdfError",
        "DownloadError",
        "EncryptedPdfError",
        "IngestError",
        "InvalidSourceError",
        "NoTextLayerError",
        "NotAPdfError",
    ),
    "fetch": ("PdfRecord", "fetch_pdf", "resolve_arxiv", "validate_pdf"),
    "markdown": ("markdown_engine", "pdf_to_markdown"),
    "text": (
        "ABSTRACT_HEADINGS",
        "CONCLUSION_FALLBACK_HEADINGS",
        "CONCLUSION_HEADINGS",
        "REFERENCE_HEADINGS",
        "PaperText",
        "Sections",
        "clean_markdown",
        "extract_sections",
        "markup_share",
        "process_markdown",
        "split_front_matter",
        "strip_converter_markup",
        "trim_references",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = [name for names in _EXPORTS.values() for name in names]


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'rag_pipeline.ingest' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rag_pipeline.ingest.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
