"""Where the Dagster instance keeps runs, events and schedules: sqlite under the state directory
(the default) or PostgreSQL through ``dagster-postgres``, chosen by configuration.

The choice is written into ``$DAGSTER_HOME/dagster.yaml`` as Dagster's own ``storage: postgres``
block, so the webserver, the daemon and `rag-pipeline` all read the same instance. No password is
ever written there or printed:

- ``RAG_PIPELINE_POSTGRES_URL`` set (the whole URL, password included, lives only in the
  environment): dagster.yaml refers to it as ``postgres_url: {env: RAG_PIPELINE_POSTGRES_URL}``
  and every process that opens the instance needs the variable.
- ``rag-pipeline init --postgres postgresql://user@host:5432/db``: the URL is written as given,
  which is refused when it holds a password; libpq takes the password from ``PGPASSWORD`` or
  ``~/.pgpass`` as usual.

The driver is psycopg2 (dagster-postgres's own; its SQL does not run on psycopg 3), but SQLAlchemy
2.1 maps a plain ``postgresql://`` URL to psycopg 3: URLs are therefore written, and the variable
is read by `rag-pipeline`, as ``postgresql+psycopg2://``. Processes that read the variable
themselves (``dagster dev``, ``dagster-daemon``) need it in that form: `rag-pipeline init` says so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

POSTGRES_URL_ENV = "RAG_PIPELINE_POSTGRES_URL"
STORAGE_MARKER = "# Instance storage (rag-pipeline init):"
# Top-level keys of dagster.yaml that name where runs and events are stored: replaced together.
STORAGE_KEYS = ("storage", "run_storage", "event_log_storage", "schedule_storage")
DRIVER_SCHEME = "postgresql+psycopg2"
POSTGRES_SCHEMES = ("postgresql", "postgres", DRIVER_SCHEME)


class InstanceConfigError(ValueError):
    """The requested instance storage cannot be configured as asked; the message says what to do."""


def validate_postgres_url(url: str) -> str:
    """A PostgreSQL URL fit to be written into dagster.yaml: a postgresql:// URL without a password."""
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES or not parts.hostname or not parts.path.strip("/"):
        raise InstanceConfigError(
            f"not a PostgreSQL URL: {redact_url(url)!r}; expected postgresql://USER@HOST[:PORT]/DATABASE"
        )
    if parts.password:
        raise InstanceConfigError(
            "the PostgreSQL URL holds a password, which would be written into dagster.yaml: give the URL "
            f"without it and set PGPASSWORD (or ~/.pgpass), or put the whole URL in ${POSTGRES_URL_ENV} "
            "and run `rag-pipeline init` without --postgres"
        )
    return with_driver(url)


def with_driver(url: str) -> str:
    """The URL with the psycopg2 driver named (postgresql:// and postgres:// → postgresql+psycopg2://)."""
    scheme, sep, rest = url.partition("://")
    return f"{DRIVER_SCHEME}{sep}{rest}" if scheme in ("postgresql", "postgres") else url


def driver_from_environment() -> str | None:
    """Name the psycopg2 driver in $RAG_PIPELINE_POSTGRES_URL of this process (for Dagster to read);
    returns a warning for the other processes that read the variable as it is, or None."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url or url.startswith(f"{DRIVER_SCHEME}://"):
        return None
    os.environ[POSTGRES_URL_ENV] = with_driver(url)
    return (f"${POSTGRES_URL_ENV} should start with {DRIVER_SCHEME}:// (dagster-postgres needs psycopg2; "
            "SQLAlchemy takes postgresql:// as psycopg 3): `rag-pipeline` adds it, `dagster dev` and "
            "`dagster-daemon` read the variable as it is")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, fit for a message."""
    return re.sub(r"(://[^/:@]*):[^/@]*@", r"\1:***@", url)


def postgres_storage(url: str | None = None) -> dict:
    """Dagster's ``storage: postgres`` block: the given URL (checked: no password) or, for None, a
    reference to ``$RAG_PIPELINE_POSTGRES_URL`` that Dagster resolves in each process."""
    source = validate_postgres_url(url) if url else {"env": POSTGRES_URL_ENV}
    return {"postgres": {"postgres_url": source}}


def storage_choice(postgres: str | None = None) -> dict | None:
    """The storage block to use: an explicit URL, else ``$RAG_PIPELINE_POSTGRES_URL`` when set, else
    None (sqlite under DAGSTER_HOME, Dagster's default)."""
    if postgres:
        return postgres_storage(postgres)
    if os.environ.get(POSTGRES_URL_ENV):
        return postgres_storage(None)
    return None


def storage_block(storage: dict | None) -> str:
    """The dagster.yaml text of a storage choice ("" for sqlite)."""
    if storage is None:
        return ""
    return f"{STORAGE_MARKER}\n" + yaml.safe_dump({"storage": storage}, sort_keys=False)


def without_storage(text: str) -> str:
    """dagster.yaml text without its top-level storage keys (and this module's marker comment)."""
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.strip() == STORAGE_MARKER:
            continue
        if re.match(rf"({'|'.join(STORAGE_KEYS)})\s*:", line):
            skipping = True
            continue
        if skipping and (line[:1] in (" ", "\t") or not line.strip()):
            continue
        skipping = False
        kept.append(line)
    return "".join(kept).rstrip("\n") + "\n"


def with_storage(text: str, storage: dict | None) -> str:
    """dagster.yaml text with its storage replaced by ``storage`` (None: sqlite); other keys and
    comments are kept."""
    base = without_storage(text)
    block = storage_block(storage)
    return base + (f"{block}" if block else "")


def configured_storage(home: str | os.PathLike) -> dict | None:
    """The storage block of ``home``/dagster.yaml as written (env references unresolved); None = sqlite."""
    path = Path(home) / "dagster.yaml"
    if not path.exists():
        return None
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if loaded.get("storage"):
        return loaded["storage"]
    return {key: loaded[key] for key in STORAGE_KEYS if loaded.get(key)} or None


def describe_storage(storage: dict | None) -> str:
    """What the instance stores its runs in, without any secret: for `rag-pipeline init`."""
    if not storage:
        return "sqlite (under DAGSTER_HOME)"
    if "postgres" not in storage:
        return f"custom storage {sorted(storage)}"
    source = storage["postgres"].get("postgres_url")
    if isinstance(source, dict) and "env" in source:
        return f"PostgreSQL at ${source['env']}"
    if isinstance(source, str):
        return f"PostgreSQL at {redact_url(source)}"
    return "PostgreSQL (postgres_db)"


def validate_instance_yaml(home: str | os.PathLike) -> None:
    """Check ``home``/dagster.yaml against Dagster's own instance config schema (no connection made)."""
    from dagster._core.instance.config import dagster_instance_config

    dagster_instance_config(str(home))
