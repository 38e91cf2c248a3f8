"""Real celery workers of `rag_pipeline.defs.celery_worker` for the tests and benchmarks/distributed.py.

Each worker is `python -m celery -A rag_pipeline.defs.celery_worker worker -Q QUEUES -c N`, the
command the README gives, in a process group of its own (its pool's children included), logging to
a file. A private Redis database per use keeps concurrent sessions on one Redis from taking each
other's steps.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from rag_pipeline.defs.executors import BACKEND_ENV, BROKER_ENV, CELERY, EXECUTOR_ENV

READY_S = 120.0


def private_redis_url(url: str) -> str:
    """`url` with a random database number (1-15) of its own."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{random.randint(1, 15)}", parts.query, parts.fragment))


def celery_env(env: dict, broker: str) -> dict:
    """`env` with the celery executor selected and `broker` as broker and result backend."""
    return {**env, EXECUTOR_ENV: CELERY, BROKER_ENV: broker, BACKEND_ENV: broker}


@dataclass
class Worker:
    name: str
    queues: str
    process: subprocess.Popen
    log: Path

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def children(self) -> list[int]:
        """The pids of the worker's pool processes (the ones that execute steps)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(stat.parent.name))
        return found

    def stop(self) -> None:
        """Warm shutdown (SIGTERM to the group), then SIGKILL whatever is left of it."""
        stop_group(self.process)


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to a process started with `start_new_session=True` and its group, then SIGKILL
    whatever is left of the group (children it started included)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(timeout=30)


def start_worker(name: str, queues: str, concurrency: int, env: dict, cwd: Path, log_dir: Path) -> Worker:
    log = log_dir / f"worker-{name}.log"
    command = [sys.executable, "-m", "celery", "-A", "rag_pipeline.defs.celery_worker", "worker", "-Q", queues,
               "-c", str(concurrency), "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
               "--without-heartbeat", "--loglevel", "INFO"]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return Worker(name, queues, process, log)


def wait_ready(workers: list[Worker], timeout_s: float = READY_S) -> None:
    deadline = time.monotonic() + timeout_s
    for worker in workers:
        while "ready." not in worker.output:
            if worker.process.poll() is not None:
                raise RuntimeError(f"celery worker {worker.name} exited ({worker.process.returncode}):\n{worker.output[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery worker {worker.name} not ready after {timeout_s:.0f}s:\n{worker.output[-3000:]}")
            time.sleep(0.2)
