"""Partitions: papers and models are dynamic, kept in sync with data/papers.yaml and data/models.yaml."""

from __future__ import annotations

import dagster as dg

from rag_pipeline.datasets import load_papers
from rag_pipeline.generate.registry import load_models

PAPERS = dg.DynamicPartitionsDefinition(name="papers")
MODELS = dg.DynamicPartitionsDefinition(name="models")
# Dimension names sort alphabetically, so keys print model-first: "qwen2.5-coder-0.5b|demo-x".
PAPER_MODEL = dg.MultiPartitionsDefinition({"model": MODELS, "paper": PAPERS})

BY_PAPER = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="paper")


def registry_keys() -> dict[str, list[str]]:
    """The partition keys the registries ask for now."""
    return {
        PAPERS.name: [paper.id for paper in load_papers()],
        MODELS.name: [model.name for model in load_models()],
    }


def partition_changes(instance: dg.DagsterInstance) -> dict[str, dict[str, list[str]]]:
    """What differs between the registries and the instance's dynamic partitions."""
    changes = {}
    for name, wanted in registry_keys().items():
        existing = set(instance.get_dynamic_partitions(name))
        changes[name] = {
            "added": [key for key in wanted if key not in existing],
            "removed": sorted(existing - set(wanted)),
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


def paper_and_model(key) -> tuple[str, str]:
    """(paper, model) of a paper × model partition key (a MultiPartitionKey or its "model|paper" string)."""
    if not isinstance(key, dg.MultiPartitionKey):
        key = PAPER_MODEL.get_partition_key_from_str(str(key))
    return key.keys_by_dimension["paper"], key.keys_by_dimension["model"]


def run_partitions(context: dg.AssetExecutionContext) -> list[str]:
    """Every partition key this run materializes: one for an ordinary run, many for a single-run
    backfill (the BackfillPolicy of the model-loading assets), ordered so each model loads once."""
    keys = [str(key) for key in context.partition_keys]
    return sorted(keys) if context.has_partition_key_range else keys


def materialize_each(context: dg.AssetExecutionContext, materialize_one) -> dg.MaterializeResult:
    """Call `materialize_one(key) -> (metadata, data_version)` for every partition of the run.

    In a single-run backfill one partition's failure does not stop the others: they are all
    generated (and cached), then the step fails naming every failed partition, so a re-run only
    redoes what failed.
    """
    keys = run_partitions(context)
    if len(keys) == 1:
        return combine_results({keys[0]: materialize_one(keys[0])})
    results, failures = {}, {}
    for key in keys:
        try:
            results[key] = materialize_one(key)
        except Exception as exc:  # noqa: BLE001 - reported below with its partition
            failures[key] = f"{type(exc).__name__}: {exc}"
            context.log.error(f"partition {key} failed: {failures[key]}")
    if failures:
        raise dg.Failure(
            description=f"{len(failures)} of {len(keys)} partitions failed: "
            + "; ".join(f"{key}: {message}" for key, message in failures.items()),
            metadata={"failed": dg.MetadataValue.json(failures), "succeeded": ", ".join(results)},
        )
    return combine_results(results)


def combine_results(results: dict[str, tuple[dict, dg.DataVersion]]) -> dg.MaterializeResult:
    """One MaterializeResult for the run's partitions.

    A single partition keeps its content-hash data version. A single-run backfill records the
    per-partition figures as a table and lets Dagster derive each partition's version from code and
    input versions (one explicit version cannot describe several partitions).
    """
    if len(results) == 1:
        (metadata, version), = results.values()
        return dg.MaterializeResult(metadata=metadata, data_version=version)
    rows = [{"partition": key, **{k: v for k, v in meta.items() if isinstance(v, (int, float, str))}} for key, (meta, _) in results.items()]
    import pandas as pd

    return dg.MaterializeResult(
        metadata={"partitions": len(results), "per_partition": dg.MetadataValue.md(pd.DataFrame(rows).to_markdown(index=False))}
    )
