"""Which partitions are stale or missing, as Dagster's UI shows them (its stale-status resolver).

The CLI runs only these, and the nightly schedule requests only these: an edit of a model's entry,
a ``pipeline.yaml`` section or a paper's questions (observed as input versions) makes exactly the
partitions that read it stale, and a partition whose inputs did not change is left alone.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContext


class _InstanceLoadingContext(LoadingContext):
    """The batching context Dagster's resolver loads records through, bound to one instance."""

    def __init__(self, instance: dg.DagsterInstance):
        self._instance, self._loaders = instance, {}

    @property
    def instance(self) -> dg.DagsterInstance:
        return self._instance

    @property
    def loaders(self) -> dict:
        return self._loaders


def resolver(defs: dg.Definitions, instance: dg.DagsterInstance) -> CachingStaleStatusResolver:
    return CachingStaleStatusResolver(instance, defs.resolve_asset_graph(), _InstanceLoadingContext(instance))


def partition_status(defs: dg.Definitions, instance: dg.DagsterInstance, asset: str, partition_key) -> tuple[str, list[str]]:
    """("FRESH" | "STALE" | "MISSING", reasons) of one partition of one asset."""
    statuses = resolver(defs, instance)
    key = dg.AssetKey(asset)
    status = statuses.get_status(key, partition_key)
    causes = statuses.get_stale_causes(key, partition_key) if status == StaleStatus.STALE else []
    return status.value, [f"{cause.reason} ({cause.dependency.asset_key.to_user_string()})" if cause.dependency else cause.reason
                          for cause in causes]


def stale_or_missing(defs: dg.Definitions, instance: dg.DagsterInstance, assets: list[str], partition_keys: list) -> list:
    """The partition keys (in order) for which any of ``assets`` is stale or missing."""
    statuses = resolver(defs, instance)
    wanted = []
    for partition_key in partition_keys:
        if any(statuses.get_status(dg.AssetKey(asset), partition_key) in (StaleStatus.STALE, StaleStatus.MISSING)
               for asset in assets):
            wanted.append(partition_key)
    return wanted


def stale_selections(defs: dg.Definitions, instance: dg.DagsterInstance, assets: list[str], partition_keys: list) -> dict:
    """For each partition key with something to do: the assets to run, in ``assets`` order (which is
    upstream first): the stale or missing ones and, after them, every later asset of ``assets`` that
    reads one of those (its input may change). A chunking edit runs chunks and below, not the PDF."""
    statuses = resolver(defs, instance)
    graph = defs.resolve_asset_graph()
    selections = {}
    for partition_key in partition_keys:
        chosen: list[str] = []
        for asset in assets:
            key = dg.AssetKey(asset)
            upstream_chosen = any(parent.to_user_string() in chosen for parent in graph.get(key).parent_keys)
            if upstream_chosen or statuses.get_status(key, partition_key) in (StaleStatus.STALE, StaleStatus.MISSING):
                chosen.append(asset)
        if chosen:
            selections[partition_key] = chosen
    return selections
