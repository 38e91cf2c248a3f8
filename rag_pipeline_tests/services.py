"""Real local services for the tests that need them: PostgreSQL, Redis, RabbitMQ.

The project's development and CI machines start them (PostgreSQL 127.0.0.1:5432 with trust auth,
Redis 127.0.0.1:6379, RabbitMQ 127.0.0.1:5672 guest/guest). Elsewhere (a laptop) a test that needs
one skips with a message naming what it needs; under CI (``CI=true``) a missing service fails the
test instead, so a broken CI machine can never pass by skipping.

Addresses can be overridden: ``RAG_PIPELINE_TEST_POSTGRES`` (an admin URL whose user may create
databases), ``RAG_PIPELINE_TEST_REDIS``, ``RAG_PIPELINE_TEST_RABBITMQ``.

Each PostgreSQL test gets its own freshly created database (``postgres_database``), dropped after.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

SERVICES = {
    "postgres": ("RAG_PIPELINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
    "redis": ("RAG_PIPELINE_TEST_REDIS", "redis://127.0.0.1:6379/0"),
    "rabbitmq": ("RAG_PIPELINE_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//"),
}


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def service_unavailable(message: str):
    """Skip the test with `message`, or fail it under CI (a CI machine must have its services)."""
    if under_ci():
        pytest.fail(f"{message} (CI=true: a missing service is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def service_url(name: str) -> str:
    env, default = SERVICES[name]
    return os.environ.get(env) or default


def require_service(name: str) -> str:
    """The service's URL once its port accepts a TCP connection; otherwise skip (or fail under CI)."""
    url = service_url(name)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
    except OSError as exc:
        env = SERVICES[name][0]
        service_unavailable(f"needs {name} at {host}:{port} (set {env} to another URL): {exc}")
    return url


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@pytest.fixture()
def postgres_database():
    """A URL to a new, empty PostgreSQL database of this test's own; dropped afterwards."""
    admin_url = require_service("postgres")
    import psycopg2  # dagster-postgres's driver

    name = f"rag_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg2.connect(admin_url)
    except psycopg2.OperationalError as exc:
        service_unavailable(f"needs PostgreSQL at {admin_url} (RAG_PIPELINE_TEST_POSTGRES): {exc}")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield _with_database(admin_url, name)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
