"""Bad input through the Dagster graph: a clear error naming the paper, other partitions intact."""

import dagster as dg
import pymupdf
import pytest
import yaml

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.definitions import defs
from rag_pipeline.defs.partitions import sync_registry_partitions
from rag_pipeline.defs.runner import materialize_partitions
from rag_pipeline.hashing import sha256_file
from rag_pipeline.settings import REPO_ROOT

GOOD = "demo-rerank-study"


def _text_pdf(path, pages=2):
    doc = pymupdf.open()
    for i in range(pages):
        doc.new_page().insert_text((72, 72), f"Page {i + 1}: some text about retrieval.", fontsize=11)
    doc.save(path)
    return path


def _bad_pdfs(folder):
    folder.mkdir(parents=True, exist_ok=True)
    good = (REPO_ROOT / "data/demo_corpus/pdf" / f"{GOOD}.pdf").read_bytes()
    (folder / "truncated.pdf").write_bytes(good[: len(good) // 3])
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    (folder / "html.pdf").write_bytes(b"<!DOCTYPE html><html><body>Not Found</body></html>")
    doc = pymupdf.open(_text_pdf(folder / "plain.pdf"))
    doc.save(folder / "encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner")
    image_only = pymupdf.open()
    page = image_only.new_page()
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), False)
    pixmap.set_rect(pixmap.irect, (200, 30, 30))
    page.insert_image(pymupdf.Rect(72, 72, 272, 272), pixmap=pixmap)
    image_only.save(folder / "scanned.pdf")


BAD = {
    "bad-truncated": ("truncated.pdf", "truncat"),
    "bad-corrupt": ("corrupt.pdf", "no '%%eof' trailer"),
    "bad-not-pdf": ("html.pdf", "not a pdf"),
    "bad-encrypted": ("encrypted.pdf", "password"),
    "bad-no-text": ("scanned.pdf", "ocr"),
    "bad-missing": ("does-not-exist.pdf", "not found"),
}


@pytest.fixture()
def bad_registry(data_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_PIPELINE_HOME", str(tmp_path / "state"))
    _bad_pdfs(data_copy / "bad")
    registry = yaml.safe_load((data_copy / "papers.yaml").read_text())
    papers = [p for p in registry["papers"] if p["id"] == GOOD]
    papers += [{"id": pid, "pdf": f"bad/{name}", "collection": "bad"} for pid, (name, _) in BAD.items()]
    papers.append({"id": "bad-arxiv-id", "arxiv": "not-an-arxiv-id", "collection": "bad"})
    (data_copy / "papers.yaml").write_text(yaml.safe_dump({"papers": papers}))
    return data_copy


def test_each_bad_paper_fails_alone_with_a_clear_error(bad_registry, tmp_path):
    with dg.instance_for_test() as instance:
        sync_registry_partitions(instance)
        keys = [GOOD, *BAD, "bad-arxiv-id"]
        summary = materialize_partitions(defs, instance, ["paper_pdf", "paper_markdown", "paper_text", "paper_chunks"], keys, "ingest", progress=False)
    assert summary.succeeded == [GOOD]
    assert set(summary.failed) == set(keys) - {GOOD}
    for paper, message in summary.failed.items():
        assert f"paper {paper!r}" in message, message
        phrase = BAD.get(paper, ("", "arxiv"))[1]
        assert phrase.lower() in message.lower(), message
    store = ArtifactStore(tmp_path / "state" / "artifacts")
    assert len(store.read_frame("paper_chunks", GOOD)) > 0
    leftovers = [p for p in (tmp_path / "state").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    for paper in set(keys) - {GOOD}:
        assert not store.exists("paper_pdf", paper, suffix=".pdf")


def test_a_failed_refresh_keeps_what_was_stored(bad_registry, tmp_path):
    source = bad_registry / "demo_corpus/pdf" / f"{GOOD}.pdf"
    with dg.instance_for_test() as instance:
        sync_registry_partitions(instance)
        assert materialize_partitions(defs, instance, ["paper_pdf"], [GOOD], "first", progress=False).failed == {}
        store = ArtifactStore(tmp_path / "state" / "artifacts")
        stored = store.path("paper_pdf", GOOD, suffix=".pdf")
        before = sha256_file(stored)
        source.write_bytes(source.read_bytes()[:500])  # the source goes bad
        summary = materialize_partitions(defs, instance, ["paper_pdf"], [GOOD], "second", progress=False)
        assert GOOD in summary.failed
        assert sha256_file(stored) == before
        assert store.read_json("paper_pdf", GOOD)["sha256"] == before
