"""The ingest graph materialized through Dagster on the demo corpus."""

import dagster as dg

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.datasets import questions_for_paper
from rag_pipeline.definitions import defs
from rag_pipeline.hashing import sha256_file
from rag_pipeline_tests.defs.conftest import demo_paper_ids, latest_data_version


def _store(state) -> ArtifactStore:
    return ArtifactStore(state / "artifacts")


def test_every_demo_paper_is_ingested(pipeline):
    _, state, summary = pipeline
    assert summary.failed == {}
    assert sorted(summary.succeeded) == sorted(demo_paper_ids())
    store = _store(state)
    for paper in demo_paper_ids():
        record = store.read_json("paper_pdf", paper)
        assert record["sha256"] == sha256_file(store.path("paper_pdf", paper, suffix=".pdf"))
        assert record["n_pages"] >= 3
        sections = store.read_json("paper_text", paper)
        assert sections["missing"] == [], f"{paper}: {sections['missing']}"
        assert sections["references_heading"]
        text = store.read_text("paper_text", paper)
        chunks = store.read_frame("paper_chunks", paper)
        assert chunks["chunk_id"].tolist() == [f"{paper}:{i}" for i in range(len(chunks))]
        assert all(text[row.start:row.end] == row.text for row in chunks.itertuples())
        assert chunks["text"].str.len().max() <= 800


def test_retrievals_keep_top_n_of_top_k_per_question(pipeline):
    _, state, _ = pipeline
    store = _store(state)
    for paper in demo_paper_ids():
        frame = store.read_frame("retrievals", paper)
        questions = questions_for_paper(paper)
        assert set(frame["question_id"]) == {q.question_id for q in questions}
        per_question = frame.groupby("question_id")
        assert (per_question.size() <= 10).all()
        assert (per_question["kept"].sum() == 2).all()
        assert frame["chunk_id"].str.startswith(f"{paper}:").all()  # filtered by paper


def test_retrieval_metrics_are_computed_against_gold_evidence(pipeline):
    _, state, _ = pipeline
    metrics = _store(state).read_all_frames("retrieval_metrics")
    assert len(metrics) == sum(len(questions_for_paper(p)) for p in demo_paper_ids())
    for column in ("hit@2", "hit@10", "mrr"):
        assert metrics[column].between(0, 1).all()
    # The offline embedder must find the gold evidence for most questions in its top 10.
    assert metrics["hit@10"].mean() >= 0.6


def test_asset_checks_pass_on_the_demo_corpus(pipeline):
    instance, _, _ = pipeline
    for asset, check in (("paper_chunks", "chunk_offsets_consistent"), ("paper_text", "sections_found"),
                         ("retrievals", "every_question_has_context")):
        key = dg.AssetCheckKey(dg.AssetKey(asset), check)
        records = instance.event_log_storage.get_asset_check_execution_history(key, limit=10)
        evaluations = [r.evaluation for r in records if r.evaluation is not None]
        assert evaluations, f"{check} never ran"
        assert all(e.passed for e in evaluations), check
        assert {e.partition for e in evaluations} == set(demo_paper_ids()), check  # one result per paper


def test_reindexing_is_idempotent_and_keeps_data_versions(pipeline):
    from rag_pipeline.defs.resources import ChromaResource, EmbedderResource
    from rag_pipeline.defs.runner import materialize_partitions
    from rag_pipeline.index.vector_store import PaperIndex
    from rag_pipeline.settings import state_paths

    instance, state, _ = pipeline
    paper = demo_paper_ids()[0]
    versions = {a: latest_data_version(instance, a, paper) for a in ("paper_markdown", "paper_chunks", "paper_index")}
    summary = materialize_partitions(defs, instance, ["paper_markdown", "paper_text", "paper_chunks", "paper_index"], [paper], "again", progress=False)
    assert summary.failed == {}
    index = PaperIndex(ChromaResource().client(state_paths()), EmbedderResource().get())
    chunks = _store(state).read_frame("paper_chunks", paper)
    assert index.count(paper) == len(chunks)
    total = sum(len(_store(state).read_frame("paper_chunks", p)) for p in demo_paper_ids())
    assert index.count() == total  # no duplicates anywhere
    # Same content → same data version, so nothing downstream is considered changed.
    assert {a: latest_data_version(instance, a, paper) for a in versions} == versions
