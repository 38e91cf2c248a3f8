"""A model added to the registry is generated and scored on its own; unchanged inputs trigger nothing."""

import dagster as dg
import yaml

from rag_pipeline.definitions import defs
from rag_pipeline.defs.inputs import record_observations
from rag_pipeline.defs.partitions import sync_registry_partitions
from rag_pipeline_tests.defs.conftest import demo_paper_ids


def _requested(result, asset):
    return {str(k) for k in result.get_requested_partitions(dg.AssetKey(asset))} if result.get_num_requested(dg.AssetKey(asset)) else set()


def _register_lead_model(data_dir, name: str, sentences: int) -> None:
    """Append a lead-N extractive model (a copy of lead-3's entry) to data_dir's registry."""
    registry = yaml.safe_load((data_dir / "models.yaml").read_text())
    lead = next(m for m in registry["models"] if m["name"] == "lead-3")
    registry["models"].append({**lead, "name": name, "extractive": {**lead.get("extractive", {}), "sentences": sentences}})
    (data_dir / "models.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True))


def _report_ingested(instance: dg.DagsterInstance, papers: list[str]) -> None:
    """Registry partitions synced, inputs observed, and the papers' ingestion reported as
    materialized (runless): the state generation starts from, without computing it."""
    sync_registry_partitions(instance)
    record_observations(instance)
    for asset in ("paper_pdf", "paper_markdown", "paper_text", "paper_chunks", "paper_index", "retrievals"):
        for paper in papers:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=paper))


def test_new_model_is_requested_alone(pipeline, data_copy):

    instance, _, _ = pipeline
    sync_registry_partitions(instance)
    record_observations(instance)
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    _register_lead_model(data_copy, "lead-2", 2)
    assert sync_registry_partitions(instance)["models"]["added"] == ["lead-2"]
    record_observations(instance)  # as the registry sensor does in the same tick

    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor)
    summaries = _requested(result, "summaries")
    assert summaries == {f"lead-2|{paper}" for paper in demo_paper_ids()}  # study papers lack inputs here
    for asset in ("paper_pdf", "paper_markdown", "paper_chunks", "paper_index", "retrievals"):
        assert _requested(result, asset) == set(), asset
    instance.delete_dynamic_partition("models", "lead-2")  # the session instance is shared


def test_a_new_models_metrics_get_their_own_run_after_its_generations(data_copy):
    """Generation materializes a range of partitions in one run without a step output, so a metrics
    step in that run would be skipped (and nothing requests it again): the metrics are requested in
    a later tick, once the new model's summaries and answers are written."""
    papers = demo_paper_ids()
    with dg.instance_for_test() as instance:  # the upstream partitions are reported, not computed
        _report_ingested(instance, papers)
        baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        _register_lead_model(data_copy, "lead-1", 1)
        sync_registry_partitions(instance)
        record_observations(instance)
        new_keys = {f"lead-1|{paper}" for paper in papers}

        requested = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor)
        assert _requested(requested, "summaries") & new_keys == new_keys
        assert _requested(requested, "generation_metrics") & new_keys == set()

        waiting = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=requested.cursor)
        assert _requested(waiting, "generation_metrics") & new_keys == set()  # nothing written yet

        for asset in ("summaries", "answers"):  # what the generation run reports, one per partition
            for key in sorted(new_keys):
                instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=key))
        written = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=waiting.cursor)
        assert _requested(written, "generation_metrics") & new_keys == new_keys


def test_partitions_missing_at_the_first_evaluation_are_not_started(data_copy):
    """A model registered and synced while the daemon was stopped is missing at the automation's
    first evaluation, which Dagster counts as handled (README: start it once by hand); a model
    registered after that first evaluation is newly missing and requested."""
    papers = demo_paper_ids()
    with dg.instance_for_test() as instance:
        _report_ingested(instance, papers)
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert _requested(first, "summaries") == set()  # every registered model is missing here

        _register_lead_model(data_copy, "lead-1", 1)
        sync_registry_partitions(instance)
        record_observations(instance)
        later = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        assert _requested(later, "summaries") == {f"lead-1|{paper}" for paper in papers}


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
