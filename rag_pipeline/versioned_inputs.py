"""What each stage reads from configuration and the registries, as content hashes.

Every input that is not an upstream asset (a model's registry entry, a paper's questions, a
``pipeline.yaml`` section, who is registered at all) is declared once here with the stages that
read it. ``rag_pipeline.defs.inputs`` turns each into an observable source asset whose data version
is this hash, so an edit makes exactly the stages that read it stale. A hash covers the parsed,
validated content: a comment or the key order of a YAML file changes nothing.

Dagster-free: the CLI and the tests read the same versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from rag_pipeline import contracts as c
from rag_pipeline.config import PipelineConfig, load_pipeline_config
from rag_pipeline.datasets import load_questions, load_reference_summaries, read_papers
from rag_pipeline.generate.registry import read_models
from rag_pipeline.hashing import content_hash, sha256_file

# How an input is partitioned: like the models, like the papers, or one value for all.
BY_MODEL = "models"
BY_PAPER = "papers"
WHOLE = ""


@dataclass(frozen=True)
class VersionedInput:
    """One input of the graph: its source asset name, partitioning, readers and how to hash it now."""

    name: str
    partitioned: str  # BY_MODEL, BY_PAPER or WHOLE
    readers: tuple[c.StageAsset, ...]
    description: str
    # Partition key → content hash (WHOLE: the single key ""), from the files as they are now.
    versions: Callable[[], dict[str, str]]


def _section(*names: str) -> Callable[[], dict[str, str]]:
    def versions() -> dict[str, str]:
        config: PipelineConfig = load_pipeline_config()
        return {WHOLE: content_hash({name: getattr(config, name).content_hash() for name in names})}

    return versions


def model_entry_versions() -> dict[str, str]:
    """Each registered model's entry as far as it determines outputs (backend, weights, revision,
    decoding, prompts, tasks; not its description or batch size: ModelSpec.identity)."""
    return {spec.name: content_hash(spec.identity()) for spec in read_models().entries}


def paper_source_versions() -> dict[str, str]:
    """Each registered paper's entry (source, title, collection) and, for a local PDF, its sha256
    (an arXiv source is pinned by its id and version in the entry)."""
    versions = {}
    for spec in read_papers().entries:
        local = spec.pdf_path
        file_hash = _file_hash(str(local), *_stat(local)) if local is not None and local.is_file() else None
        versions[spec.id] = content_hash({"entry": spec.content_hash(), "file": file_hash})
    return versions


def _stat(path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=4096)
def _file_hash(path: str, mtime_ns: int, size: int) -> str:
    # Keyed on mtime and size: the sensor re-reads a PDF only after it changed on disk.
    return sha256_file(path)


def paper_question_versions() -> dict[str, str]:
    """Each paper's questions with their reference answers and gold evidence, and its reference summary."""
    papers = read_papers().entries
    summaries = load_reference_summaries(papers=list(papers))
    # Every file read once, not once per paper: per paper, the tick grew with the square of the papers.
    questions: dict[str, list[str]] = {}
    for question in load_questions(papers=list(papers)):
        questions.setdefault(question.paper_id, []).append(repr(question))
    return {spec.id: content_hash({"questions": questions.get(spec.id, []), "summary": summaries.get(spec.id, "")})
            for spec in papers}


def retrieval_versions() -> dict[str, str]:
    """pipeline.yaml's retrieval and reranker sections and, when retrieval translates questions, the
    registry entry of the translating model (its identity: weights, revision, decoding, prompts)."""
    config: PipelineConfig = load_pipeline_config()
    values = {name: getattr(config, name).content_hash() for name in ("retrieval", "reranker")}
    if config.retrieval.uses_translation:
        entries = {spec.name: spec for spec in read_models().entries}
        entry = entries.get(config.retrieval.translate_with)
        values["translation_model"] = entry.identity() if entry is not None else None
    return {WHOLE: content_hash(values)}


def model_roster_version() -> dict[str, str]:
    """Who is registered: the judge compares these models and the leaderboard ranks them."""
    return {WHOLE: content_hash(sorted(spec.name for spec in read_models().entries))}


def paper_roster_version() -> dict[str, str]:
    return {WHOLE: content_hash(sorted(spec.id for spec in read_papers().entries))}


def judge_versions() -> dict[str, str]:
    """The judge section and the registry entries of the judge and the cascade's judges (registry models)."""
    config = load_pipeline_config().judge
    entries = {spec.name: spec for spec in read_models().entries}
    names = [config.model, *(name for name in config.cascade_models if name != config.model)]
    models = {name: entries[name].identity() if name in entries else None for name in names}
    return {WHOLE: content_hash({"judge": config.content_hash(), "models": models})}


def label_file_versions() -> dict[str, str]:
    """The preference label files (name and sha256 of each) in the judge's label directory."""
    from rag_pipeline.evaluate.judge.labels import label_directory, label_files

    files = label_files(label_directory(load_pipeline_config().judge.labels))
    return {WHOLE: content_hash({path.name: _file_hash(str(path), *_stat(path)) for path in files})}


INPUTS: tuple[VersionedInput, ...] = (
    VersionedInput("model_entry", BY_MODEL, c.GENERATION_ASSETS, "A model's entry in data/models.yaml.", model_entry_versions),
    VersionedInput("paper_source", BY_PAPER, (c.PAPER_PDF,),
                   "A paper's entry in data/papers.yaml and, for a local PDF, the file's sha256.", paper_source_versions),
    VersionedInput("paper_questions", BY_PAPER, (c.RETRIEVALS, c.GENERATION_METRICS, c.JUDGMENTS),
                   "A paper's questions, reference answers and reference summary.", paper_question_versions),
    VersionedInput("chunking_config", WHOLE, (c.PAPER_CHUNKS,), "pipeline.yaml: chunking.", _section("chunking")),
    VersionedInput("embedder_config", WHOLE, (c.PAPER_INDEX, c.RETRIEVALS), "pipeline.yaml: embedder and chroma.",
                   _section("embedder", "chroma")),
    VersionedInput("retrieval_config", WHOLE, (c.RETRIEVALS,),
                   "pipeline.yaml: retrieval (top_k, top_n, strategy, fusion, BM25 settings, query translation) and "
                   "reranker, and the registry entry of the translating model.", retrieval_versions),
    VersionedInput("metrics_config", WHOLE, (c.GENERATION_METRICS,), "pipeline.yaml: cosine_embedder.",
                   _section("cosine_embedder")),
    VersionedInput("judge_config", WHOLE, (c.JUDGE_CALIBRATION, c.JUDGMENTS),
                   "pipeline.yaml: judge, and the entries of the judge and cascade models.", judge_versions),
    VersionedInput("label_files", WHOLE, (c.JUDGE_LABELS,), "The preference label files (data/labels/).",
                   label_file_versions),
    VersionedInput("model_roster", WHOLE, (c.JUDGMENTS, c.LEADERBOARD), "The names of the registered models.",
                   model_roster_version),
    VersionedInput("paper_roster", WHOLE, (c.LEADERBOARD,), "The ids of the registered papers.", paper_roster_version),
)
INPUTS_BY_NAME = {source.name: source for source in INPUTS}


def inputs_read_by(asset: c.StageAsset) -> tuple[VersionedInput, ...]:
    return tuple(source for source in INPUTS if asset in source.readers)


def current_versions() -> dict[str, dict[str, str]]:
    """Every input's versions as the files are now: {input name: {partition key: hash}}."""
    return {source.name: source.versions() for source in INPUTS}
