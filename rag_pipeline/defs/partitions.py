"""Partitions: papers and models are dynamic, kept in sync with data/papers.yaml and data/models.yaml."""

from __future__ import annotations

import dagster as dg

from rag_pipeline.contracts import MODEL, PAPER
from rag_pipeline.datasets import PaperSpec, read_papers
from rag_pipeline.defs.metadata import log_warnings, ui_metadata
from rag_pipeline.defs.provenance import partition_materialization
from rag_pipeline.generate.registry import read_models
from rag_pipeline.registries import RegistryReport

PAPERS = dg.DynamicPartitionsDefinition(name="papers")
MODELS = dg.DynamicPartitionsDefinition(name="models")
# Dimension names sort alphabetically, so keys print model-first: "qwen2.5-coder-0.5b|demo-x",
# the order of contracts.MODEL_PAPER_KEYS.
PAPER_MODEL = dg.MultiPartitionsDefinition({MODEL: MODELS, PAPER: PAPERS})

BY_PAPER = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=PAPER)


def registry_reports() -> dict[str, RegistryReport]:
    """Each dynamic partition set's registry as read now: valid entries and skipped ones."""
    return {PAPERS.name: read_papers(), MODELS.name: read_models()}


def entry_key(entry) -> str:
    return entry.id if isinstance(entry, PaperSpec) else entry.name


def partition_changes(instance: dg.DagsterInstance) -> dict[str, dict[str, list[str]]]:
    """What differs between the registries and the instance's dynamic partitions.

    An entry that is invalid now (a typo in its YAML) is reported under ``invalid`` and keeps its
    partition: a mistake in one entry neither removes its history nor stops the others syncing.
    """
    changes = {}
    for name, report in registry_reports().items():
        wanted = [entry_key(entry) for entry in report.entries]
        skipped = {error.key for error in report.errors if error.key}
        existing = set(instance.get_dynamic_partitions(name))
        changes[name] = {
            "added": [key for key in wanted if key not in existing],
            "removed": sorted(existing - set(wanted) - skipped),
            "invalid": [str(error) for error in report.errors],
        }
    return changes


def sync_registry_partitions(instance: dg.DagsterInstance) -> dict[str, dict[str, list[str]]]:
    """Add registry entries missing from the instance and drop partitions no longer registered."""
    changes = partition_changes(instance)
    for name, change in changes.items():
        if change["added"]:
            instance.add_dynamic_partitions(name, change["added"])
        for key in change["removed"]:
            instance.delete_dynamic_partition(name, key)
    return changes


def model_paper_key(model: str, paper: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({MODEL: model, PAPER: paper})


def model_and_paper(key) -> tuple[str, str]:
    """(model, paper) of a model × paper partition key (a MultiPartitionKey or its "model|paper" string),
    in the storage order of contracts.MODEL_PAPER_KEYS."""
    if not isinstance(key, dg.MultiPartitionKey):
        key = PAPER_MODEL.get_partition_key_from_str(str(key))
    return key.keys_by_dimension[MODEL], key.keys_by_dimension[PAPER]


def run_partitions(context: dg.AssetExecutionContext) -> list:
    """Every partition key this run materializes: one for an ordinary run, many for a single-run
    backfill (the BackfillPolicy of the model-loading assets), ordered so each model loads once."""
    keys = list(context.partition_keys)
    if len(keys) > 1 and isinstance(context.assets_def.partitions_def, dg.MultiPartitionsDefinition):
        keys = [key if isinstance(key, dg.MultiPartitionKey) else PAPER_MODEL.get_partition_key_from_str(key) for key in keys]
    return sorted(keys, key=str) if context.has_partition_key_range else keys


def materialize_each(context: dg.AssetExecutionContext, materialize_one):
    """Call ``materialize_one(key) -> StageOutcome`` for every partition of the run; yields the events.

    One partition: a MaterializeResult with its content-hash data version. A single-run backfill:
    one materialization per partition with its own data version and provenance
    (``defs.provenance``), and one partition's failure does not stop the others: they are all
    generated (and cached), then the step fails naming every failed partition, so a re-run only
    redoes what failed. Assets using this declare ``output_required=False``.
    """
    keys = run_partitions(context)
    if len(keys) == 1:
        outcome = log_warnings(context, materialize_one(str(keys[0])))
        yield dg.MaterializeResult(metadata=ui_metadata(outcome.metadata), data_version=dg.DataVersion(outcome.version))
        return
    succeeded, failures = [], {}
    for key in keys:
        try:
            outcome = log_warnings(context, materialize_one(str(key)))
        except Exception as exc:  # noqa: BLE001 - reported below with its partition
            failures[str(key)] = f"{type(exc).__name__}: {exc}"
            context.log.error(f"partition {key} failed: {failures[str(key)]}")
            continue
        succeeded.append(str(key))
        yield partition_materialization(context, key, outcome)
    if failures:
        raise dg.Failure(
            description=f"{len(failures)} of {len(keys)} partitions failed: "
            + "; ".join(f"{key}: {message}" for key, message in failures.items()),
            metadata={"failed": dg.MetadataValue.json(failures), "succeeded": ", ".join(succeeded)},
        )
