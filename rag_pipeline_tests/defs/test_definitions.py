import dagster as dg

from rag_pipeline.datasets import load_papers
from rag_pipeline.definitions import defs
from rag_pipeline.defs.partitions import MODELS, PAPERS, partition_changes, sync_registry_partitions
from rag_pipeline.generate.registry import load_models
from rag_pipeline.versioned_inputs import INPUTS

EXPECTED_ASSETS = {
    "paper_pdf", "paper_markdown", "paper_text", "paper_chunks", "paper_index", "retrievals",
    "retrieval_metrics", "summaries", "answers", "generation_metrics", "judge_labels", "judge_calibration", "judgments", "leaderboard",
}


def test_definitions_load_and_hold_the_whole_graph():
    dg.Definitions.validate_loadable(defs)
    assert {key.to_user_string() for key in defs.resolve_all_asset_keys()} == EXPECTED_ASSETS | {i.name for i in INPUTS}
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("summaries")).partitions_def.partition_dimension_names == ["model", "paper"]
    assert dg.AssetKey("paper_text") in graph.get(dg.AssetKey("summaries")).parent_keys
    for source in INPUTS:  # each configuration input is an observable source its readers depend on
        assert graph.get(dg.AssetKey(source.name)).is_observable
        for reader in source.readers:
            assert dg.AssetKey(source.name) in graph.get(dg.AssetKey(reader.name)).parent_keys, (source.name, reader.name)
    assert {s.name for s in defs.sensors} == {"registry_sensor", "automation_sensor"}
    # Both run by default: a model added to the registry is evaluated with no click.
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in defs.sensors)


def test_core_packages_do_not_import_dagster():
    from rag_pipeline.settings import PACKAGE_ROOT

    for package in ("ingest", "index", "generate", "evaluate", "stages"):
        for path in (PACKAGE_ROOT / package).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            assert "import dagster" not in source and "from dagster" not in source, path


def test_registry_sync_adds_and_removes_partitions(data_copy):
    with dg.instance_for_test() as instance:
        changes = sync_registry_partitions(instance)
        assert changes["papers"]["added"] == [p.id for p in load_papers()]
        assert set(instance.get_dynamic_partitions(MODELS.name)) == {m.name for m in load_models()}
        # Drop a paper from the registry: its partition goes, nothing else changes.
        registry = data_copy / "papers.yaml"
        lines = [line for line in registry.read_text().splitlines() if "id: word2vec" not in line]
        registry.write_text("\n".join(lines) + "\n")
        assert partition_changes(instance)["papers"] == {"added": [], "removed": ["word2vec"], "invalid": []}
        sync_registry_partitions(instance)
        assert "word2vec" not in instance.get_dynamic_partitions(PAPERS.name)
        assert partition_changes(instance)["papers"] == {"added": [], "removed": [], "invalid": []}


def test_an_invalid_registry_entry_keeps_its_partition_and_the_others_sync(data_copy):
    with dg.instance_for_test() as instance:
        sync_registry_partitions(instance)
        registry = data_copy / "papers.yaml"
        text = registry.read_text()
        # word2vec gets a bad slug key (invalid entry); a new good paper is added next to it.
        text = text.replace("id: word2vec, arxiv:", "id: word2vec, arxiv:", 1).replace(
            "{id: word2vec,", "{id: word2vec, colection: typo,", 1
        )
        text += '  - {id: extra-paper, pdf: "demo_corpus/pdf/demo-rerank-study.pdf", title: "Extra", collection: demo}\n'
        registry.write_text(text)
        changes = sync_registry_partitions(instance)["papers"]
        assert changes["added"] == ["extra-paper"] and changes["removed"] == []
        [error] = changes["invalid"]
        assert "papers.yaml entry" in error and "paper 'word2vec'" in error and "colection" in error
        assert {"word2vec", "extra-paper"} <= set(instance.get_dynamic_partitions(PAPERS.name))


def test_registry_sensor_requests_partition_changes(data_copy):
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance)
        result = defs.get_sensor_def("registry_sensor")(context)
        added = {req.partitions_def_name: req.partition_keys for req in result.dynamic_partitions_requests}
        assert set(added["models"]) == {m.name for m in load_models()}
        # Every input is observed in the same tick, the new partitions' included.
        observed = {event.asset_key.to_user_string() for event in result.asset_events}
        assert observed == {source.name for source in INPUTS}
        models = {event.partition for event in result.asset_events if event.asset_key.to_user_string() == "model_entry"}
        assert models == {m.name for m in load_models()}
        for request in result.dynamic_partitions_requests:  # what the daemon does with the result
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        for event in result.asset_events:
            instance.report_runless_asset_event(event)
        assert isinstance(defs.get_sensor_def("registry_sensor")(dg.build_sensor_context(instance=instance)), dg.SkipReason)
