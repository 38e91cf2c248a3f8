"""deploy/: the files a team runs this on several machines or Dagster's Helm chart with. They are
loaded through Dagster's own instance schema (and opened on a real PostgreSQL) and checked against
the code, so they cannot rot silently."""

from __future__ import annotations

import shutil
import tomllib
from importlib.metadata import version

import dagster as dg
import pytest
import yaml

from rag_pipeline.config import ChromaConfig
from rag_pipeline.defs.instance import POSTGRES_URL_ENV, validate_instance_yaml
from rag_pipeline.settings import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def _load(name: str):
    return yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8"))


def test_the_instance_yaml_passes_dagsters_schema_and_keeps_secrets_in_the_environment(tmp_path):
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    validate_instance_yaml(tmp_path)
    config = _load("dagster.yaml")
    assert config["storage"] == {"postgres": {"postgres_url": {"env": POSTGRES_URL_ENV}}}
    assert config["concurrency"]["pools"]["default_limit"] == 1  # the gpu and chroma pools, as locally
    assert config["run_retries"]["enabled"] and config["run_monitoring"]["enabled"]


def test_the_instance_yaml_opens_on_a_real_postgres(postgres_database, tmp_path, monkeypatch):
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv(POSTGRES_URL_ENV, postgres_database.replace("postgresql://", "postgresql+psycopg2://", 1))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        assert instance.run_retries_enabled and instance.run_monitoring_enabled
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
        assert instance.get_runs() == []


def test_the_helm_values_match_the_code():
    values = _load("values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert deployment["dagsterApiGrpcArgs"] == ["-m", pyproject["tool"]["dagster"]["module_name"]]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert {"RAG_PIPELINE_HOME", "RAG_PIPELINE_CONFIG"} <= set(env)
    mounts = {mount["mountPath"] for mount in deployment["volumeMounts"]}
    assert env["RAG_PIPELINE_HOME"] in mounts and env["RAG_PIPELINE_CONFIG"].rsplit("/", 1)[0] in mounts

    # No secret inline: the PostgreSQL password comes from a Secret the team creates.
    postgres = values["postgresql"]
    assert postgres["enabled"] is False and postgres["postgresqlPassword"] == ""
    assert values["generatePostgresqlPasswordSecret"] is False and values["global"]["postgresqlSecretName"]

    # The gpu queue: run pods on GPU nodes, tolerating their taint, one GPU each.
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    pod = launcher["config"]["k8sRunLauncher"]["runK8sConfig"]
    assert pod["podSpecConfig"]["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["podSpecConfig"]["tolerations"])
    assert pod["containerConfig"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    run_mounts = {m["mountPath"] for m in launcher["config"]["k8sRunLauncher"]["volumeMounts"]}
    assert mounts <= run_mounts  # a run pod sees the same state and configuration as the code server

    daemon = values["dagsterDaemon"]
    assert daemon["runRetries"]["enabled"] and daemon["runMonitoring"]["enabled"]


def test_the_chroma_server_matches_the_client_and_the_configuration_it_documents():
    documents = list(yaml.safe_load_all((DEPLOY / "chroma.yaml").read_text(encoding="utf-8")))
    kinds = {doc["kind"]: doc for doc in documents}
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"chromadb/chroma:{version('chromadb')}"
    service = kinds["Service"]
    # The `chroma:` section the file's comment tells users to put in pipeline.yaml is valid and
    # points at this Service.
    text = (DEPLOY / "chroma.yaml").read_text(encoding="utf-8")
    block = text.split("#   chroma:\n", 1)[1].split("\n#\n", 1)[0]
    section = yaml.safe_load("\n".join(line.removeprefix("#     ") for line in block.splitlines()))
    config = ChromaConfig.from_dict(section)
    assert config.mode == "http" and config.host == service["metadata"]["name"]
    assert config.port == service["spec"]["ports"][0]["port"] == container["ports"][0]["containerPort"]


@pytest.mark.parametrize("name", ["dagster.yaml", "values.yaml", "chroma.yaml"])
def test_no_deploy_file_holds_a_password(name):
    text = (DEPLOY / name).read_text(encoding="utf-8").lower()
    for word in ("password=", "password: ", "token: "):
        for line in text.splitlines():
            if word in line and not line.strip().startswith("#"):
                assert line.split(word, 1)[1].strip() in ('""', "''", ""), f"{name}: {line.strip()}"
