"""Bring a paper's PDF onto disk (local copy or arXiv download) and check that it is usable.

A PDF reaches its target path only after it was fully written *and* validated: downloads stream
into a temporary file beside the target (``rag_pipeline.atomic``), so a failure at any point leaves
neither a partial file nor a temporary one behind.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import arxiv
import httpx
import pymupdf
import requests
import tenacity
from tqdm.auto import tqdm

from rag_pipeline import atomic
from rag_pipeline.datasets import PaperSpec, parse_arxiv_ref
from rag_pipeline.hashing import sha256_file
from rag_pipeline.ingest.errors import (
    CorruptPdfError,
    DownloadError,
    EncryptedPdfError,
    InvalidSourceError,
    NotAPdfError,
    NoTextLayerError,
)

log = logging.getLogger(__name__)

ARXIV_PDF_URL = "https://arxiv.org/pdf/{id}{version}"
USER_AGENT = "rag_pipeline/0.1 (+https://github.com; research benchmark)"
# The PDF spec lets the header start anywhere in the first 1024 bytes; readers accept that.
HEADER_WINDOW = 1024
# A complete file ends with %%EOF, possibly followed by whitespace or a little padding.
TRAILER_WINDOW = 2048
MAX_RETRY_AFTER_S = 120.0
RETRYABLE_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class PdfRecord:
    """A validated PDF on disk and where it came from (the root of every score's lineage)."""

    paper_id: str
    path: Path
    sha256: str
    n_bytes: int
    n_pages: int
    source_url: str
    arxiv_id: str | None
    arxiv_version: str | None
    title: str

    def to_dict(self) -> dict:
        """JSON-ready fields (the path as a string)."""
        record = asdict(self)
        record["path"] = str(self.path)
        return record


@dataclass(frozen=True)
class ArxivMetadata:
    """What the arXiv API said about a paper, or the canonical fallback when it was unreachable."""

    pdf_url: str
    version: str | None
    title: str
    from_api: bool


class _TimeoutSession(requests.Session):
    """The arxiv package gives its session no timeout; a stalled API must not hang an ingestion."""

    def __init__(self, timeout_s: float):
        super().__init__()
        self._timeout_s = timeout_s

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", self._timeout_s)
        return super().request(*args, **kwargs)


def make_arxiv_client(timeout_s: float = 30.0, num_retries: int = 2) -> arxiv.Client:
    """An ``arxiv.Client`` for single-paper lookups; its HTTP calls time out after ``timeout_s``."""
    client = arxiv.Client(page_size=1, delay_seconds=3.0, num_retries=num_retries)
    client._session = _TimeoutSession(timeout_s)  # the package exposes no timeout option
    return client


def _canonical_pdf_url(arxiv_id: str, version: str | None) -> str:
    return ARXIV_PDF_URL.format(id=arxiv_id, version=version or "")


def _version_of(short_id: str) -> str | None:
    match = re.search(r"(v\d+)$", short_id)
    return match.group(1) if match else None


def resolve_arxiv(
    paper_id: str,
    arxiv_ref: str,
    version: str | None = None,
    *,
    client: arxiv.Client | None = None,
    timeout_s: float = 30.0,
) -> ArxivMetadata:
    """Resolve an arXiv paper's title, version and PDF URL with the ``arxiv`` package.

    ``arxiv_ref`` is an id (``1706.03762``, ``1706.03762v7``) or an abs/pdf URL; ``version`` pins a
    version (the registry's), otherwise the latest one is used. When the API cannot be reached the
    canonical ``https://arxiv.org/pdf/<id><version>`` URL is returned (``from_api=False``) so that
    the download decides; an invalid id raises ``InvalidSourceError``.
    """
    try:
        arxiv_id, ref_version = parse_arxiv_ref(arxiv_ref)
    except ValueError as exc:
        raise InvalidSourceError(paper_id, str(exc)) from exc
    if version is not None and not re.fullmatch(r"v\d+", version):
        raise InvalidSourceError(
            paper_id, f"invalid arXiv version {version!r}: expected v1, v2, ..."
        )
    version = version or ref_version
    query_id = f"{arxiv_id}{version or ''}"
    client = client or make_arxiv_client(timeout_s=timeout_s)
    try:
        result = next(iter(client.results(arxiv.Search(id_list=[query_id], max_results=1))), None)
    except (arxiv.ArxivError, requests.RequestException, OSError, ValueError) as exc:
        log.warning(
            "paper %r: arXiv metadata lookup for %s failed (%s); using the canonical PDF URL",
            paper_id,
            query_id,
            exc,
        )
        return ArxivMetadata(_canonical_pdf_url(arxiv_id, version), version, "", from_api=False)
    if result is None:
        log.warning(
            "paper %r: arXiv returned no entry for %s; using the canonical PDF URL",
            paper_id,
            query_id,
        )
        return ArxivMetadata(_canonical_pdf_url(arxiv_id, version), version, "", from_api=False)
    resolved_version = version or _version_of(result.get_short_id())
    # The canonical URL of the exact version: the API's pdf link is plain http and may omit it.
    return ArxivMetadata(
        pdf_url=_canonical_pdf_url(arxiv_id, resolved_version),
        version=resolved_version,
        title=" ".join((result.title or "").split()),
        from_api=True,
    )


def _inspect_pdf(paper_id: str, path: Path, source: str) -> tuple[int, str]:
    """Validate the file at ``path`` (named ``source`` in messages); return (pages, title)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(HEADER_WINDOW)
            handle.seek(max(0, size - TRAILER_WINDOW))
            tail = handle.read()
    except OSError as exc:
        raise InvalidSourceError(paper_id, f"cannot read {source}: {exc}") from exc
    if size == 0:
        raise NotAPdfError(paper_id, f"{source} is empty (0 bytes), not a PDF")
    if b"%PDF-" not in head:
        preview = head[:40].decode("latin-1").encode("unicode_escape").decode("ascii")
        raise NotAPdfError(
            paper_id, f"{source} is not a PDF: no '%PDF-' header (starts with {preview!r})"
        )
    if b"%%EOF" not in tail:
        # pymupdf silently repairs truncated files and shows the pages it could rebuild.
        raise CorruptPdfError(
            paper_id, f"{source} is truncated: no '%%EOF' trailer at the end ({size} bytes)"
        )
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:  # pymupdf raises FileDataError, RuntimeError, ValueError...
        raise CorruptPdfError(paper_id, f"{source} cannot be opened as a PDF: {exc}") from exc
    with doc:
        if doc.needs_pass:
            raise EncryptedPdfError(paper_id, f"{source} is encrypted and needs a password")
        if doc.page_count == 0:
            raise CorruptPdfError(paper_id, f"{source} has no pages")
        pages_with_text = 0
        for page_number in range(doc.page_count):
            try:
                text = doc.load_page(page_number).get_text("text")
            except Exception as exc:
                raise CorruptPdfError(
                    paper_id, f"{source}: page {page_number + 1} cannot be read: {exc}"
                ) from exc
            pages_with_text += bool(text.strip())
        if pages_with_text == 0:
            raise NoTextLayerError(
                paper_id,
                f"{source}: none of its {doc.page_count} pages has extractable text (scanned or "
                "image-only PDF); it needs OCR first (e.g. `ocrmypdf in.pdf out.pdf`)",
            )
        return doc.page_count, " ".join(((doc.metadata or {}).get("title") or "").split())


def validate_pdf(paper_id: str, path: Path, *, source: str | None = None) -> int:
    """Check that ``path`` is a complete, readable PDF with a text layer; return its page count.

    Raises ``NotAPdfError`` (no ``%PDF-`` header), ``CorruptPdfError`` (truncated, unreadable),
    ``EncryptedPdfError`` (needs a password) or ``NoTextLayerError`` (needs OCR). ``source`` names
    the file in messages when ``path`` is a temporary file.
    """
    return _inspect_pdf(paper_id, Path(path), source or str(path))[0]


class _RetryableStatus(Exception):
    """An HTTP status worth retrying (429, 5xx)."""

    def __init__(self, status: int, retry_after_s: float | None):
        self.status = status
        self.retry_after_s = retry_after_s
        super().__init__(f"HTTP {status}")


class _IncompleteBody(Exception):
    """The server closed the connection before sending all announced bytes."""


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return min(float(value), MAX_RETRY_AFTER_S)
    except ValueError:
        return None  # an HTTP date or garbage: use the exponential backoff


def _wait_strategy(backoff_s: float) -> Callable[[tenacity.RetryCallState], float]:
    exponential = tenacity.wait_exponential(
        multiplier=backoff_s, exp_base=2, min=0, max=MAX_RETRY_AFTER_S
    )

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after_s", None) or 0.0
        return max(exponential(state), retry_after)

    return wait


def download_pdf(
    paper_id: str,
    url: str,
    target: Path,
    *,
    client: httpx.Client,
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    show_progress: bool = False,
) -> int:
    """Stream ``url`` into ``target`` (truncated at each attempt); return the number of attempts.

    Retries ``retries`` times after the first attempt, with exponential backoff (``backoff_s``,
    doubled each time, at least a server's Retry-After), on connection errors, timeouts, bodies
    cut short, 429 and 5xx. Other HTTP errors fail at once. Raises ``DownloadError`` naming the
    paper and the URL. The caller owns ``target`` (a temporary path) and removes it on failure.
    """
    attempts = 0

    def attempt() -> None:
        nonlocal attempts
        attempts += 1
        with client.stream("GET", url, timeout=timeout_s, follow_redirects=True) as response:
            if response.status_code == 429 or response.status_code >= 500:
                raise _RetryableStatus(response.status_code, _retry_after_seconds(response))
            if response.status_code != 200:
                raise DownloadError(
                    paper_id,
                    f"download of {url} failed: HTTP {response.status_code}",
                    url,
                    attempts,
                )
            announced = response.headers.get("content-length")
            expected = int(announced) if announced and announced.isdigit() else None
            with (
                open(target, "wb") as out,
                tqdm(
                    total=expected,
                    unit="B",
                    unit_scale=True,
                    desc=f"{paper_id} pdf",
                    disable=not show_progress,
                ) as bar,
            ):
                for block in response.iter_bytes(1 << 16):
                    out.write(block)
                    bar.update(len(block))
            # Raw bytes on the wire: Content-Length counts them before any gzip decoding.
            received = response.num_bytes_downloaded
            if expected is not None and received != expected:
                raise _IncompleteBody(f"received {received} of {expected} bytes")

    def before_sleep(state: tenacity.RetryCallState) -> None:
        log.warning(
            "paper %r: attempt %d to download %s failed (%s); retrying in %.1f s",
            paper_id,
            state.attempt_number,
            url,
            state.outcome.exception(),
            state.next_action.sleep,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(0, retries) + 1),
        wait=_wait_strategy(backoff_s),
        retry=tenacity.retry_if_exception_type(
            (*RETRYABLE_TRANSPORT_ERRORS, _RetryableStatus, _IncompleteBody)
        ),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        retrying(attempt)
    except DownloadError:
        raise
    except (*RETRYABLE_TRANSPORT_ERRORS, _RetryableStatus, _IncompleteBody) as exc:
        raise DownloadError(
            paper_id,
            f"download of {url} failed after {attempts} attempt(s): {type(exc).__name__}: {exc}",
            url,
            attempts,
        ) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise DownloadError(
            paper_id, f"download of {url} failed: {type(exc).__name__}: {exc}", url, attempts
        ) from exc
    return attempts


def fetch_pdf(
    paper: PaperSpec,
    dest_dir: Path,
    *,
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    http_client: httpx.Client | None = None,
    pdf_url: str | None = None,
    arxiv_client: arxiv.Client | None = None,
    file_name: str | None = None,
    show_progress: bool = False,
) -> PdfRecord:
    """Put ``paper``'s PDF at ``dest_dir/<paper id>.pdf`` (or ``file_name``), validated.

    A local source is copied. An arXiv source is resolved with the ``arxiv`` package (title,
    latest version unless the registry pins one; the canonical URL when the API is unreachable)
    and downloaded with retries (see ``download_pdf``). ``pdf_url`` overrides the download URL
    (mirrors, tests) and skips the metadata lookup. An existing target is replaced only by a
    complete, valid PDF.
    """
    dest_dir = Path(dest_dir)
    target = dest_dir / (file_name or f"{paper.id}.pdf")
    arxiv_version: str | None = None
    local_path: Path | None = None
    title = paper.title
    if paper.arxiv_id:
        if pdf_url is None:
            meta = resolve_arxiv(
                paper.id,
                paper.arxiv_id,
                paper.arxiv_version,
                client=arxiv_client,
                timeout_s=timeout_s,
            )
            source_url, arxiv_version, title = meta.pdf_url, meta.version, title or meta.title
        else:
            source_url, arxiv_version = pdf_url, paper.arxiv_version
    elif pdf_url is not None:
        source_url = pdf_url
    elif paper.pdf_path is not None:
        local_path = Path(paper.pdf_path).expanduser()
        if not local_path.is_file():
            raise InvalidSourceError(paper.id, f"local PDF not found: {local_path}")
        source_url = local_path.resolve().as_uri()
    else:
        raise InvalidSourceError(paper.id, "the paper has neither an arXiv id nor a local PDF path")

    with atomic.atomic_path(target) as tmp:
        if local_path is not None:
            try:
                shutil.copyfile(local_path, tmp)
            except OSError as exc:
                raise InvalidSourceError(paper.id, f"cannot copy {local_path}: {exc}") from exc
        else:
            client = http_client or httpx.Client(
                follow_redirects=True, headers={"User-Agent": USER_AGENT}
            )
            try:
                download_pdf(
                    paper.id,
                    source_url,
                    tmp,
                    client=client,
                    retries=retries,
                    backoff_s=backoff_s,
                    timeout_s=timeout_s,
                    show_progress=show_progress,
                )
            finally:
                if http_client is None:
                    client.close()
        n_pages, metadata_title = _inspect_pdf(paper.id, tmp, source_url)
        digest, n_bytes = sha256_file(tmp), tmp.stat().st_size
    return PdfRecord(
        paper_id=paper.id,
        path=target,
        sha256=digest,
        n_bytes=n_bytes,
        n_pages=n_pages,
        source_url=source_url,
        arxiv_id=paper.arxiv_id,
        arxiv_version=arxiv_version,
        title=title or metadata_title,
    )
