"""One document end to end, without Dagster: the ``rag-pipeline ingest PDF_OR_ARXIV_ID --out DIR``
command. The Dagster assets run the same steps one asset at a time."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

from rag_pipeline import atomic
from rag_pipeline.datasets import PaperSpec, parse_arxiv_ref
from rag_pipeline.ids import InvalidIdError, slugify, validate_slug
from rag_pipeline.ingest.chunking import chunk_text, chunks_to_frame
from rag_pipeline.ingest.errors import InvalidSourceError
from rag_pipeline.ingest.fetch import fetch_pdf
from rag_pipeline.ingest.markdown import markdown_engine, pdf_to_markdown
from rag_pipeline.ingest.text import process_markdown

OUTPUT_FILES = {
    "pdf": "paper.pdf",
    "markdown": "markdown.md",
    "text": "text.md",
    "sections": "sections.json",
    "chunks": "chunks.parquet",
}


def paper_spec_for_source(source: str, paper_id: str | None = None) -> PaperSpec:
    """A PaperSpec for a local PDF path or an arXiv id/URL; the id defaults to a slug of the file
    name or the arXiv id. Raises InvalidSourceError when ``source`` is neither."""
    label = paper_id or source
    local = Path(source).expanduser()
    arxiv_id = version = None
    if not local.is_file():
        try:
            arxiv_id, version = parse_arxiv_ref(source)
        except ValueError:
            reason = (
                f"local PDF not found: {local}"
                if source.lower().endswith(".pdf")
                else f"{source!r} is neither an existing PDF file nor an arXiv id or URL "
                "(e.g. 1706.03762, 1706.03762v7, https://arxiv.org/abs/1706.03762)"
            )
            raise InvalidSourceError(label, reason) from None
    try:
        if paper_id is not None:
            chosen = validate_slug(paper_id, "paper id")
        else:
            chosen = slugify(f"{arxiv_id}{version or ''}" if arxiv_id else local.stem, "paper id")
    except InvalidIdError as exc:
        raise InvalidSourceError(label, f"{exc}; pass an explicit paper id") from exc
    if arxiv_id:
        return PaperSpec(id=chosen, arxiv_id=arxiv_id, arxiv_version=version)
    return PaperSpec(id=chosen, pdf_path=local.resolve())


def ingest_document(
    source: str,
    out_dir: Path,
    *,
    paper_id: str | None = None,
    chunk_size: int = 800,
    chunk_overlap: int = 100,
    **fetch_options,
) -> dict:
    """Fetch, validate, convert, clean, extract sections and chunk one paper into ``out_dir``.

    ``source`` is a local PDF path or an arXiv id/URL. Writes ``paper.pdf``, ``markdown.md``,
    ``text.md``, ``sections.json`` and ``chunks.parquet``; everything is computed in a staging
    directory first, so a failure at any step changes nothing in ``out_dir``. ``fetch_options`` go
    to ``fetch_pdf`` (retries, backoff_s, timeout_s, pdf_url...). Returns a JSON-ready summary.
    """
    spec = paper_spec_for_source(str(source), paper_id)
    if not chunk_size > chunk_overlap >= 0:  # fail before downloading anything
        raise ValueError(
            f"need chunk_size > chunk_overlap >= 0, got {chunk_size} and {chunk_overlap}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / file_name for name, file_name in OUTPUT_FILES.items()}
    timings: dict[str, float] = {}

    with tempfile.TemporaryDirectory(prefix=".ingest-", dir=out_dir) as staging:
        started = time.perf_counter()
        record = fetch_pdf(spec, Path(staging), file_name=OUTPUT_FILES["pdf"], **fetch_options)
        timings["fetch"] = time.perf_counter() - started

        started = time.perf_counter()
        markdown = pdf_to_markdown(record.path, paper_id=spec.id)
        timings["markdown"] = time.perf_counter() - started

        started = time.perf_counter()
        paper_text = process_markdown(markdown)
        timings["text"] = time.perf_counter() - started

        started = time.perf_counter()
        chunks = chunk_text(spec.id, paper_text.text, chunk_size, chunk_overlap)
        timings["chunk"] = time.perf_counter() - started

        started = time.perf_counter()
        sections = paper_text.sections
        atomic.write_text(paths["markdown"], markdown)
        atomic.write_text(paths["text"], paper_text.text)
        atomic.write_json(
            paths["sections"],
            {"paper_id": spec.id, **paper_text.sections_record()},
        )
        atomic.write_parquet(paths["chunks"], chunks_to_frame(chunks))
        os.replace(
            record.path, paths["pdf"]
        )  # same file system: an atomic rename of a validated file
        timings["write"] = time.perf_counter() - started

    record = dataclasses.replace(record, path=paths["pdf"])
    return {
        "paper_id": spec.id,
        "source": str(source),
        "title": record.title,
        "source_url": record.source_url,
        "arxiv_id": record.arxiv_id,
        "arxiv_version": record.arxiv_version,
        "sha256": record.sha256,
        "n_bytes": record.n_bytes,
        "pages": record.n_pages,
        "markdown_engine": markdown_engine(),
        "n_chars_markdown": paper_text.n_chars_markdown,
        "n_chars_text": paper_text.n_chars_text,
        "references_heading": paper_text.references_heading,
        "sections_found": [
            name for name in ("abstract", "conclusion") if name not in sections.missing
        ],
        "sections_missing": list(sections.missing),
        "conclusion_source": sections.conclusion_source,
        "n_chunks": len(chunks),
        "chunk_size": chunk_size,
        "chunk_overlap": chunk_overlap,
        "paths": {name: str(path) for name, path in paths.items()},
        "timings_s": {step: round(seconds, 4) for step, seconds in timings.items()},
    }
