"""The one configuration declaration: pipeline.yaml parsing, errors, hashes, and what Dagster derives from it."""

from typing import get_args

import dagster as dg
import pytest
import yaml

from rag_pipeline.config import (
    ConfigError,
    JudgeConfig,
    JudgeModeName,
    PipelineConfig,
    RetrievalConfig,
    load_pipeline_config,
    section_class,
)
from rag_pipeline.defs.resources import RESOURCE_OF_SECTION_TYPE, resources_from_config
from rag_pipeline.evaluate.judge import MODES
from rag_pipeline.settings import REPO_ROOT


def write(tmp_path, text: str):
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_pipeline_yaml_parses_into_every_section():
    config = load_pipeline_config(REPO_ROOT / "data/pipeline.yaml")
    assert (config.chunking.chunk_size, config.chunking.chunk_overlap) == (800, 100)
    assert (config.retrieval.top_k, config.retrieval.top_n) == (10, 2)
    assert config.cosine_embedder is not None
    assert (config.language.expected, config.language.min_share) == ("ru", 0.9)


def test_a_missing_section_takes_its_defaults_and_cosine_follows_the_embedder(tmp_path):
    config = load_pipeline_config(write(tmp_path, "embedder: {kind: sentence-transformers}\n"))
    assert config.chunking.chunk_size == 800
    assert config.cosine_embedder == config.embedder


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("chunking: {chunk_size: 100, chunk_overlap: 100}\n", r"pipeline.yaml: chunking: .*chunk_size > chunk_overlap"),
        ("chunking: {chunk_size: '800'}\n", r"pipeline.yaml: chunking: chunk_size: Input should be a valid integer"),
        ("retrieval: {top_k: 2, top_n: 5}\n", r"pipeline.yaml: retrieval: .*top_n \(5\) cannot exceed top_k \(2\)"),
        ("embedder: {kind: word2vec}\n", r"pipeline.yaml: embedder: kind: unknown embedder kind 'word2vec'"),
        ("judge: {modes: [listwise, vibes]}\n", r"pipeline.yaml: judge: modes: unknown judge mode 'vibes'"),
        ("reranker: {top_n: 2}\n", r"pipeline.yaml: reranker: unknown reranker configuration key\(s\) \['top_n'\]"),
        ("retriever: {top_k: 2}\n", r"pipeline.yaml: unknown section\(s\) \['retriever'\]"),
        ("- a list\n", r"pipeline.yaml: expected a mapping of sections"),
        ("language: {expected: Russian}\n", r"pipeline.yaml: language: expected: String should match pattern"),
        ("language: {min_share: 1.5}\n", r"pipeline.yaml: language: min_share: Input should be less than or equal to 1"),
        ("language: {min_share: '0.9'}\n", r"pipeline.yaml: language: min_share: Input should be a valid number"),
    ],
)
def test_a_bad_value_names_the_file_the_section_and_the_field(tmp_path, text, expected):
    with pytest.raises(ConfigError, match=expected):
        load_pipeline_config(write(tmp_path, text))


def test_a_section_hash_ignores_key_order_and_comments_and_follows_values(tmp_path):
    first = load_pipeline_config(write(tmp_path, "chunking: {chunk_size: 800, chunk_overlap: 100}\n"))
    reordered = load_pipeline_config(write(tmp_path, "# a comment\nchunking:\n  chunk_overlap: 100  # why\n  chunk_size: 800\n"))
    changed = load_pipeline_config(write(tmp_path, "chunking: {chunk_size: 700, chunk_overlap: 100}\n"))
    assert first.chunking.content_hash() == reordered.chunking.content_hash()
    assert first.chunking.content_hash() != changed.chunking.content_hash()
    assert first.embedder.content_hash() == changed.embedder.content_hash()  # other sections untouched


def test_sections_are_immutable_and_hashable():
    config = RetrievalConfig()
    with pytest.raises(Exception, match="frozen"):
        config.top_k = 3
    assert hash(JudgeConfig()) == hash(JudgeConfig.from_dict({"modes": ["listwise"]}))


def test_every_section_is_a_dagster_resource_with_exactly_its_fields():
    resources = resources_from_config(PipelineConfig())
    for name in PipelineConfig.model_fields:
        resource = resources[name]
        assert isinstance(resource, dg.ConfigurableResource)
        # plus which pipeline.yaml section it follows at run time
        assert set(type(resource).model_fields) == set(section_class(name).model_fields) | {"yaml_section"}, name
        assert resource.section() == getattr(PipelineConfig(), name)
    assert set(RESOURCE_OF_SECTION_TYPE) == {section_class(name) for name in PipelineConfig.model_fields}


def test_a_resource_loaded_from_the_file_follows_its_edits_unless_overridden(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "pipeline.yaml").write_text("chunking: {chunk_size: 800, chunk_overlap: 100}\n", encoding="utf-8")
    monkeypatch.setenv("RAG_PIPELINE_DATA", str(data))
    resources = resources_from_config()
    (data / "pipeline.yaml").write_text("chunking: {chunk_size: 500, chunk_overlap: 50}\n", encoding="utf-8")
    assert resources["chunking"].section().chunk_size == 500  # a long-running code server sees the edit
    overridden = type(resources["chunking"])(yaml_section="chunking", chunk_size=300, chunk_overlap=10)
    assert overridden.section().chunk_size == 300  # a launchpad value wins over the file
    assert resources_from_config(PipelineConfig())["chunking"].section().chunk_size == 800  # explicit: as given


def test_a_launchpad_override_reaches_the_core_and_is_validated():
    resources = resources_from_config(PipelineConfig())
    overridden = type(resources["retrieval"])(top_k=5, top_n=1)
    assert overridden.section() == RetrievalConfig(top_k=5, top_n=1)
    with pytest.raises(ConfigError, match="top_n \\(3\\) cannot exceed top_k \\(2\\)"):
        type(resources["retrieval"])(top_k=2, top_n=3).section()


def test_the_judge_modes_the_config_accepts_are_the_registered_ones():
    assert set(get_args(JudgeModeName)) == set(MODES)


def test_retrieval_strategy_fields_are_validated_with_clear_errors(tmp_path):
    config = load_pipeline_config(write(tmp_path, "retrieval: {strategy: hybrid, rrf_k: 30, lexical_weight: 2}\n"))
    assert (config.retrieval.strategy, config.retrieval.rrf_k, config.retrieval.lexical_weight) == ("hybrid", 30, 2.0)
    assert RetrievalConfig().strategy == "dense"  # the notebook's first stage unless configured
    for text, message in [
        ("retrieval: {strategy: sparse}", r"retrieval: strategy: unknown retrieval strategy 'sparse'; expected one of \['dense', 'bm25', 'hybrid'\]"),
        ("retrieval: {fusion: sum}", r"retrieval: fusion: unknown retrieval fusion 'sum'"),
        ("retrieval: {rrf_k: 0}", r"retrieval: rrf_k: Input should be greater than or equal to 1"),
        ("retrieval: {bm25_b: 1.5}", r"retrieval: bm25_b: Input should be less than or equal to 1"),
        ("retrieval: {strategy: hybrid, dense_weight: 0, lexical_weight: 0}", r"needs dense_weight or lexical_weight above 0"),
        ("retrieval: {stemming: 'yes'}", r"retrieval: stemming: Input should be a valid boolean"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_pipeline_config(write(tmp_path, text + "\n"))


def test_retrieval_strategy_flows_into_the_retrieval_config_input(tmp_path, monkeypatch):
    from rag_pipeline.versioned_inputs import INPUTS_BY_NAME

    def versions(text: str) -> dict[str, str]:
        monkeypatch.setenv("RAG_PIPELINE_CONFIG", str(write(tmp_path, text)))
        return {name: INPUTS_BY_NAME[name].versions()[""] for name in ("retrieval_config", "embedder_config", "chunking_config")}

    dense = versions("retrieval: {top_k: 10, top_n: 2}\n")
    hybrid = versions("retrieval: {top_k: 10, top_n: 2, strategy: hybrid}\n")
    hybrid_k = versions("retrieval: {strategy: hybrid, rrf_k: 20}\n")
    assert versions("retrieval: {strategy: dense}  # explicit default\n") == dense
    assert len({dense["retrieval_config"], hybrid["retrieval_config"], hybrid_k["retrieval_config"]}) == 3
    assert hybrid["embedder_config"] == dense["embedder_config"]  # the index does not re-run
    assert hybrid["chunking_config"] == dense["chunking_config"]


def test_the_translating_models_registry_entry_flows_into_the_retrieval_config_input(tmp_path, monkeypatch):
    from rag_pipeline.defs.ingest.assets import retrieval_pool
    from rag_pipeline.versioned_inputs import INPUTS_BY_NAME

    models = yaml.safe_load((REPO_ROOT / "data" / "models.yaml").read_text(encoding="utf-8"))
    entry = next(m for m in models["models"] if m["name"] == "qwen2.5-coder-0.5b")
    original = entry["revision"]
    monkeypatch.setenv("RAG_PIPELINE_MODELS", str(tmp_path / "models.yaml"))

    def version(pipeline: str, revision: str = original) -> str:
        entry["revision"] = revision
        (tmp_path / "models.yaml").write_text(yaml.safe_dump(models), encoding="utf-8")
        monkeypatch.setenv("RAG_PIPELINE_CONFIG", str(write(tmp_path, pipeline)))
        return INPUTS_BY_NAME["retrieval_config"].versions()[""]

    off = "retrieval: {strategy: hybrid}\n"
    on = "retrieval: {strategy: hybrid, translate_with: qwen2.5-coder-0.5b}\n"
    translating = version(on)
    assert translating != version(off)
    assert version(off, revision="sha256:other") == version(off)  # no translation: the entry does not matter
    assert version(on, revision="sha256:other") != translating  # other weights: the retrievals re-run
    assert version(on) == translating
    assert version("retrieval: {strategy: hybrid, translate_with: qwen2.5-coder-0.5b, translate_for: both}\n") != translating
    # the step that loads the LLM takes the gpu pool; without translation it takes none
    assert retrieval_pool(PipelineConfig.from_dict({"retrieval": {"strategy": "hybrid", "translate_with": "x"}})) == "gpu"
    assert retrieval_pool(PipelineConfig.from_dict({"retrieval": {"strategy": "hybrid"}})) is None
    assert retrieval_pool(PipelineConfig.from_dict({"retrieval": {"strategy": "dense", "translate_with": "x"}})) is None


def test_the_shipped_default_translates_for_bm25_and_the_suite_copy_only_turns_that_off():
    from rag_pipeline_tests.suite_data import SUITE_DATA

    shipped = load_pipeline_config(REPO_ROOT / "data/pipeline.yaml")
    retrieval = shipped.retrieval
    assert (retrieval.strategy, retrieval.rrf_k, retrieval.lexical_weight) == ("hybrid", 10, 1.5)
    assert (retrieval.translate_with, retrieval.translate_for) == ("qwen2.5-coder-0.5b", "lexical")
    suite = load_pipeline_config(SUITE_DATA / "pipeline.yaml")
    assert suite.retrieval.translate_with is None
    assert suite.retrieval.model_copy(update={"translate_with": retrieval.translate_with}) == retrieval
    assert suite.model_copy(update={"retrieval": retrieval}) == shipped  # every other section as shipped
