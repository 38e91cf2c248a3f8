"""Instance storage chosen by configuration: sqlite by default, PostgreSQL through dagster-postgres
(`rag-pipeline init --postgres URL` or $RAG_PIPELINE_POSTGRES_URL), never a password on disk; and
the pipeline on a real PostgreSQL instance writes the same materializations, data versions and
events as on sqlite."""

from __future__ import annotations

import io
import os
import shutil
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from types import SimpleNamespace

import dagster as dg
import pytest
import yaml

from rag_pipeline import cli
from rag_pipeline.defs.instance import POSTGRES_URL_ENV, InstanceConfigError, validate_instance_yaml
from rag_pipeline.defs.runner import INSTANCE_CONFIG, configure_storage, get_instance, instance_home
from rag_pipeline_tests.suite_data import SUITE_DATA


@pytest.fixture()
def home(tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv(POSTGRES_URL_ENV, raising=False)
    return home


def _yaml(home):
    return yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8"))


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_the_default_instance_is_sqlite_and_unchanged(home):
    instance_home()
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == INSTANCE_CONFIG
    with get_instance() as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"


def test_the_environment_variable_selects_postgres_by_reference_only(home, monkeypatch):
    secret_url = "postgresql://rag:s3cret-pw@db.internal:5432/dagster"
    monkeypatch.setenv(POSTGRES_URL_ENV, secret_url)
    instance_home()
    text = (home / "dagster.yaml").read_text(encoding="utf-8")
    assert _yaml(home)["storage"] == {"postgres": {"postgres_url": {"env": POSTGRES_URL_ENV}}}
    assert "s3cret" not in text and "db.internal" not in text
    assert text.startswith(INSTANCE_CONFIG)  # pools, run monitoring and telemetry as on sqlite
    validate_instance_yaml(home)  # Dagster's own instance schema


def test_init_writes_a_password_free_url_and_switches_back(home):
    url = "postgresql://rag@db.internal:5432/dagster?sslmode=require"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(INSTANCE_CONFIG + "# mine\nretention: {}\n", encoding="utf-8")
    _, storage, _ = configure_storage(postgres=url)
    written = url.replace("postgresql://", "postgresql+psycopg2://")  # dagster-postgres's driver, named
    assert storage == {"postgres": {"postgres_url": written}}
    config = _yaml(home)
    assert config["storage"]["postgres"]["postgres_url"] == written
    assert config["concurrency"] == {"pools": {"default_limit": 1}} and config["run_monitoring"]["enabled"]
    assert "# mine" in (home / "dagster.yaml").read_text(encoding="utf-8")  # the user's own lines stay
    configure_storage(postgres=url)  # idempotent: one storage block
    assert (home / "dagster.yaml").read_text(encoding="utf-8").count("storage:") == 1
    _, storage, _ = configure_storage(sqlite=True)
    assert storage is None
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == INSTANCE_CONFIG + "# mine\nretention: {}\n"


def test_the_variable_gets_the_psycopg2_driver_and_init_warns_about_other_processes(home, monkeypatch):
    monkeypatch.setenv(POSTGRES_URL_ENV, "postgresql://rag:pw@db.internal/dagster")
    _, storage, warning = configure_storage()
    assert storage == {"postgres": {"postgres_url": {"env": POSTGRES_URL_ENV}}}
    assert os.environ[POSTGRES_URL_ENV] == "postgresql+psycopg2://rag:pw@db.internal/dagster"
    assert "dagster dev" in warning and "postgresql+psycopg2://" in warning and "pw" not in warning
    assert configure_storage()[2] is None  # already in that form


def test_init_refuses_a_url_with_a_password_without_printing_it(home):
    code, out, err = _cli("init", "--postgres", "postgresql://rag:hunter2@db.internal/dagster")
    assert code == 2
    assert "hunter2" not in out + err
    assert "PGPASSWORD" in err and POSTGRES_URL_ENV in err
    assert not (home / "dagster.yaml").exists() or "hunter2" not in (home / "dagster.yaml").read_text()
    code, _, err = _cli("init", "--postgres", "mysql://rag@db/dagster")
    assert code == 2 and "not a PostgreSQL URL" in err


def test_a_set_variable_with_a_sqlite_instance_is_an_error_not_a_silent_sqlite(home, monkeypatch):
    instance_home()  # sqlite
    monkeypatch.setenv(POSTGRES_URL_ENV, "postgresql://rag@db.internal/dagster")
    with pytest.raises(InstanceConfigError, match="rag-pipeline init"):
        get_instance()


# -- the pipeline on a real PostgreSQL ------------------------------------------------------------

PAPER = "demo-sparse-routing"
STUDY_PAPER = "attention"
MODELS = ["lead-3"]
STUDY_MODELS = ["recorded-tbank", "recorded-qwen3"]


def _small_data(root, judge_url: str):
    """data/ with one demo paper, the recorded study, an extractive and two recorded models, and an
    OpenAI-compatible fake judge."""
    from rag_pipeline_tests.defs.test_living_pipeline import _edit_yaml, _keep

    data = root / "data"
    shutil.copytree(SUITE_DATA, data)
    # The recorded study needs all its papers registered (none of them is ingested); one demo paper.
    _edit_yaml(data / "papers.yaml", lambda registry: registry.update(papers=[
        paper for paper in registry["papers"] if paper["collection"] != "demo" or paper["id"] == PAPER]))
    _keep(data / "models.yaml", "models", "name", MODELS + STUDY_MODELS)
    _edit_yaml(data / "models.yaml", lambda registry: registry["models"].append({
        "name": "fake-judge", "backend": "openai", "model": "gpt-4o", "base_url": judge_url,
        "api_key_env": "FAKE_JUDGE_KEY", "max_retries": 0, "tasks": ["answer"],
    }))
    _edit_yaml(data / "pipeline.yaml", lambda config: config["judge"].update(
        model="fake-judge", max_items_per_paper=2, permutations=2))
    return data


def _outcome(instance) -> dict:
    """What a run left in the instance, free of run ids and timestamps: each asset's materialized
    and observed partitions with their data versions, and the events of all runs as a multiset."""
    from rag_pipeline.definitions import defs

    keys = {key for asset in defs.assets for key in getattr(asset, "keys", [])}
    versions = {}
    for key in sorted(keys, key=lambda k: k.to_user_string()):
        for fetch in (instance.fetch_materializations, instance.fetch_observations):
            for record in fetch(dg.AssetRecordsFilter(asset_key=key), limit=1000).records:
                event = record.event_log_entry.dagster_event.event_specific_data
                tags = (event.materialization if hasattr(event, "materialization") else event.asset_observation).tags
                versions.setdefault((key.to_user_string(), record.partition_key), tags.get("dagster/data_version"))
    events = Counter()
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            if entry.dagster_event is None:
                continue
            event = entry.dagster_event
            asset = event.asset_key.to_user_string() if event.asset_key else None
            events[(event.event_type_value, entry.step_key, asset, event.partition)] += 1
    partitions = {name: sorted(instance.get_dynamic_partitions(name)) for name in ("papers", "models")}
    return {"versions": versions, "events": events, "partitions": partitions,
            "runs": sorted(run.status.value for run in instance.get_runs())}


def _run_pipeline(root, monkeypatch, postgres_url: str | None) -> dict:
    from rag_pipeline.definitions import defs
    from rag_pipeline.defs.runner import run_pipeline

    state = root / "state"
    monkeypatch.setenv("RAG_PIPELINE_HOME", str(state))
    monkeypatch.setenv("DAGSTER_HOME", str(state / "dagster"))
    if postgres_url:
        monkeypatch.setenv(POSTGRES_URL_ENV, postgres_url)
    else:
        monkeypatch.delenv(POSTGRES_URL_ENV, raising=False)
    configure_storage()  # what `rag-pipeline init` does
    with get_instance() as instance:
        storage = type(instance.run_storage).__name__
        assert storage == ("PostgresRunStorage" if postgres_url else "SqliteRunStorage")
        summary = run_pipeline(defs, instance, [PAPER], MODELS, study_papers=[STUDY_PAPER],
                               study_models=STUDY_MODELS, judge=True, progress=False)
        assert not summary.failed, summary.failed
        return _outcome(instance)


@pytest.mark.slow
def test_the_pipeline_on_postgres_matches_sqlite(postgres_database, tmp_path, monkeypatch):
    from rag_pipeline.generate.backends import extractive_backend
    from rag_pipeline_tests.generate.test_openai_backend import FakeOpenAIServer, completion

    monkeypatch.setenv("FAKE_JUDGE_KEY", "sk-fake")
    # The latency an extractive model measures is wall-clock time (a metric of its own, different in
    # any two runs): a fixed clock makes the two runs comparable bit for bit.
    monkeypatch.setattr(extractive_backend, "time", SimpleNamespace(perf_counter=lambda: 0.0))
    with FakeOpenAIServer([(200, completion('{"ranking": ["A", "B"]}'))]) as judge:
        data = _small_data(tmp_path, judge.base_url)
        monkeypatch.setenv("RAG_PIPELINE_DATA", str(data))
        on_sqlite = _run_pipeline(tmp_path / "sqlite", monkeypatch, None)
        on_postgres = _run_pipeline(tmp_path / "postgres", monkeypatch, postgres_database)
        assert judge.received  # the judge ran in both
    assert on_sqlite["versions"] and None not in on_sqlite["versions"].values()
    materialized = {asset for asset, _ in on_sqlite["versions"]}
    assert {"paper_index", "answers", "generation_metrics", "judgments", "leaderboard"} <= materialized
    assert on_postgres["partitions"] == on_sqlite["partitions"]
    assert on_postgres["runs"] == on_sqlite["runs"]
    assert on_postgres["versions"] == on_sqlite["versions"]
    assert on_postgres["events"] == on_sqlite["events"]
