"""deploy/: the files a team runs this on several machines or Dagster's Helm chart with. They are
loaded through Dagster's own instance schema (and opened on a real PostgreSQL) and checked against
the code, so they cannot rot silently."""

from __future__ import annotations

import re
import shutil
import tomllib
from importlib.metadata import version
from importlib.util import find_spec

import dagster as dg
import pytest
import yaml

from rag_pipeline.config import ChromaConfig
from rag_pipeline.defs.executors import BROKER_ENV, CELERY, EXECUTOR_ENV, GPU_QUEUE, QUEUES
from rag_pipeline.defs.instance import POSTGRES_URL_ENV, validate_instance_yaml
from rag_pipeline.settings import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
# The workers' celery app. Named, not imported: importing it needs the broker URL and marks this
# process as a step worker (rag_pipeline.defs.runs), which would change the other tests' runs.
WORKER_APP = "rag_pipeline.defs.celery_worker"
GPU = "nvidia.com/gpu"


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
    assert env[EXECUTOR_ENV] == CELERY  # the code server's definitions, and the run pods, use the workers
    mounts = {mount["mountPath"] for mount in deployment["volumeMounts"]}
    assert env["RAG_PIPELINE_HOME"] in mounts and env["RAG_PIPELINE_CONFIG"].rsplit("/", 1)[0] in mounts

    # No secret inline: the PostgreSQL password comes from a Secret the team creates.
    postgres = values["postgresql"]
    assert postgres["enabled"] is False and postgres["postgresqlPassword"] == ""
    assert values["generatePostgresqlPasswordSecret"] is False and values["global"]["postgresqlSecretName"]

    # The run pods only orchestrate: no GPU placement (the gpu queue's workers have it), the same
    # state and configuration as the code server, the Secret with the broker URL.
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    k8s = launcher["config"]["k8sRunLauncher"]
    pod = k8s.get("runK8sConfig", {})
    assert not pod.get("podSpecConfig", {}).get("nodeSelector") and not pod.get("podSpecConfig", {}).get("tolerations")
    assert GPU not in yaml.safe_dump(k8s)
    run_mounts = {m["mountPath"] for m in k8s["volumeMounts"]}
    assert mounts <= run_mounts  # a run pod sees the same state and configuration as the code server
    assert {s["name"] for s in deployment["envSecrets"]} <= {s["name"] for s in k8s["envSecrets"]}

    daemon = values["dagsterDaemon"]
    assert daemon["runRetries"]["enabled"] and daemon["runMonitoring"]["enabled"]


def _option(command: list[str], flag: str) -> str:
    """The value after `flag` in a command line."""
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


def check_celery_workers(documents: list[dict], values: dict, chroma: ChromaConfig) -> None:
    """deploy/celery-workers.yaml (`documents`) against the code, values.yaml (`values`) and the
    pipeline.yaml of this deployment (`chroma`: its chroma section)."""
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
    user_env = {item["name"]: item["value"] for item in deployment["env"]}
    user_mounts = {m["mountPath"] for m in deployment["volumeMounts"]}
    release = re.search(r"helm upgrade --install (\S+) dagster/dagster", (DEPLOY / "values.yaml").read_text()).group(1)
    workers = [doc for doc in documents if doc["kind"] == "Deployment"]
    assert workers and find_spec(WORKER_APP) is not None

    served, chroma_processes = set(), 0
    for worker in workers:
        name, pod = worker["metadata"]["name"], worker["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        command = container["command"]
        assert command[:1] == ["celery"] and "worker" in command and _option(command, "-A") == WORKER_APP, name
        queues = set(_option(command, "-Q").split(","))
        processes, replicas = int(_option(command, "-c")), worker["spec"]["replicas"]
        served |= queues
        assert container["image"] == image, name

        if GPU_QUEUE in queues:  # one process per GPU: it keeps its model loaded, never two
            assert processes == 1 and int(container["resources"]["limits"][GPU]) == 1, name
            assert any(t["key"] == GPU and t["effect"] == "NoSchedule" for t in pod["tolerations"]), name
            assert pod["nodeSelector"], name
        if "chroma" in queues:
            chroma_processes += processes * replicas

        # The environment of every Dagster process of the deployment, with the broker from the Secret.
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert user_env.items() <= env.items() and env[EXECUTOR_ENV] == CELERY, name
        assert BROKER_ENV not in env, name
        secrets = {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e}
        assert secrets == {s["name"] for s in deployment["envSecrets"]}, name
        password = next(item for item in container["env"] if item["name"] == "DAGSTER_PG_PASSWORD")
        assert password["valueFrom"]["secretKeyRef"] == {"name": values["global"]["postgresqlSecretName"],
                                                         "key": "postgresql-password"}, name

        # The same state and configuration, and the chart's instance at $DAGSTER_HOME/dagster.yaml.
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert user_mounts <= set(mounts), name
        assert all(volumes[v["name"]] == v for v in deployment["volumes"]), name
        instance = mounts[f"{env['DAGSTER_HOME']}/dagster.yaml"]
        assert instance["subPath"] == "dagster.yaml", name
        assert volumes[instance["name"]]["configMap"]["name"] == f"{release}-dagster-instance", name

    assert served == set(QUEUES), f"the workers serve {sorted(served)}, the code has {sorted(QUEUES)}"
    # Several processes on `chroma` only with a Chroma server: an embedded store has one user.
    if chroma_processes > 1:
        assert chroma.mode == "http", f"{chroma_processes} processes serve chroma with chroma.mode {chroma.mode}"


def test_the_celery_workers_match_the_code():
    documents = list(yaml.safe_load_all((DEPLOY / "celery-workers.yaml").read_text(encoding="utf-8")))
    check_celery_workers(documents, _load("values.yaml"), _documented_chroma_config())


def _documented_chroma_config() -> ChromaConfig:
    """The `chroma:` section deploy/chroma.yaml's comment tells users to put in pipeline.yaml (the
    RAG_PIPELINE_CONFIG of values.yaml and celery-workers.yaml)."""
    text = (DEPLOY / "chroma.yaml").read_text(encoding="utf-8")
    block = text.split("#   chroma:\n", 1)[1].split("\n#\n", 1)[0]
    section = yaml.safe_load("\n".join(line.removeprefix("#     ") for line in block.splitlines()))
    return ChromaConfig.from_dict(section)


def test_the_chroma_server_matches_the_client_and_the_configuration_it_documents():
    documents = list(yaml.safe_load_all((DEPLOY / "chroma.yaml").read_text(encoding="utf-8")))
    kinds = {doc["kind"]: doc for doc in documents}
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"chromadb/chroma:{version('chromadb')}"
    service = kinds["Service"]
    # The `chroma:` section the file's comment tells users to put in pipeline.yaml is valid and
    # points at this Service.
    config = _documented_chroma_config()
    assert config.mode == "http" and config.host == service["metadata"]["name"]
    assert config.port == service["spec"]["ports"][0]["port"] == container["ports"][0]["containerPort"]


@pytest.mark.parametrize("name", ["dagster.yaml", "values.yaml", "chroma.yaml", "celery-workers.yaml"])
def test_no_deploy_file_holds_a_password(name):
    text = (DEPLOY / name).read_text(encoding="utf-8").lower()
    for word in ("password=", "password: ", "token: "):
        for line in text.splitlines():
            if word in line and not line.strip().startswith("#"):
                assert line.split(word, 1)[1].strip() in ('""', "''", ""), f"{name}: {line.strip()}"
