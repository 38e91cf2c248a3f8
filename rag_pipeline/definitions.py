"""The one Dagster Definitions object (workspace.yaml points here): the domains merged."""

import dagster as dg

from rag_pipeline.defs import evaluation, generation, ingest, inputs
from rag_pipeline.defs.automation import automation_sensor, registry_sensor
from rag_pipeline.defs.executors import executor_def
from rag_pipeline.defs.resources import resources_from_config

defs = dg.Definitions.merge(
    inputs.definitions(),
    ingest.definitions(),
    generation.definitions(),
    evaluation.definitions(),
    dg.Definitions(
        sensors=[registry_sensor, automation_sensor],
        resources=resources_from_config(),
        # In-process by default (one process per run: a model loaded for the first partition serves
        # the others); Dagster's celery executor with $RAG_PIPELINE_EXECUTOR=celery (defs/executors.py).
        executor=executor_def(),
    ),
)
ALL_ASSETS = [*ingest.assets.assets, *generation.assets.assets, *evaluation.assets.assets]
ALL_CHECKS = [*ingest.checks.checks, *evaluation.checks.checks]
