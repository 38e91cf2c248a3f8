"""The artifact store on any fsspec filesystem: a memory:// store behaves exactly as a local one.

fsspec's MemoryFileSystem stands in for an object store (no directory rename, no partial reads of
an upload in progress): each test works under its own prefix and removes it afterwards.
"""

import importlib.util
import uuid
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from rag_pipeline.artifacts import CURRENT, MANIFEST, ArtifactRootError, ArtifactStore, NotMaterialized
from rag_pipeline.settings import ARTIFACTS_ENV, state_paths

PAPER = "demo-sparse-routing"


@pytest.fixture()
def memory_root():
    root = f"memory://rag-pipeline-test-{uuid.uuid4().hex}/artifacts"
    yield root
    fs = fsspec.filesystem("memory")
    top = root.removeprefix("memory://").split("/")[0]
    if fs.exists(f"/{top}"):
        fs.rm(f"/{top}", recursive=True)


@pytest.fixture()
def local_and_memory(tmp_path, memory_root):
    return ArtifactStore(tmp_path / "artifacts"), ArtifactStore(memory_root, cache_dir=tmp_path / "cache")


def _chunks(*texts: str) -> pd.DataFrame:
    return pd.DataFrame({"chunk_id": [f"p:{i}" for i in range(len(texts))], "text": list(texts)})


def _write_history(store: ArtifactStore) -> None:
    """A few materializations: re-ingests, an input read through a draft, an unkeyed asset."""
    store.write_frame("paper_chunks", "p1", frame=_chunks("alpha", "beta"))
    with store.writing("paper_text", "p1") as draft:
        chunks = draft.read_frame("paper_chunks", "p1")
        draft.write_text("\n\n".join(chunks["text"]))
        draft.write_json({"n": len(chunks)}, name="sections")
    store.write_frame("paper_chunks", "p1", frame=_chunks("alpha", "beta", "gamma"))  # text still read the first
    store.write_frame("paper_chunks", "p2", frame=_chunks("one"))
    store.write_frame("paper_chunks", "p2", frame=_chunks("two"))  # the first p2 version: nothing reaches it
    store.write_frame("paper_chunks", "p2", frame=_chunks("two"))  # identical: the stored version stands
    store.write_json("leaderboard", obj={"rows": [1, 2]})


def _snapshot(store: ArtifactStore) -> dict:
    return {
        "versions": {keys: store.versions("paper_chunks", *keys) for keys in store.partitions("paper_chunks")},
        "current": store.current_refs(),
        "all": store.all_refs(),
        "manifests": [{k: v for k, v in store.manifest(ref).items() if k != "created_at"} for ref in store.all_refs()],
        "frames": {keys: store.read_frame("paper_chunks", *keys).to_dict("list") for keys in store.partitions("paper_chunks")},
        "text": store.read_text("paper_text", "p1"),
        "json": (store.read_json("paper_text", "p1", name="sections"), store.read_json("leaderboard")),
        "exists": (store.exists("paper_text", "p1", suffix=".md"), store.exists("paper_text", "p1", suffix=".pdf")),
    }


def test_a_memory_store_holds_what_a_local_store_holds_and_gc_frees_the_same(local_and_memory):
    local, remote = local_and_memory
    for store in (local, remote):
        _write_history(store)
    assert remote.is_local is False and local.is_local is True
    expected = _snapshot(local)
    assert _snapshot(remote) == expected
    assert len(expected["versions"][("p1",)]) == 2 and len(expected["versions"][("p2",)]) == 2
    assert expected["versions"][("p1",)][-1] == local.current_version("paper_chunks", "p1")  # oldest first

    dry = remote.collect_garbage(dry_run=True)
    assert dry["removed"] and remote.all_refs() == expected["all"]
    freed = [store.collect_garbage() for store in (local, remote)]
    assert freed[0]["removed"] == freed[1]["removed"] == [f"paper_chunks/p2@{expected['versions'][('p2',)][0]}"]
    assert freed[0]["kept"] == freed[1]["kept"] and freed[0]["freed_bytes"] == freed[1]["freed_bytes"] > 0
    assert remote.all_refs() == local.all_refs() == [ref for ref in expected["all"] if ref.label not in freed[0]["removed"]]
    # The first p1 chunks stay: the current text was built from them.
    assert len(remote.versions("paper_chunks", "p1")) == 2


def test_the_remote_layout_is_the_local_one(local_and_memory):
    local, remote = local_and_memory
    for store in (local, remote):
        _write_history(store)
    local_files = sorted(str(p.relative_to(local.root)) for p in Path(local.root).rglob("*") if p.is_file())
    remote_files = sorted("/".join(remote._relative(p)) for p in remote.fs.find(remote.base))
    assert remote_files == local_files
    pointer = "paper_chunks/p1/" + CURRENT
    assert remote.fs.cat_file(f"{remote.base}/{pointer}") == (Path(local.root) / pointer).read_bytes()


def test_a_failed_stage_on_a_remote_store_leaves_the_previous_version_current(memory_root):
    store = ArtifactStore(memory_root)
    store.write_frame("paper_chunks", "p1", frame=_chunks("alpha"))
    before = sorted(store.fs.find(store.base))
    current = store.current_version("paper_chunks", "p1")
    with pytest.raises(RuntimeError, match="stage failed"), store.writing("paper_chunks", "p1") as draft:
        draft.write_frame(_chunks("half", "written"))
        raise RuntimeError("stage failed")
    assert not draft.dir.exists()  # the local draft is gone too
    assert sorted(store.fs.find(store.base)) == before
    assert store.current_version("paper_chunks", "p1") == current
    assert store.versions("paper_chunks", "p1") == [current]
    assert store.read_frame("paper_chunks", "p1")["text"].tolist() == ["alpha"]


def test_an_interrupted_upload_is_no_version_and_gc_removes_it(memory_root):
    store = ArtifactStore(memory_root)
    store.write_frame("paper_chunks", "p1", frame=_chunks("alpha"))
    current = store.current_version("paper_chunks", "p1")
    partial = f"{store.base}/paper_chunks/p1/versions/0123456789abcdef"
    store.fs.pipe_file(f"{partial}/data.parquet", b"the upload stopped before its manifest")

    assert store.versions("paper_chunks", "p1") == [current]
    assert [ref.version for ref in store.all_refs()] == [current]
    assert store.current_version("paper_chunks", "p1") == current
    with pytest.raises(NotMaterialized, match="0123456789abcdef is no longer stored"):
        store.read_frame("paper_chunks", "p1", version="0123456789abcdef")

    assert store.collect_garbage()["removed"] == []  # fresh: it may be an upload still under way
    report = store.collect_garbage(draft_age_s=0)
    assert report["removed"] == ["paper_chunks/p1/versions/0123456789abcdef"]
    assert not store.fs.exists(partial)
    assert store.read_frame("paper_chunks", "p1")["text"].tolist() == ["alpha"]


def test_a_commit_completes_an_interrupted_upload_of_the_same_version(tmp_path, memory_root):
    local, remote = ArtifactStore(tmp_path / "artifacts"), ArtifactStore(memory_root)
    local.write_frame("paper_chunks", "p1", frame=_chunks("alpha"))
    version = local.current_version("paper_chunks", "p1")
    remote.fs.pipe_file(f"{remote.base}/paper_chunks/p1/versions/{version}/data.parquet", b"truncated")

    remote.write_frame("paper_chunks", "p1", frame=_chunks("alpha"))
    assert remote.current_version("paper_chunks", "p1") == version
    assert remote.read_frame("paper_chunks", "p1")["text"].tolist() == ["alpha"]


def test_path_gives_a_local_copy_of_a_remote_file(tmp_path, memory_root):
    store = ArtifactStore(memory_root, cache_dir=tmp_path / "cache")
    pdf = b"%PDF-1.4 not really a pdf, but bytes to compare"
    with store.writing("paper_pdf", "p1") as draft:
        draft.file(".pdf").write_bytes(pdf)
    local = store.path("paper_pdf", "p1", suffix=".pdf")
    assert isinstance(local, Path) and local.is_file() and local.read_bytes() == pdf
    assert local.is_relative_to(tmp_path / "cache")
    assert store.path("paper_pdf", "p1", suffix=".pdf") == local  # versions never change: cached once
    with store.writing("paper_markdown", "p1") as draft:
        assert draft.input_path("paper_pdf", "p1", suffix=".pdf").read_bytes() == pdf
        draft.write_text("converted")
    assert store.url_of("paper_pdf", "p1", suffix=".pdf").startswith("memory://")
    with pytest.raises(NotMaterialized):
        store.path("paper_pdf", "p1", suffix=".md")


def test_the_cache_defaults_to_the_state_directory(state_dir, memory_root):
    store = ArtifactStore(memory_root)
    store.write_json("paper_pdf", "p1", obj={"n": 1})
    assert store.path("paper_pdf", "p1", suffix=".json").is_relative_to(state_paths().artifact_cache)


def test_the_store_root_comes_from_the_environment(tmp_path, monkeypatch, memory_root):
    monkeypatch.delenv(ARTIFACTS_ENV, raising=False)
    assert state_paths(tmp_path).artifacts == tmp_path.resolve() / "artifacts"
    monkeypatch.setenv(ARTIFACTS_ENV, memory_root)
    assert state_paths(tmp_path).artifacts == memory_root
    monkeypatch.setenv(ARTIFACTS_ENV, str(tmp_path / "shared" / ".." / "mount"))
    assert state_paths(tmp_path).artifacts == tmp_path.resolve() / "mount"


def test_an_unknown_scheme_is_refused_with_the_variable_and_the_url():
    with pytest.raises(ArtifactRootError) as error:
        ArtifactStore("nosuchfs://bucket/prefix")
    message = str(error.value)
    assert ARTIFACTS_ENV in message and "nosuchfs://bucket/prefix" in message
    assert "unknown filesystem scheme 'nosuchfs'" in message and "s3fs" in message


def test_a_missing_filesystem_package_is_named():
    missing = [(scheme, package) for scheme, package in (("s3", "s3fs"), ("gs", "gcsfs"), ("az", "adlfs"))
               if importlib.util.find_spec(package) is None]
    if not missing:
        pytest.skip("s3fs, gcsfs and adlfs are all installed")
    scheme, package = missing[0]
    with pytest.raises(ArtifactRootError) as error:
        ArtifactStore(f"{scheme}://bucket/prefix")
    message = str(error.value)
    assert ARTIFACTS_ENV in message and f"{scheme}://bucket/prefix" in message
    assert f"pip install {package}" in message


def test_credentials_in_the_url_are_refused_and_not_repeated():
    with pytest.raises(ArtifactRootError) as error:
        ArtifactStore("s3://AKIAEXAMPLEKEY:very-secret@bucket/prefix")
    message = str(error.value)
    assert ARTIFACTS_ENV in message and "AWS_ACCESS_KEY_ID" in message and "s3://***@bucket/prefix" in message
    assert "very-secret" not in message and "AKIAEXAMPLEKEY" not in message


def test_ingest_stages_run_on_a_memory_store_as_on_a_local_one(tmp_path, memory_root):
    from rag_pipeline.config import ChunkingConfig
    from rag_pipeline.stages.ingest import chunk_paper, clean_paper, convert_paper, fetch_paper

    assets = ("paper_pdf", "paper_markdown", "paper_text", "paper_chunks")
    results = {}
    for name, store in (("local", ArtifactStore(tmp_path / "artifacts")),
                        ("memory", ArtifactStore(memory_root, cache_dir=tmp_path / "cache"))):
        fetch_paper(store, PAPER)
        converted = convert_paper(store, PAPER)
        clean_paper(store, PAPER)
        chunked = chunk_paper(store, PAPER, ChunkingConfig())
        results[name] = {
            "versions": {asset: store.current_version(asset, PAPER) for asset in assets},
            "data_version": chunked.version,
            "chunks": store.read_frame("paper_chunks", PAPER),
            "markdown_path": converted.metadata["path"].path,
        }
    local, memory = results["local"], results["memory"]
    assert memory["versions"] == local["versions"] and memory["data_version"] == local["data_version"]
    pd.testing.assert_frame_equal(memory["chunks"], local["chunks"])
    assert len(local["chunks"]) > 3
    assert memory["markdown_path"].startswith("memory://") and Path(local["markdown_path"]).is_file()
    assert list((tmp_path / "cache").rglob("data.pdf"))  # the PDF pymupdf read was a cached local copy
    assert not list((tmp_path / "cache").rglob(MANIFEST))
