"""A model added to the registry is generated and scored on its own; unchanged inputs trigger nothing."""

import dagster as dg
import yaml

from rag_pipeline.definitions import defs
from rag_pipeline.defs.inputs import record_observations
from rag_pipeline.defs.partitions import sync_registry_partitions
from rag_pipeline_tests.defs.conftest import demo_paper_ids


def _requested(result, asset):
    return {str(k) for k in result.get_requested_partitions(dg.AssetKey(asset))} if result.get_num_requested(dg.AssetKey(asset)) else set()


def test_new_model_is_requested_alone(pipeline, data_copy):

    instance, _, _ = pipeline
    sync_registry_partitions(instance)
    record_observations(instance)
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    registry = yaml.safe_load((data_copy / "models.yaml").read_text())
    lead = next(m for m in registry["models"] if m["name"] == "lead-3")
    registry["models"].append({**lead, "name": "lead-2", "extractive": {**lead.get("extractive", {}), "sentences": 2}})
    (data_copy / "models.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True))
    assert sync_registry_partitions(instance)["models"]["added"] == ["lead-2"]
    record_observations(instance)  # as the registry sensor does in the same tick

    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor)
    summaries = _requested(result, "summaries")
    assert summaries == {f"lead-2|{paper}" for paper in demo_paper_ids()}  # study papers lack inputs here
    for asset in ("paper_pdf", "paper_markdown", "paper_chunks", "paper_index", "retrievals"):
        assert _requested(result, asset) == set(), asset
    instance.delete_dynamic_partition("models", "lead-2")  # the session instance is shared


def test_new_generations_trigger_the_judge_and_leaderboard(pipeline):
    """The judge and the leaderboard read whatever exists: missing model × paper partitions
    (most of them, offline) must not block them."""
    from rag_pipeline.defs.runner import GENERATION_SELECTION, materialize_partitions, model_paper_key

    instance, _, _ = pipeline
    paper = demo_paper_ids()[2]
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert materialize_partitions(defs, instance, GENERATION_SELECTION, [model_paper_key("lead-3", paper)], "generate", progress=False).failed == {}
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor)
    assert paper in _requested(result, "judgments")
    assert result.get_num_requested(dg.AssetKey("leaderboard")) == 1
