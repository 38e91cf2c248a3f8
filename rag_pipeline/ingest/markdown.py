"""PDF → markdown with pymupdf4llm.

Engine choice: pymupdf4llm 1.28 uses the ``pymupdf-layout`` engine by default whenever that package
is importable (it is a dependency here). The layout engine is an ONNX graph network shipped inside
the wheel: it runs offline, in-process (one worker) and gave byte-identical output across runs and
processes in our checks. We keep it because it emits real markdown headings (``#``/``##``/``###``
with levels from the layout, including sub-sections the legacy engine left as bold text), restores
reading order in multi-column papers and unwraps paragraphs. Page headers and footers are kept
(``header=True, footer=True``): with ``header=False`` the layout model dropped a paper's title set
near the top of page 1; isolated page numbers are removed by ``clean_markdown`` instead. OCR is
off: it would need Tesseract and makes output machine-dependent; image-only PDFs are rejected
earlier by ``validate_pdf``. Without
``pymupdf-layout`` pymupdf4llm falls back to its legacy heuristic engine (font-size headings), which
``markdown_engine()`` reports so that the engine is part of each stored result's identity.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf4llm

from rag_pipeline.ingest.errors import CorruptPdfError

LAYOUT_OPTIONS = {"header": True, "footer": True, "use_ocr": False}


def _layout_active() -> bool:
    return bool(getattr(pymupdf4llm, "_use_layout", False))


def markdown_engine() -> str:
    """The converter and mode in use, e.g. ``pymupdf4llm 1.28.2 (layout)``.

    Part of a stored result's identity: another engine gives other markdown.
    """
    return f"pymupdf4llm {pymupdf4llm.__version__} ({'layout' if _layout_active() else 'legacy'})"


def pdf_to_markdown(path: Path, *, paper_id: str | None = None) -> str:
    """Convert the PDF at ``path`` to markdown (no progress bar, no images, no page separators).

    Any converter failure is raised as ``CorruptPdfError`` naming ``paper_id`` (or the file name).
    """
    path = Path(path)
    options = {
        "show_progress": False,
        "write_images": False,
        "embed_images": False,
        "page_separators": False,
    }
    if _layout_active():
        options.update(LAYOUT_OPTIONS)
    try:
        return pymupdf4llm.to_markdown(str(path), **options)
    except Exception as exc:  # the converter raises anything from ValueError to RuntimeError
        raise CorruptPdfError(
            paper_id or path.name,
            f"pymupdf4llm could not convert {path}: {type(exc).__name__}: {exc}",
        ) from exc
