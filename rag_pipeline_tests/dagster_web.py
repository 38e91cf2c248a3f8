"""A Dagster web process for the tests and benchmarks: `dagster-webserver` or `dagster dev` on a free
local port, waited for until it serves, its GraphQL endpoint, and stopped with its process group
(the code server, the daemon of `dagster dev` and the runs they started)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from rag_pipeline.settings import REPO_ROOT
from rag_pipeline_tests.celery_workers import stop_group


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterWeb:
    """`arguments`: the Dagster command and its arguments without host and port, e.g.
    ``["dagster-webserver", "-m", "rag_pipeline.definitions"]`` or ``["dagster", "dev", "-w", "workspace.yaml"]``."""

    def __init__(self, arguments: list[str], env: dict, log: Path):
        port = free_port()
        self.url, self.log = f"http://127.0.0.1:{port}", log
        command = [str(Path(sys.executable).parent / arguments[0]), *arguments[1:], "-h", "127.0.0.1", "-p", str(port)]
        with log.open("w") as out:
            self.process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def wait_serving(self, timeout_s: float = 240.0) -> None:
        import requests

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.log.stem} exited ({self.process.returncode}):\n{self.tail()}")
            try:
                if requests.get(f"{self.url}/server_info", timeout=5).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{self.log.stem} did not serve {self.url} within {timeout_s:.0f} s:\n{self.tail()}")

    def graphql(self, query: str, **variables) -> dict:
        """The query's `data`; GraphQL errors raise."""
        import requests

        body = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=300).json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors'][:2]}")
        return body["data"]

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self) -> None:
        stop_group(self.process)
