"""Materialize selections of the asset graph in-process on a real Dagster instance.

Used by `rag-pipeline demo` and the tests; the UI does the same through its launchpad. A failing
partition is reported and the others carry on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from tqdm import tqdm

from rag_pipeline import contracts
from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.defs.partitions import model_paper_key, sync_registry_partitions
from rag_pipeline.settings import state_paths

INSTANCE_CONFIG = """\
# Written by `rag-pipeline init`. Every pool runs one step at a time across all runs:
# `gpu` (generation and judging share one accelerator) and `chroma` (one writer per directory).
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def instance_home() -> Path:
    """DAGSTER_HOME, defaulting to <state>/dagster; created with the instance config if new."""
    home = Path(os.environ.get("DAGSTER_HOME") or state_paths().dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_CONFIG, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def get_instance() -> dg.DagsterInstance:
    instance_home()
    return dg.DagsterInstance.get()


@dataclass
class RunSummary:
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def merge(self, other: RunSummary) -> RunSummary:
        self.succeeded += other.succeeded
        self.failed.update(other.failed)
        return self


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None and "dagster" in (error.cls_name or "").lower():
                error = error.cause
            return f"{event.step_key}: {error.message.strip()}"
    return "run failed"


def materialize_partitions(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    selection: list[str],
    partition_keys: list,
    label: str,
    resources: dict | None = None,
    progress: bool = True,
    log_level: str = "WARNING",
) -> RunSummary:
    """Materialize `selection` (asset names) of `defs` once per partition key; failures are collected, not raised.

    Dagster's own step logs go to the console at `log_level` (the run's full log is in the instance).
    """
    summary = RunSummary()
    resources = resources if resources is not None else dict(defs.resources)
    graph = [*defs.assets, *defs.asset_checks]
    for key in tqdm(partition_keys, desc=label, disable=not progress, unit="partition"):
        result = dg.materialize(
            graph,
            selection=selection,
            partition_key=key,
            instance=instance,
            resources=resources,
            raise_on_error=False,
            tags={"rag_pipeline/launched_by": "cli"},
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
        name = str(key)
        if result.success:
            summary.succeeded.append(name)
        else:
            summary.failed[name] = _failure_message(result)
    return summary


INGEST_SELECTION = [asset.name for asset in contracts.INGEST_ASSETS]
GENERATION_SELECTION = [asset.name for asset in (*contracts.GENERATION_ASSETS, contracts.GENERATION_METRICS)]


def run_pipeline(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    papers: list[str],
    models: list[str],
    study_papers: list[str] = (),
    study_models: list[str] = (),
    judge: bool = True,
    resources: dict | None = None,
    progress: bool = True,
    reingest: bool = False,
) -> RunSummary:
    """The whole graph for a selection: ingest `papers`, generate `models` on them, load the
    recorded study (`study_models` × `study_papers`, which need no ingestion), judge, leaderboard.

    Papers whose retrievals are already stored are not ingested again unless `reingest`.
    """
    sync_registry_partitions(instance)
    store = ArtifactStore(state_paths().artifacts)
    stored = [p for p in papers if not reingest and store.exists(contracts.RETRIEVALS.name, p)]
    summary = materialize_partitions(defs, instance, INGEST_SELECTION, [p for p in papers if p not in stored], "ingest", resources, progress)
    ingested = [p for p in papers if p in summary.succeeded or p in stored]
    keys = [model_paper_key(m, p) for m in models for p in ingested]
    keys += [model_paper_key(m, p) for m in study_models for p in study_papers]
    summary.merge(materialize_partitions(defs, instance, GENERATION_SELECTION, keys, "generate", resources, progress))
    if judge:
        judged = sorted(set(ingested) | set(study_papers))
        summary.merge(materialize_partitions(defs, instance, [contracts.JUDGMENTS.name], judged, "judge", resources, progress))
    summary.merge(materialize_partitions(defs, instance, [contracts.LEADERBOARD.name], [None], "leaderboard", resources, progress))
    return summary
