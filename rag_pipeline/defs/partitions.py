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


def paper_and_model(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """(paper, model) of a paper × model partition."""
    keys = context.partition_key.keys_by_dimension  # type: ignore[union-attr]
    return keys["paper"], keys["model"]
