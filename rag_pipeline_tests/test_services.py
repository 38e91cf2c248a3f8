"""The shared helper for tests that need a real service: skip on a laptop without it, fail under CI."""

import socket

import pytest

from rag_pipeline_tests import services


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the probe is: nothing listens there


@pytest.mark.parametrize("ci, outcome", [("", pytest.skip.Exception), ("true", pytest.fail.Exception)])
def test_a_missing_service_skips_on_a_laptop_and_fails_under_ci(monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("RAG_PIPELINE_TEST_REDIS", f"redis://127.0.0.1:{_closed_port()}/0")
    with pytest.raises(outcome, match=r"needs redis at 127\.0\.0\.1:\d+ \(set RAG_PIPELINE_TEST_REDIS"):
        services.require_service("redis")


@pytest.mark.parametrize("name", sorted(services.SERVICES))
def test_the_project_services_answer(name):
    """PostgreSQL, Redis and RabbitMQ on this machine (a skip on a laptop, a failure on CI without them)."""
    assert services.require_service(name)
