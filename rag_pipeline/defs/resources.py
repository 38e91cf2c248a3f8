"""Dagster resources, derived from the configuration sections of ``rag_pipeline.config``.

Each pipeline.yaml section becomes one resource of the same name whose fields are the section's
own (generated from the pydantic model, never written twice), so every key accepted in YAML can be
overridden per run from the UI launchpad. A resource hands the core the validated section
(``section()``) or the component built from it (an embedder, a reranker, a Chroma client).
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar, get_args, get_origin

import dagster as dg
import pydantic

from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.cache import ContentCache
from rag_pipeline.config import (
    ChromaConfig,
    ChunkingConfig,
    EmbedderConfig,
    JudgeConfig,
    LanguageConfig,
    PipelineConfig,
    RerankerConfig,
    RetrievalConfig,
    Section,
    load_pipeline_config,
    section_class,
)
from rag_pipeline.defs.runs import RunSupervisor, in_step_worker, supervise_run
from rag_pipeline.index.embedders import load_embedder
from rag_pipeline.index.rerankers import load_reranker
from rag_pipeline.index.vector_store import make_chroma_client
from rag_pipeline.settings import StatePaths, state_paths


class StateResource(dg.ConfigurableResource):
    """The state directory (artifacts, Chroma, caches); default $RAG_PIPELINE_HOME or ./.rag_state.

    Every run that writes the state owns it through this resource: when the run starts (before any
    step waits on a pool) it records its process, cleans up after runs whose process died, and keeps
    a heartbeat and a watch on its waiting steps until it ends (rag_pipeline.defs.runs).
    """

    state_dir: str | None = None
    _supervisor: RunSupervisor | None = pydantic.PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.instance is not None and context.dagster_run is not None and not in_step_worker():
            report = context.log.warning if context.log is not None else print
            self._supervisor = supervise_run(context.instance, context.dagster_run, report)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._supervisor is not None:
            self._supervisor.stop()

    def paths(self) -> StatePaths:
        return state_paths(self.state_dir)

    def store(self) -> ArtifactStore:
        paths = self.paths()
        return ArtifactStore(paths.artifacts, cache_dir=paths.artifact_cache)

    def generation_cache(self) -> ContentCache:
        return ContentCache(self.paths().generation_cache)

    def judge_cache(self) -> ContentCache:
        return ContentCache(self.paths().judge_cache)


# Each section as pipeline.yaml held it when the Definitions were loaded (resources_from_config).
_LOADED_SECTIONS: dict[str, Section] = {}


class SectionResource(dg.ConfigurableResource):
    """A resource whose fields are one configuration section's; ``section()`` validates them.

    pipeline.yaml is read again when a run uses the section, unless the run's launchpad overrides
    a field: a long-running code server (``make ui``) then runs with the file as it is now, the
    same values its observed input versions describe.
    """

    section_type: ClassVar[type[Section]]
    yaml_section: str = ""  # the pipeline.yaml section this resource follows ("" = its fields only)

    def section(self):
        configured = self.section_type.from_dict({name: getattr(self, name) for name in self.section_type.model_fields})
        if self.yaml_section and _LOADED_SECTIONS.get(self.yaml_section) == configured:
            return getattr(load_pipeline_config(), self.yaml_section)
        return configured


def section_resource(section_type: type[Section], behaviour: type[SectionResource], name: str) -> type[SectionResource]:
    """``behaviour`` with the fields of ``section_type`` added (types, defaults and bounds as declared there)."""
    fields = {field: _dagster_field(info) for field, info in section_type.model_fields.items()}
    derived = pydantic.create_model(name, __base__=behaviour, __module__=__name__, **fields)
    derived.section_type = section_type
    derived.__doc__ = section_type.__doc__
    return derived


def _dagster_field(info):
    # Dagster's config system takes lists, not tuples: a tuple[str, ...] field is a list[str] there.
    if get_origin(info.annotation) is tuple:
        return list[get_args(info.annotation)[0]], pydantic.Field(list(info.default))
    return info.annotation, info


class _Embedder(SectionResource):
    def get(self):
        return load_embedder(self.section())


class _Reranker(SectionResource):
    def get(self):
        return load_reranker(self.section())


class _Chroma(SectionResource):
    def client(self, state: StatePaths):
        config = self.section()
        if config.mode == "persistent" and config.path is None:
            config = config.model_copy(update={"path": str(state.chroma)})
        return _chroma_client(config)


@lru_cache(maxsize=4)
def _chroma_client(config: ChromaConfig):
    # One client per configuration and process: Chroma keeps per-path state that must be shared.
    return make_chroma_client(config)


ChunkingResource = section_resource(ChunkingConfig, SectionResource, "ChunkingResource")
RetrievalResource = section_resource(RetrievalConfig, SectionResource, "RetrievalResource")
EmbedderResource = section_resource(EmbedderConfig, _Embedder, "EmbedderResource")
RerankerResource = section_resource(RerankerConfig, _Reranker, "RerankerResource")
ChromaResource = section_resource(ChromaConfig, _Chroma, "ChromaResource")
JudgeResource = section_resource(JudgeConfig, SectionResource, "JudgeResource")
LanguageResource = section_resource(LanguageConfig, SectionResource, "LanguageResource")

RESOURCE_OF_SECTION_TYPE = {
    resource.section_type: resource
    for resource in (ChunkingResource, RetrievalResource, EmbedderResource, RerankerResource, ChromaResource, JudgeResource,
                     LanguageResource)
}


def resources_from_config(config: PipelineConfig | None = None) -> dict:
    """The resource set of a run: one resource per pipeline.yaml section (same name), plus the state directory."""
    resources = {"state": StateResource()}
    from_file = config is None
    config = load_pipeline_config() if from_file else config
    for name in PipelineConfig.model_fields:
        follow = ""
        if from_file:  # follows the file as it changes; an explicit configuration is used as given
            _LOADED_SECTIONS[name], follow = getattr(config, name), name
        resources[name] = RESOURCE_OF_SECTION_TYPE[section_class(name)](yaml_section=follow, **getattr(config, name).as_dict())
    return resources
