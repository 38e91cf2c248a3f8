"""A real Dagster instance (sqlite, temp dir) with the demo corpus ingested once per test session."""

import shutil

import dagster as dg
import pytest

from rag_pipeline.datasets import load_papers
from rag_pipeline.definitions import defs
from rag_pipeline_tests.suite_data import SUITE_DATA


def demo_paper_ids() -> list[str]:
    return [p.id for p in load_papers() if p.collection == "demo"]


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """(instance, state_dir, ingest RunSummary) after ingesting every demo paper through Dagster."""
    from rag_pipeline.defs.inputs import record_observations
    from rag_pipeline.defs.partitions import sync_registry_partitions
    from rag_pipeline.defs.runner import INGEST_SELECTION, materialize_partitions

    state = tmp_path_factory.mktemp("pipeline_state")
    patch = pytest.MonkeyPatch()
    patch.setenv("RAG_PIPELINE_HOME", str(state))
    with dg.instance_for_test() as instance:
        sync_registry_partitions(instance)
        record_observations(instance)  # the configuration's versions, as the registry sensor records them
        summary = materialize_partitions(defs, instance, INGEST_SELECTION, demo_paper_ids(), "ingest", progress=False)
        yield instance, state, summary
    patch.undo()


@pytest.fixture()
def data_copy(tmp_path, monkeypatch):
    """A private copy of data/ (registries can be edited) selected through RAG_PIPELINE_DATA."""
    target = tmp_path / "data"
    shutil.copytree(SUITE_DATA, target)
    monkeypatch.setenv("RAG_PIPELINE_DATA", str(target))
    return target


def latest_data_version(instance: dg.DagsterInstance, asset: str, partition) -> str | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[str(partition)] if partition else None), limit=1
    ).records
    if not records:
        return None
    return records[0].asset_materialization.tags.get("dagster/data_version")
