"""The celery app of the workers: ``celery -A rag_pipeline.defs.celery_worker worker -Q QUEUE``.

It is dagster-celery's own app and task (``dagster_celery.app``, which `dagster-celery worker start`
uses) with the broker, backend and settings of ``rag_pipeline.defs.executors``, read from the
environment as the executor reads them, instead of from a YAML file written to disk with the
broker's URL in it.

Each task executes one step of a run: it loads ``rag_pipeline.definitions`` and the run from the
instance (``DAGSTER_HOME``, the same dagster.yaml and PostgreSQL as the other processes), runs the
step in this worker process, and sends its events back. A worker process lives across tasks
(celery's prefork pool keeps its children), so process globals survive from step to step: the
model pool on the `gpu` queue, the Chroma client on the `chroma` queue.
"""

from __future__ import annotations

import os

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from rag_pipeline.defs import executors, runs

runs.mark_step_worker()  # steps here belong to runs orchestrated elsewhere: not this process's runs

_config = executors.celery_config()
_backend = _config["backend"]
app = make_app(
    CeleryExecutor.for_cli(
        broker=os.environ[executors.BROKER_ENV],
        backend=os.environ[_backend["env"]] if isinstance(_backend, dict) else _backend,
        config_source=_config["config_source"],
    ).app_args()
)
execute_plan = create_task(app)
