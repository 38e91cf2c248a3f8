"""Real PDFs rendered with pymupdf inside the tests, and a scripted local HTTP server."""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf
import pytest

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 72

SAMPLE_BLOCKS: list[tuple[str, str]] = [
    ("title", "Tiny Retrievers for Long Papers"),
    ("heading", "Abstract"),
    (
        "para",
        (
            "We study retrieval over long scientific papers with a tiny dense retriever. "
            "Our method improves recall at five by twelve points over BM25 "
            "while keeping latency low."
        ),
    ),
    ("heading", "1 Introduction"),
    ("para", "Retrieval-augmented generation needs robust chunking of documents. " * 6),
    ("heading", "2 Method"),
    (
        "para",
        (
            "The relevance score is s(q, d) = cos(E(q), E(d)) / t with temperature t = 0.05. "
            "We train with the Adam optimiser at a learning rate of 0.001 for three epochs."
        ),
    ),
    ("heading", "3 Results"),
    ("para", "The tiny retriever reaches a recall at five of 0.81 on the test set. " * 5),
    ("heading", "4 Conclusion"),
    (
        "para",
        (
            "Tiny dense retrievers are enough for single-paper question answering. "
            "Future work will add OCR for scanned pages."
        ),
    ),
    ("heading", "References"),
    ("para", "[1] A. Author. A paper about retrieval. 2020.\n[2] B. Author. Another paper. 2021."),
    ("heading", "A Appendix"),
    ("para", "Extra material that follows the references."),
]


def render_pdf(path: Path, blocks: list[tuple[str, str]], *, page_numbers: bool = False) -> Path:
    """Render (kind, text) blocks to a real PDF: titles and headings in bold larger fonts,
    paragraphs wrapped into text boxes; new pages as needed."""
    doc = pymupdf.open()
    page = doc.new_page(width=PAGE_WIDTH, height=PAGE_HEIGHT)
    y = MARGIN

    def new_page():
        nonlocal page, y
        page = doc.new_page(width=PAGE_WIDTH, height=PAGE_HEIGHT)
        y = MARGIN

    for kind, text in blocks:
        if kind in ("title", "heading"):
            size = 18 if kind == "title" else 13
            if y + 3 * size > PAGE_HEIGHT - MARGIN:
                new_page()
            page.insert_text((MARGIN, y + size), text, fontsize=size, fontname="hebo")
            y += size + 14
        else:
            height = 40 + 14 * (len(text) // 80 + text.count("\n") + 1)
            if y + height > PAGE_HEIGHT - MARGIN:
                new_page()
            rect = pymupdf.Rect(MARGIN, y, PAGE_WIDTH - MARGIN, y + height)
            spare = page.insert_textbox(rect, text, fontsize=10, fontname="helv")
            assert spare >= 0, f"text box too small for {text[:40]!r}"
            y += height - spare + 8
    if page_numbers:
        for number, each in enumerate(doc, start=1):
            each.insert_text(
                (PAGE_WIDTH / 2, PAGE_HEIGHT - 30), str(number), fontsize=9, fontname="helv"
            )
    doc.save(path)
    doc.close()
    return Path(path)


def render_image_only_pdf(path: Path) -> Path:
    """A 'scanned' page: one image, no text layer."""
    doc = pymupdf.open()
    page = doc.new_page(width=PAGE_WIDTH, height=PAGE_HEIGHT)
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), False)
    pixmap.clear_with(180)
    page.insert_image(pymupdf.Rect(72, 72, 400, 400), pixmap=pixmap)
    doc.save(path)
    doc.close()
    return Path(path)


@pytest.fixture(scope="session")
def sample_pdf(tmp_path_factory) -> Path:
    return render_pdf(
        tmp_path_factory.mktemp("pdfs") / "sample.pdf", SAMPLE_BLOCKS, page_numbers=True
    )


@pytest.fixture(scope="session")
def sample_markdown(sample_pdf) -> str:
    from rag_pipeline.ingest.markdown import pdf_to_markdown

    return pdf_to_markdown(sample_pdf)


# ------------------------------------------------------------------------------ local HTTP server


@dataclass
class Reply:
    """One scripted answer: a status, a body, optionally a hang-up after ``cut_after`` bytes."""

    status: int = 200
    body: bytes = b""
    cut_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # stall before answering (a timeout)


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 answering GETs from a script (the last reply repeats)."""

    def __init__(self, replies: list[Reply]):
        self.replies = list(replies)
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server.requests.append(self.path)
                index = min(len(server.requests), len(server.replies)) - 1
                reply = server.replies[index]
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                self.send_response(reply.status)
                self.send_header(
                    "Content-Type", "application/pdf" if reply.status == 200 else "text/plain"
                )
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.cut_after is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if reply.cut_after is None:
                    self.wfile.write(reply.body)
                else:  # announce the full length, send part of it, hang up
                    self.wfile.write(reply.body[: reply.cut_after])
                    self.wfile.flush()
                    self.close_connection = True

            def log_message(self, *args):  # keep the test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
