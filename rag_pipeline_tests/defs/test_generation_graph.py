"""Generation and metrics through Dagster with the models that need no LLM: extractive baselines and
the recorded reference study."""

import json

import dagster as dg

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.definitions import defs
from rag_pipeline.defs.runner import GENERATION_SELECTION, materialize_partitions, model_paper_key
from rag_pipeline_tests.defs.conftest import demo_paper_ids, latest_data_version

STUDY_PAPER = "attention"  # has 10 study questions and a recorded summary per model


def _generate(instance, keys):
    return materialize_partitions(defs, instance, GENERATION_SELECTION, keys, "generate", progress=False)


def test_baselines_and_recorded_models_generate_and_score(pipeline):
    instance, state, _ = pipeline
    paper = demo_paper_ids()[0]
    keys = [model_paper_key("lead-3", paper), model_paper_key("top-chunk", paper), model_paper_key("recorded-tbank", STUDY_PAPER)]
    summary = _generate(instance, keys)
    assert summary.failed == {}
    store = ArtifactStore(state / "artifacts")

    lead = store.read_frame("summaries", "lead-3", paper)
    assert len(lead) == 1 and lead["error"].iloc[0] == "" and lead["output"].iloc[0]
    assert store.read_frame("answers", "lead-3", paper).empty  # lead-3 writes summaries only

    top = store.read_frame("answers", "top-chunk", paper)
    retrieved = store.read_frame("retrievals", paper)
    best = retrieved[retrieved["final_rank"] == 1].set_index("question_id")["text"]
    for row in top.itertuples():
        assert row.output.strip() == best[row.item_id].strip()
        assert json.loads(row.context_ids)[0].startswith(f"{paper}:")

    recorded = store.read_frame("answers", "recorded-tbank", STUDY_PAPER)
    assert len(recorded) == 10
    metrics = store.read_frame("generation_metrics", "recorded-tbank", STUDY_PAPER)
    assert {"bleu", "rouge1_fmeasure"} <= set(metrics["metric"])
    assert not (metrics["value"].isna() & (metrics["error"] == "")).any()
    assert set(metrics["generation_id"]) <= set(recorded["generation_id"]) | set(store.read_frame("summaries", "recorded-tbank", STUDY_PAPER)["generation_id"])
    for signature in metrics["signature"]:
        assert json.loads(signature)["metric"]


def test_unchanged_inputs_hit_the_cache_and_keep_the_data_version(pipeline):
    instance, state, _ = pipeline
    paper = demo_paper_ids()[1]
    key = model_paper_key("top-chunk", paper)
    assert _generate(instance, [key]).failed == {}
    version = latest_data_version(instance, "answers", key)
    assert _generate(instance, [key]).failed == {}
    frame = ArtifactStore(state / "artifacts").read_frame("answers", "top-chunk", paper)
    assert frame["cache_hit"].all()
    assert latest_data_version(instance, "answers", key) == version


def test_leaderboard_and_lineage_from_a_score_to_its_pdf(pipeline):
    from rag_pipeline.defs.runner import materialize_partitions
    from rag_pipeline.lineage import explain_score, format_lineage

    instance, state, _ = pipeline
    paper = demo_paper_ids()[0]
    assert _generate(instance, [model_paper_key("top-chunk", paper)]).failed == {}
    assert materialize_partitions(defs, instance, ["leaderboard"], [None], "leaderboard", progress=False).failed == {}
    event = instance.get_latest_materialization_event(dg.AssetKey("leaderboard"))
    metadata = event.asset_materialization.metadata
    assert metadata["input_event_ids"].value["generation_metrics"]
    store = ArtifactStore(state / "artifacts")
    metrics = store.read_frame("generation_metrics", "top-chunk", paper)
    score_id = metrics[metrics["metric"] == "rouge1_fmeasure"]["score_id"].iloc[0]
    lineage = explain_score(store, score_id)
    assert lineage["generation"]["model"] == "top-chunk"
    assert lineage["chunks"] and lineage["chunks"][0]["chunk_id"].startswith(f"{paper}:")
    assert lineage["paper_pdf"]["sha256"]
    text = format_lineage(lineage)
    assert score_id in text and lineage["paper_pdf"]["sha256"] in text


def test_a_single_run_backfill_loads_the_model_once_for_all_papers(pipeline):
    """What the UI does for a backfill of the generation assets (BackfillPolicy.single_run)."""
    import dagster as dg

    from rag_pipeline.definitions import ALL_ASSETS
    from rag_pipeline.generate.pool import MODEL_POOL

    instance, state, _ = pipeline
    papers = instance.get_dynamic_partitions("papers")
    demo = demo_paper_ids()
    assert papers[-len(demo):] == demo  # the range below covers exactly the demo papers
    MODEL_POOL.release()
    loads = MODEL_POOL.loads
    result = dg.materialize(
        ALL_ASSETS, selection=["answers"], instance=instance, resources=dict(defs.resources),
        tags={"dagster/asset_partition_range_start": f"top-chunk|{demo[0]}",
              "dagster/asset_partition_range_end": f"top-chunk|{demo[-1]}"},
    )
    assert result.success
    assert MODEL_POOL.loads == loads + 1
    run_id = result.run_id
    records = instance.fetch_materializations(dg.AssetKey("answers"), limit=50).records
    materialized = {r.partition_key for r in records if r.run_id == run_id}
    assert materialized == {f"top-chunk|{paper}" for paper in demo}
    store = ArtifactStore(state / "artifacts")
    for paper in demo:
        assert not store.read_frame("answers", "top-chunk", paper).empty


def test_a_failing_partition_does_not_stop_the_rest_of_a_single_run_backfill(pipeline):
    import dagster as dg

    from rag_pipeline.definitions import ALL_ASSETS
    from rag_pipeline.defs.runner import _failure_message

    instance, state, _ = pipeline
    papers = instance.get_dynamic_partitions("papers")
    demo = demo_paper_ids()
    before = papers[papers.index(demo[0]) - 1]  # a study paper: never ingested here, so no retrievals
    store = ArtifactStore(state / "artifacts")
    result = dg.materialize(
        ALL_ASSETS, selection=["answers"], instance=instance, resources=dict(defs.resources), raise_on_error=False,
        tags={"dagster/asset_partition_range_start": f"top-chunk|{before}",
              "dagster/asset_partition_range_end": f"top-chunk|{demo[-1]}"},
    )
    assert not result.success
    message = _failure_message(result)
    assert f"1 of {len(demo) + 1} partitions failed" in message and f"top-chunk|{before}" in message
    assert "retrievals are not materialized" in message
    records = instance.fetch_materializations(dg.AssetKey("answers"), limit=50).records
    written = {r.partition_key: r.asset_materialization.metadata["artifact_version"].value for r in records if r.run_id == result.run_id}
    assert set(written) == {f"top-chunk|{paper}" for paper in demo}  # the others were generated all the same
    for paper in demo:
        assert store.current_version("answers", "top-chunk", paper) == written[f"top-chunk|{paper}"]
        assert not store.read_frame("answers", "top-chunk", paper).empty
