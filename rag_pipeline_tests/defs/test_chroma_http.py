"""The Dagster index and retrieval assets against a real `chroma run` server (mode: http)."""

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.definitions import defs
from rag_pipeline.defs.resources import ChromaResource, EmbedderResource
from rag_pipeline.defs.runner import materialize_partitions
from rag_pipeline.index.vector_store import PaperIndex, make_chroma_client
from rag_pipeline_tests.defs.conftest import demo_paper_ids
from rag_pipeline_tests.index.test_chroma_server import chroma_server  # noqa: F401  (fixture)


def test_index_and_retrieve_through_a_chroma_server(pipeline, chroma_server):  # noqa: F811

    instance, state, _ = pipeline
    paper = demo_paper_ids()[2]
    server = ChromaResource(mode="http", host=chroma_server.host, port=chroma_server.port)
    resources = {**defs.resources, "chroma": server}
    for _ in range(2):  # twice: re-indexing through the server is idempotent too
        summary = materialize_partitions(defs, instance, ["paper_index", "retrievals"], [paper], "http", resources=resources, progress=False)
        assert summary.failed == {}
    index = PaperIndex(make_chroma_client(chroma_server), EmbedderResource().get())
    chunks = ArtifactStore(state / "artifacts").read_frame("paper_chunks", paper)
    assert index.count(paper) == len(chunks) == index.count()
    retrieved = ArtifactStore(state / "artifacts").read_frame("retrievals", paper)
    assert retrieved["kept"].sum() == 2 * retrieved["question_id"].nunique()
