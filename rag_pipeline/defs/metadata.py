"""Stage outcomes as Dagster materialization results (metadata types and data versions)."""

from __future__ import annotations

import dagster as dg

from rag_pipeline.stages.outcome import FilePath, Json, Markdown, StageOutcome, Url


def metadata_value(value):
    """A stage's plain or wrapped value as the Dagster metadata type the UI renders best."""
    if isinstance(value, Markdown):
        return dg.MetadataValue.md(value.text)
    if isinstance(value, Json):
        return dg.MetadataValue.json(value.value)
    if isinstance(value, FilePath):
        return dg.MetadataValue.path(value.path)
    if isinstance(value, Url):
        return dg.MetadataValue.url(value.url)
    return value


def ui_metadata(metadata: dict) -> dict:
    return {name: metadata_value(value) for name, value in metadata.items()}


def log_warnings(context, outcome: StageOutcome) -> StageOutcome:
    for warning in outcome.warnings:
        context.log.warning(warning)
    return outcome


def materialize_result(outcome: StageOutcome) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=ui_metadata(outcome.metadata), data_version=dg.DataVersion(outcome.version))
