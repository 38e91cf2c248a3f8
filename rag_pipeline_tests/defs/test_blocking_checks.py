"""Checks that protect GPU time: a paper with no summary input, inconsistent chunk offsets or a question
without retrieved context fails a blocking check, and that paper's generation does not run (in the
same run, in `run_pipeline`, under automation) while another paper's does; the failure says why.

One real instance, the demo corpus plus a paper rendered without abstract and conclusion; two
faults are injected into the real stages for one paper each (an off-by-one in the chunker, a
reranker that rejected every candidate of a question).
"""

import dataclasses
import shutil

import dagster as dg
import pytest
import yaml

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.datasets import questions_for_paper
from rag_pipeline.definitions import defs
from rag_pipeline.defs.inputs.assets import record_observations
from rag_pipeline.defs.partitions import sync_registry_partitions
from rag_pipeline.defs.runner import INGEST_SELECTION, blocked_papers, materialize_partitions, run_pipeline
from rag_pipeline.demo_corpus.render import render_text_pdf
from rag_pipeline.index.retrieve import retrieve_many
from rag_pipeline.stages import ingest as ingest_stage
from rag_pipeline_tests.suite_data import SUITE_DATA

GOOD = "demo-rerank-study"
NO_SECTIONS = "demo-no-sections"  # rendered from body paragraphs only: neither abstract nor conclusion
BAD_CHUNKS = "demo-sparse-routing"  # its chunk 3 is shifted by one character
NO_CONTEXT = "demo-morph-tokenizer"  # its first question keeps no chunk
PAPERS = [GOOD, NO_SECTIONS, BAD_CHUNKS, NO_CONTEXT]
MODELS = ["lead-3", "top-chunk"]
CHECK_OF = {
    NO_SECTIONS: ("paper_text", "sections_found"),
    BAD_CHUNKS: ("paper_chunks", "chunk_offsets_consistent"),
    NO_CONTEXT: ("retrievals", "every_question_has_context"),
}


def _register_paper_without_summary_input(data):
    source = yaml.safe_load((data / "demo_corpus/sources/demo-sparse-routing.yaml").read_text(encoding="utf-8"))
    body = [p for s in source["sections"] if s["heading"] in ("Introduction", "Related Work") for p in s["paragraphs"]]
    render_text_pdf([p for p in body if p.isascii()], data / "bad" / "no-sections.pdf")
    registry = yaml.safe_load((data / "papers.yaml").read_text(encoding="utf-8"))
    registry["papers"].append({"id": NO_SECTIONS, "pdf": "bad/no-sections.pdf", "collection": "bad"})
    (data / "papers.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True), encoding="utf-8")


def _off_by_one_chunker(real):
    def chunk_text(paper_id, text, *args, **kwargs):
        chunks = real(paper_id, text, *args, **kwargs)
        if paper_id == BAD_CHUNKS:
            chunks[3] = dataclasses.replace(chunks[3], start=chunks[3].start + 1, end=chunks[3].end + 1)
        return chunks
    return chunk_text


def _reranker_rejecting_first_question(real):
    def retrieve_many(index, reranker, paper_id, questions, *args, **kwargs):
        frame = real(index, reranker, paper_id, questions, *args, **kwargs)
        if paper_id == NO_CONTEXT:
            frame.loc[frame["question_id"] == questions[0].question_id, "kept"] = False
        return frame
    return retrieve_many


@pytest.fixture(scope="module")
def blocked(tmp_path_factory):
    """(instance, store, data dir, RunSummary, patch) after `run_pipeline` over the four papers."""
    root = tmp_path_factory.mktemp("blocking_checks")
    data = root / "data"
    shutil.copytree(SUITE_DATA, data)
    _register_paper_without_summary_input(data)
    patch = pytest.MonkeyPatch()
    patch.setenv("RAG_PIPELINE_DATA", str(data))
    patch.setenv("RAG_PIPELINE_HOME", str(root / "state"))
    patch.setattr(ingest_stage, "chunk_text", _off_by_one_chunker(ingest_stage.chunk_text))
    patch.setattr(ingest_stage, "retrieve_many", _reranker_rejecting_first_question(ingest_stage.retrieve_many))
    with dg.instance_for_test() as instance:
        summary = run_pipeline(defs, instance, PAPERS, MODELS, judge=False, progress=False)
        yield instance, ArtifactStore(root / "state" / "artifacts"), data, summary, patch
    patch.undo()


def _latest_evaluation(instance, asset, check, paper):
    from dagster._core.event_api import PartitionKeyFilter

    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [key], partition_filter=PartitionKeyFilter(key=paper)
    ).get(key)
    return record.evaluation if record else None


def _materialized(instance, asset, partition) -> bool:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[str(partition)]), limit=1
    ).records
    return bool(records)


def test_each_failed_check_blocks_its_papers_generation_and_says_why(blocked):
    instance, store, _, summary, _ = blocked
    first_question = questions_for_paper(NO_CONTEXT)[0].question_id
    reasons = {
        NO_SECTIONS: ["paper_text:sections_found", "neither an abstract nor a conclusion was found"],
        BAD_CHUNKS: ["paper_chunks:chunk_offsets_consistent", f"{BAD_CHUNKS}:3: text[", "is not the chunk's text"],
        NO_CONTEXT: ["retrievals:every_question_has_context", f"question {first_question!r} has no kept chunk"],
    }
    assert set(summary.failed) == set(reasons), summary.failed
    for paper, phrases in reasons.items():
        message = summary.failed[paper]
        assert message.startswith("blocked by check "), message
        assert f"paper {paper!r}" in message and "generation (summaries and answers) is blocked" in message
        for phrase in phrases:
            assert phrase in message, (phrase, message)

    generated = {f"{model}|{paper}" for model in MODELS for paper in PAPERS if paper == GOOD}
    assert set(summary.succeeded) >= {GOOD, *generated}
    assert not any(paper in key for key in summary.succeeded for paper in CHECK_OF)
    assert len(store.read_frame("summaries", "lead-3", GOOD)) == 1
    assert not store.read_frame("answers", "top-chunk", GOOD).empty
    for paper in CHECK_OF:
        for asset in ("summaries", "answers", "generation_metrics"):
            for model in MODELS:
                assert not store.exists(asset, model, paper), (asset, model, paper)
                assert not _materialized(instance, asset, f"{model}|{paper}")


def test_the_check_fails_in_the_ui_with_its_reason_and_passes_for_the_good_paper(blocked):
    instance, *_ = blocked
    for paper, (asset, check) in CHECK_OF.items():
        evaluation = _latest_evaluation(instance, asset, check, paper)
        assert evaluation is not None, (paper, check)
        assert not evaluation.passed and evaluation.blocking and evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert evaluation.partition == paper
        assert f"paper {paper!r}" in evaluation.description
        assert evaluation.metadata["paper"].value == paper and evaluation.metadata["n_problems"].value >= 1
        assert evaluation.metadata["problems"].value[0] in evaluation.description
    for asset, check in CHECK_OF.values():
        evaluation = _latest_evaluation(instance, asset, check, GOOD)
        assert evaluation is not None and evaluation.passed, (asset, check)


def test_the_same_run_skips_what_is_downstream_of_the_failed_check(blocked):
    instance, *_ = blocked
    # The failed check's asset was stored (the check reads it), nothing after it was.
    assert _materialized(instance, "paper_text", NO_SECTIONS) and not _materialized(instance, "paper_chunks", NO_SECTIONS)
    assert _materialized(instance, "paper_chunks", BAD_CHUNKS) and not _materialized(instance, "paper_index", BAD_CHUNKS)
    assert _materialized(instance, "retrievals", NO_CONTEXT) and not _materialized(instance, "retrieval_metrics", NO_CONTEXT)
    assert _materialized(instance, "retrieval_metrics", GOOD)


def test_automation_does_not_request_generation_downstream_of_a_failed_blocking_check(blocked):
    """Ingest and generation run separately, so Dagster's own blocking cannot help here."""
    instance, _, data, _, _ = blocked
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    registry = yaml.safe_load((data / "models.yaml").read_text(encoding="utf-8"))
    by_name = {model["name"]: model for model in registry["models"]}
    registry["models"] += [{**by_name["lead-3"], "name": "lead-2", "extractive": {"method": "lead", "sentences": 2}},
                           {**by_name["top-chunk"], "name": "top-chunk-2"}]
    (data / "models.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True), encoding="utf-8")
    try:
        assert set(sync_registry_partitions(instance)["models"]["added"]) == {"lead-2", "top-chunk-2"}
        record_observations(instance)  # what the registry sensor does next: the new entries' input versions
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor)

        def requested(asset):
            key = dg.AssetKey(asset)
            return {str(k) for k in result.get_requested_partitions(key)} if result.get_num_requested(key) else set()

        new = ("lead-2", "top-chunk-2")
        # Summaries read paper_text only: held back where its check failed, requested elsewhere.
        assert requested("summaries") == {f"{model}|{paper}" for model in new for paper in (GOOD, BAD_CHUNKS, NO_CONTEXT)}
        # Answers: the paper whose retrievals failed their check is held back; two others lack retrievals.
        assert requested("answers") == {f"{model}|{GOOD}" for model in new}
    finally:
        for model in ("lead-2", "top-chunk-2"):  # later tests see the registry's models only
            instance.delete_dynamic_partition("models", model)


def test_blocked_papers_follow_the_latest_materialization(blocked):
    instance, _, _, _, patch = blocked
    assert set(blocked_papers(defs, instance, PAPERS)) == set(CHECK_OF)
    assert blocked_papers(defs, instance, [GOOD]) == {}
    # The fault is fixed: re-ingesting the paper re-runs the check, which passes, and the block lifts.
    patch.setattr(ingest_stage, "retrieve_many", retrieve_many)
    assert materialize_partitions(defs, instance, INGEST_SELECTION, [NO_CONTEXT], "again", progress=False).failed == {}
    assert set(blocked_papers(defs, instance, PAPERS)) == {NO_SECTIONS, BAD_CHUNKS}
    assert _latest_evaluation(instance, "retrievals", "every_question_has_context", NO_CONTEXT).passed
