"""Fetching and validating PDFs: local copies, every kind of bad file, arXiv metadata and downloads
against a real HTTP server on 127.0.0.1 (cut connections, 503/429 then 200, 404, stalls)."""

import gzip
import hashlib
import pickle
import socket

import httpx
import pymupdf
import pytest

from rag_pipeline.datasets import PaperSpec
from rag_pipeline.ingest.errors import (
    CorruptPdfError,
    DownloadError,
    EncryptedPdfError,
    IngestError,
    InvalidSourceError,
    NotAPdfError,
    NoTextLayerError,
)
from rag_pipeline.ingest.fetch import fetch_pdf, make_arxiv_client, resolve_arxiv, validate_pdf
from rag_pipeline_tests.ingest.conftest import Reply, ScriptedServer, render_image_only_pdf

FAST = {"backoff_s": 0.01, "timeout_s": 5.0}


def page_count(path) -> int:
    with pymupdf.open(path) as doc:
        return doc.page_count


def listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------------------ local files


def test_fetch_local_pdf_copies_and_records_identity(sample_pdf, tmp_path):
    spec = PaperSpec(id="tiny", title="Tiny Retrievers", pdf_path=sample_pdf)
    record = fetch_pdf(spec, tmp_path / "out")
    data = sample_pdf.read_bytes()
    assert record.path == tmp_path / "out" / "tiny.pdf"
    assert record.path.read_bytes() == data
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert record.n_bytes == len(data)
    assert record.n_pages == page_count(sample_pdf) >= 1
    assert record.source_url == sample_pdf.resolve().as_uri()
    assert (record.arxiv_id, record.arxiv_version, record.title) == (None, None, "Tiny Retrievers")
    assert listing(tmp_path / "out") == ["tiny.pdf"]
    assert record.to_dict()["path"] == str(record.path)


def test_fetch_local_missing_file_names_paper_and_path(tmp_path):
    spec = PaperSpec(id="ghost", pdf_path=tmp_path / "nowhere.pdf")
    with pytest.raises(
        InvalidSourceError, match=r"^paper 'ghost': local PDF not found: .*nowhere\.pdf"
    ):
        fetch_pdf(spec, tmp_path / "out")
    assert listing(tmp_path / "out") == []


def test_fetch_without_any_source_is_invalid(tmp_path):
    with pytest.raises(InvalidSourceError, match="neither an arXiv id nor a local PDF"):
        fetch_pdf(PaperSpec(id="empty"), tmp_path)


@pytest.fixture()
def bad_files(sample_pdf, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    good = sample_pdf.read_bytes()
    (folder / "truncated.pdf").write_bytes(good[: int(len(good) * 0.6)])
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20 + b"\n%%EOF\n")
    (folder / "page.html").write_bytes(b"<!DOCTYPE html><html><body>Rate limited</body></html>")
    (folder / "empty.pdf").write_bytes(b"")
    with pymupdf.open(sample_pdf) as doc:
        doc.save(
            folder / "encrypted.pdf",
            encryption=pymupdf.PDF_ENCRYPT_AES_256,
            user_pw="secret",
            owner_pw="owner",
        )
        doc.save(
            folder / "owner_only.pdf",
            encryption=pymupdf.PDF_ENCRYPT_AES_256,
            owner_pw="owner",
            permissions=pymupdf.PDF_PERM_PRINT,
        )
    render_image_only_pdf(folder / "scanned.pdf")
    return folder


BAD_CASES = [
    ("truncated.pdf", CorruptPdfError, "truncated"),
    ("corrupt.pdf", CorruptPdfError, "cannot be opened as a PDF|no pages|cannot be read"),
    ("page.html", NotAPdfError, "not a PDF: no '%PDF-' header"),
    ("empty.pdf", NotAPdfError, "empty"),
    ("encrypted.pdf", EncryptedPdfError, "needs a password"),
    ("scanned.pdf", NoTextLayerError, "OCR"),
]


@pytest.mark.parametrize("name, error, message", BAD_CASES)
def test_validate_pdf_rejects_bad_files(bad_files, name, error, message):
    with pytest.raises(error, match=message) as caught:
        validate_pdf("broken", bad_files / name)
    assert str(caught.value).startswith("paper 'broken': ")
    assert name in str(caught.value)
    assert caught.value.paper_id == "broken"


@pytest.mark.parametrize("name, error, message", BAD_CASES)
def test_fetch_of_a_bad_file_keeps_the_previous_good_target(
    bad_files, sample_pdf, tmp_path, name, error, message
):
    out = tmp_path / "out"
    good = fetch_pdf(PaperSpec(id="paper", pdf_path=sample_pdf), out)
    with pytest.raises(error, match=message):
        fetch_pdf(PaperSpec(id="paper", pdf_path=bad_files / name), out)
    assert listing(out) == ["paper.pdf"]  # no temporary file left either
    assert hashlib.sha256(good.path.read_bytes()).hexdigest() == good.sha256


def test_owner_password_only_pdf_is_readable(bad_files):
    assert validate_pdf("p", bad_files / "owner_only.pdf") >= 1


def test_validate_pdf_returns_page_count(sample_pdf):
    assert validate_pdf("p", sample_pdf) == page_count(sample_pdf)


def test_ingest_errors_pickle_with_their_fields():
    error = pickle.loads(pickle.dumps(DownloadError("p", "boom", "http://x/y.pdf", 4)))
    assert (error.paper_id, error.url, error.attempts, str(error)) == (
        "p",
        "http://x/y.pdf",
        4,
        "paper 'p': boom",
    )
    assert isinstance(pickle.loads(pickle.dumps(NoTextLayerError("q", "scan"))), IngestError)


# ------------------------------------------------------------------------------ arXiv metadata


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


ATOM_FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"
      xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title>arXiv Query</title><id>http://arxiv.org/api/q</id><updated>2024-01-01T00:00:00-05:00</updated>
  <opensearch:totalResults>1</opensearch:totalResults><opensearch:startIndex>0</opensearch:startIndex>
  <opensearch:itemsPerPage>1</opensearch:itemsPerPage>
  <entry>
    <id>http://arxiv.org/abs/1706.03762v7</id><updated>2023-08-02T00:41:18Z</updated>
    <published>2017-06-12T17:57:34Z</published>
    <title>Attention Is All
      You Need</title>
    <summary>The dominant sequence transduction models.</summary>
    <author><name>Ashish Vaswani</name></author>
    <link href="http://arxiv.org/abs/1706.03762v7" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/1706.03762v7" rel="related"
          type="application/pdf"/>
    <arxiv:primary_category term="cs.CL" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.CL" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
</feed>"""


def local_arxiv_client(base_url: str):
    client = make_arxiv_client(timeout_s=5.0, num_retries=0)
    client.query_url_format = base_url + "/api/query?{}"
    return client


def test_resolve_arxiv_reads_title_and_latest_version_from_the_api():
    with ScriptedServer([Reply(200, ATOM_FEED)]) as server:
        meta = resolve_arxiv(
            "attention", "https://arxiv.org/abs/1706.03762", client=local_arxiv_client(server.url)
        )
    assert "id_list=1706.03762" in server.requests[0]
    assert meta.from_api
    assert (meta.pdf_url, meta.version, meta.title) == (
        "https://arxiv.org/pdf/1706.03762v7",
        "v7",
        "Attention Is All You Need",
    )


def test_resolve_arxiv_keeps_a_pinned_version():
    with ScriptedServer([Reply(200, ATOM_FEED)]) as server:
        meta = resolve_arxiv("attention", "1706.03762", "v5", client=local_arxiv_client(server.url))
    assert "id_list=1706.03762v5" in server.requests[0]
    assert (meta.pdf_url, meta.version) == ("https://arxiv.org/pdf/1706.03762v5", "v5")


@pytest.mark.parametrize(
    "ref, version, url",
    [
        ("1706.03762", None, "https://arxiv.org/pdf/1706.03762"),
        ("https://arxiv.org/pdf/1706.03762v3", None, "https://arxiv.org/pdf/1706.03762v3"),
        ("1706.03762", "v2", "https://arxiv.org/pdf/1706.03762v2"),
    ],
)
def test_resolve_arxiv_falls_back_to_the_canonical_url_when_the_api_is_unreachable(
    ref, version, url
):
    meta = resolve_arxiv("p", ref, version, client=local_arxiv_client(closed_port_url()))
    assert not meta.from_api and meta.pdf_url == url and meta.title == ""


@pytest.mark.parametrize(
    "ref", ["not-an-id", "1706", "https://example.org/abs/1706.03762", "1706.03762v"]
)
def test_invalid_arxiv_reference_is_an_invalid_source(ref, tmp_path):
    with pytest.raises(InvalidSourceError, match=r"^paper 'bad': invalid arXiv reference"):
        fetch_pdf(PaperSpec(id="bad", arxiv_id=ref), tmp_path)
    assert listing(tmp_path) == []


def test_invalid_pinned_version_is_an_invalid_source(tmp_path):
    with pytest.raises(InvalidSourceError, match="invalid arXiv version"):
        fetch_pdf(PaperSpec(id="bad", arxiv_id="1706.03762", arxiv_version="7"), tmp_path)


# ------------------------------------------------------------------------------ downloads


def arxiv_spec() -> PaperSpec:
    return PaperSpec(
        id="attention", title="Attention Is All You Need", arxiv_id="1706.03762", arxiv_version="v7"
    )


def test_download_cut_midway_retries_then_fails_leaving_nothing(sample_pdf, tmp_path):
    body = sample_pdf.read_bytes()
    out = tmp_path / "out"
    with ScriptedServer([Reply(200, body, cut_after=len(body) // 2)]) as server:
        url = server.url + "/pdf/1706.03762v7"
        with pytest.raises(DownloadError) as caught:
            fetch_pdf(arxiv_spec(), out, pdf_url=url, retries=2, **FAST)
    assert len(server.requests) == 3  # the first attempt and two retries
    message = str(caught.value)
    assert message.startswith("paper 'attention': ") and url in message and "3 attempt" in message
    assert caught.value.url == url and caught.value.attempts == 3
    assert listing(out) == []  # neither the target nor a temporary file


def test_download_503_then_200_succeeds(sample_pdf, tmp_path):
    body = sample_pdf.read_bytes()
    with ScriptedServer([Reply(503, b"busy"), Reply(200, body)]) as server:
        record = fetch_pdf(arxiv_spec(), tmp_path, pdf_url=server.url + "/pdf/x", retries=3, **FAST)
    assert len(server.requests) == 2
    assert record.sha256 == hashlib.sha256(body).hexdigest()
    assert (record.arxiv_id, record.arxiv_version, record.title) == (
        "1706.03762",
        "v7",
        "Attention Is All You Need",
    )
    assert record.n_pages == page_count(sample_pdf)
    assert listing(tmp_path) == ["attention.pdf"]


def test_download_429_with_retry_after_then_200(sample_pdf, tmp_path):
    body = sample_pdf.read_bytes()
    with ScriptedServer(
        [Reply(429, b"slow down", headers={"Retry-After": "0"}), Reply(200, body)]
    ) as server:
        record = fetch_pdf(arxiv_spec(), tmp_path, pdf_url=server.url + "/pdf/x", **FAST)
    assert len(server.requests) == 2 and record.n_bytes == len(body)


def test_download_404_fails_at_once(tmp_path):
    with (
        ScriptedServer([Reply(404, b"not found")]) as server,
        pytest.raises(DownloadError, match=r"^paper 'attention': download of .* failed: HTTP 404"),
    ):
        fetch_pdf(arxiv_spec(), tmp_path, pdf_url=server.url + "/pdf/x", retries=3, **FAST)
    assert len(server.requests) == 1 and listing(tmp_path) == []


def test_download_that_stalls_times_out_and_is_retried(tmp_path):
    with (
        ScriptedServer([Reply(200, b"%PDF-", delay_s=1.0)]) as server,
        pytest.raises(DownloadError, match="ReadTimeout") as caught,
    ):
        fetch_pdf(
            arxiv_spec(),
            tmp_path,
            pdf_url=server.url + "/pdf/x",
            retries=1,
            backoff_s=0.01,
            timeout_s=0.2,
        )
    assert caught.value.attempts == 2 and listing(tmp_path) == []


def test_connection_refused_is_a_download_error(tmp_path):
    url = closed_port_url() + "/pdf/x"
    with pytest.raises(DownloadError, match="ConnectError") as caught:
        fetch_pdf(arxiv_spec(), tmp_path, pdf_url=url, retries=1, **FAST)
    assert caught.value.attempts == 2 and url in str(caught.value)


def test_downloaded_html_page_is_not_a_pdf(tmp_path):
    with ScriptedServer([Reply(200, b"<html>captcha</html>")]) as server:
        url = server.url + "/pdf/x"
        with pytest.raises(NotAPdfError, match="not a PDF") as caught:
            fetch_pdf(arxiv_spec(), tmp_path, pdf_url=url, **FAST)
    assert url in str(caught.value) and listing(tmp_path) == []


def test_a_given_http_client_is_used_and_left_open(sample_pdf, tmp_path):
    with ScriptedServer([Reply(200, sample_pdf.read_bytes())]) as server, httpx.Client() as client:
        fetch_pdf(arxiv_spec(), tmp_path, pdf_url=server.url + "/pdf/x", http_client=client, **FAST)
        assert not client.is_closed
    assert len(server.requests) == 1


def test_gzip_encoded_download_is_stored_decoded(sample_pdf, tmp_path):
    body = sample_pdf.read_bytes()
    reply = Reply(200, gzip.compress(body), headers={"Content-Encoding": "gzip"})
    with ScriptedServer([reply]) as server:
        record = fetch_pdf(arxiv_spec(), tmp_path, pdf_url=server.url + "/pdf/x", **FAST)
    assert len(server.requests) == 1
    assert record.path.read_bytes() == body and record.n_bytes == len(body)
