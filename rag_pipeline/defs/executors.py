"""Which executor runs the steps of a run, chosen by configuration: in-process (the default, one
process per run) or Dagster's celery executor (``dagster-celery``), whose steps go to worker
processes on any machine through a broker (Redis or RabbitMQ).

Environment (secrets only here, never in a file):

- ``RAG_PIPELINE_EXECUTOR``: ``in_process`` (default) or ``celery``.
- ``RAG_PIPELINE_CELERY_BROKER``: the broker URL (``redis://HOST:6379/0``, ``amqp://USER:PW@HOST:5672//``).
- ``RAG_PIPELINE_CELERY_BACKEND``: where step results go back (default: the broker for Redis,
  ``rpc://`` for RabbitMQ).

Every step goes to one celery queue, named by Dagster's own ``dagster-celery/queue`` op tag and
derived from what the step needs (``queue_for``, applied by the asset decorators through
``placement``):

- ``gpu``: the steps that load a generation or judge model (pool ``gpu``). Start one worker per
  accelerator with one process (``-c 1``): the model pool (``rag_pipeline.generate.pool``) is a
  process global, so that process keeps its model loaded from one step to the next and never holds
  two.
- ``chroma``: the steps that open Chroma (indexing, retrieval). An embedded (persistent) Chroma
  directory must be used by a single process: another process's client keeps serving the vectors
  it loaded, not those written since. With embedded Chroma, exactly one worker with ``-c 1`` takes
  this queue; with a Chroma server (``chroma.mode: http``) any number may.
- ``cpu``: everything else (celery's default queue here).

A step that needs both (retrieval that translates questions with an LLM: pool ``gpu``, and Chroma)
goes to ``gpu``; with embedded Chroma, one worker process must then serve both queues
(``-Q gpu,chroma -c 1``).

The workers import ``rag_pipeline.defs.celery_worker`` (``celery -A rag_pipeline.defs.celery_worker
worker -Q gpu -c 1``) and the steps they take load ``rag_pipeline.definitions`` as every other
Dagster process does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import dagster as dg

from rag_pipeline.defs.instance import InstanceConfigError

EXECUTOR_ENV = "RAG_PIPELINE_EXECUTOR"
BROKER_ENV = "RAG_PIPELINE_CELERY_BROKER"
BACKEND_ENV = "RAG_PIPELINE_CELERY_BACKEND"
IN_PROCESS, CELERY = "in_process", "celery"
EXECUTORS = (IN_PROCESS, CELERY)

# dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG (not imported: loading the definitions needs no celery)
QUEUE_TAG = "dagster-celery/queue"
GPU_QUEUE, CHROMA_QUEUE, CPU_QUEUE = "gpu", "chroma", "cpu"
QUEUES = (GPU_QUEUE, CHROMA_QUEUE, CPU_QUEUE)
# What sends a step to a queue other than `cpu`: its Dagster pool, or a resource it uses.
QUEUE_OF_POOL = {"gpu": GPU_QUEUE, "chroma": CHROMA_QUEUE}
QUEUE_OF_RESOURCE = {"chroma": CHROMA_QUEUE}

# The module and attribute every Dagster process loads the definitions from (workspace.yaml, the
# code server, the celery workers), and the job that materializes any selection of the assets.
DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE = "rag_pipeline.definitions", "defs"
ASSET_JOB = "__ASSET_JOB"  # dagster._core.definitions.assets.job.asset_job.IMPLICIT_ASSET_JOB_NAME


class ExecutorConfigError(InstanceConfigError):
    """The executor cannot be configured as asked; the message says what to set (`rag-pipeline`
    prints it and exits 2, as for the instance's storage)."""


def queue_for(pool: str | None = None, resource_keys: Iterable[str] = ()) -> str:
    """The celery queue of a step with Dagster pool `pool` that uses the resources `resource_keys`."""
    if pool in QUEUE_OF_POOL:
        return QUEUE_OF_POOL[pool]
    for key in sorted(resource_keys):
        if key in QUEUE_OF_RESOURCE:
            return QUEUE_OF_RESOURCE[key]
    return CPU_QUEUE


def placement(pool: str | None = None, resources: Iterable[str] = ()) -> dict:
    """The asset-decorator keywords that place a step: its Dagster pool (a concurrency limit on the
    instance) and its celery queue (which workers may take it)."""
    options: dict = {"op_tags": {QUEUE_TAG: queue_for(pool, resources)}}
    if pool is not None:
        options["pool"] = pool
    return options


def executor_choice() -> str:
    """The executor named by $RAG_PIPELINE_EXECUTOR (default in_process)."""
    choice = (os.environ.get(EXECUTOR_ENV) or IN_PROCESS).strip().lower().replace("-", "_")
    if choice not in EXECUTORS:
        raise ExecutorConfigError(f"${EXECUTOR_ENV}={os.environ.get(EXECUTOR_ENV)!r}: expected one of {', '.join(EXECUTORS)}")
    return choice


def backend_source() -> dict | str:
    """The result backend as executor config: $RAG_PIPELINE_CELERY_BACKEND, else the Redis broker
    itself, else celery's rpc:// (results as broker messages: RabbitMQ)."""
    if os.environ.get(BACKEND_ENV):
        return {"env": BACKEND_ENV}
    if os.environ.get(BROKER_ENV, "").startswith(("redis://", "rediss://")):
        return {"env": BROKER_ENV}
    return "rpc://"


# Celery settings shared by the executor (which submits) and the workers (which take): unnamed
# steps go to `cpu`; a worker reserves one task at a time, so a long step does not hold others back.
# A step is acknowledged when it ends, and handed to a worker again when its process dies mid-step
# (SIGKILL, out of memory): dagster-celery would otherwise fail the step with WorkerLostError and,
# when another step of the run waits on a pool, never finish the run. On Redis an unacknowledged
# step goes to another worker after the visibility timeout, so that is a day, not celery's hour.
REDELIVERY_TIMEOUT_S = 24 * 3600
CELERY_SETTINGS = {
    "task_default_queue": CPU_QUEUE,
    "worker_prefetch_multiplier": 1,
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "broker_transport_options": {"visibility_timeout": REDELIVERY_TIMEOUT_S},
}


def celery_config() -> dict:
    """The celery executor's config: the broker and backend as references to the environment, so
    no URL (nor its password) is part of the definitions or of any run's config."""
    if not os.environ.get(BROKER_ENV):
        raise ExecutorConfigError(
            f"${EXECUTOR_ENV}=celery needs the broker URL in ${BROKER_ENV} "
            "(e.g. redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672//)"
        )
    return {"broker": {"env": BROKER_ENV}, "backend": backend_source(), "config_source": dict(CELERY_SETTINGS)}


def executor_def() -> dg.ExecutorDefinition:
    """The executor of the definitions (the UI's and the daemon's runs, and `rag-pipeline run`)."""
    if executor_choice() == CELERY:
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_config(), name="celery")
    # One process per run: a model loaded for the first partition serves the others (the model pool).
    return dg.in_process_executor


def reconstructable_asset_job():
    """The definitions' asset job as a pointer other processes can load it from (what `execute_job`
    hands to the executor's workers): the module every Dagster process loads."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    repository = ReconstructableRepository.for_module(DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE, os.getcwd())
    return repository.get_reconstructable_job(ASSET_JOB)
