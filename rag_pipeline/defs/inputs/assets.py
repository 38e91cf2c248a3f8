"""Configuration and registries as observable source assets: Dagster's own data versions.

Each input of ``rag_pipeline.versioned_inputs`` (a model's registry entry, a paper's source and
questions, a ``pipeline.yaml`` section, the rosters) is an observable source asset whose data
version is the content hash of exactly what its readers use. The assets that read it declare it
as a dependency, so an edit makes exactly those partitions stale in the UI, and the automation
(``on_input_change``) re-runs them. Observations are recorded by the registry sensor every 30 s,
by the CLI before each run, and by "Observe sources" in the UI; an unchanged hash records nothing.
"""

from __future__ import annotations

import warnings

import dagster as dg

from rag_pipeline.contracts import MODEL, MODEL_PAPER_KEYS, StageAsset
from rag_pipeline.defs.partitions import BY_PAPER as BY_PAPER_DIMENSION
from rag_pipeline.defs.partitions import MODELS, PAPERS
from rag_pipeline.versioned_inputs import BY_MODEL, BY_PAPER, INPUTS, WHOLE, VersionedInput, inputs_read_by

INPUTS_GROUP = "inputs"
PARTITIONS = {BY_MODEL: MODELS, BY_PAPER: PAPERS, WHOLE: None}


def _source(source: VersionedInput) -> dg.SourceAsset:
    partitions_def = PARTITIONS[source.partitioned]

    @dg.observable_source_asset(
        name=source.name, group_name=INPUTS_GROUP, partitions_def=partitions_def, description=source.description,
    )
    def observe(context):
        versions = source.versions()
        if partitions_def is None:
            return dg.DataVersion(versions[WHOLE])
        known = set(context.instance.get_dynamic_partitions(partitions_def.name))
        return dg.DataVersionsByPartition({key: version for key, version in versions.items() if key in known})

    return observe


# Observable source assets are a Dagster beta API we use on purpose; Dagster re-enables its beta
# notices after our filters in defs/__init__ are installed, so they are silenced right here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.BetaWarning)
    sources = [_source(source) for source in INPUTS]


DATA_VERSION_TAG = "dagster/data_version"


def observe_changed_inputs(instance: dg.DagsterInstance, adding: dict[str, list[str]] | None = None) -> list[dg.AssetObservation]:
    """An observation for every input partition whose hash differs from the last one recorded.

    ``adding``: partitions being added in the same step (the sensor's requests), observed with them
    so a new model's first observation cannot look like a change after its first run.
    """
    adding = adding or {}
    known = {name: set(instance.get_dynamic_partitions(name)) | set(adding.get(name, ()))
             for name in (MODELS.name, PAPERS.name)}
    observations = []
    for source in INPUTS:
        key = dg.AssetKey(source.name)
        versions = source.versions()
        recorded = (_recorded_versions_by_partition(instance, key) if source.partitioned != WHOLE
                    else {None: _recorded_version(instance, key, None)})
        for partition, version in sorted(versions.items()):
            partition_key = partition or None
            if partition_key is not None and partition_key not in known[source.partitioned]:
                continue
            if recorded.get(partition_key) == version:
                continue
            observations.append(dg.AssetObservation(asset_key=key, partition=partition_key,
                                                    tags={DATA_VERSION_TAG: version}))
    return observations


def _recorded_version(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> str | None:
    record = instance.get_latest_data_version_record(key, is_source=True, partition_key=partition)
    if record is None:
        return None
    event = record.event_log_entry.asset_observation or record.event_log_entry.asset_materialization
    return event.tags.get(DATA_VERSION_TAG) if event is not None and event.tags else None


def _recorded_versions_by_partition(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, str]:
    """The last observed data version of every partition of a partitioned input, in one query (the
    tag index Dagster keeps for data versions) instead of one per partition: thousands per tick at
    2,000 papers (docs/scale.md)."""
    tags = instance.event_log_storage.get_latest_tags_by_partition(
        key, dg.DagsterEventType.ASSET_OBSERVATION, [DATA_VERSION_TAG])
    return {partition: values[DATA_VERSION_TAG] for partition, values in tags.items() if DATA_VERSION_TAG in values}


def record_observations(instance: dg.DagsterInstance) -> list[dg.AssetObservation]:
    """Record (outside any run) the inputs that changed; returns what was recorded."""
    observations = observe_changed_inputs(instance)
    for observation in observations:
        instance.report_runless_asset_event(observation)
    return observations


BY_MODEL_DIMENSION = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=MODEL)


def input_deps(asset: StageAsset) -> list[dg.AssetDep]:
    """The source assets ``asset`` reads, each mapped onto its partitions: a model's entry onto that
    model's model × paper partitions, a paper's inputs onto that paper's, a whole section onto all."""
    deps = []
    for source in inputs_read_by(asset):
        mapping = None
        if asset.keys == MODEL_PAPER_KEYS and source.partitioned == BY_MODEL:
            mapping = BY_MODEL_DIMENSION
        elif asset.keys == MODEL_PAPER_KEYS and source.partitioned == BY_PAPER:
            mapping = BY_PAPER_DIMENSION
        deps.append(dg.AssetDep(source.name, partition_mapping=mapping))
    return deps
