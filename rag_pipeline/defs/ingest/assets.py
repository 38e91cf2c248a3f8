"""Ingest assets, partitioned by paper: declarations around rag_pipeline.stages.ingest."""

import dagster as dg

from rag_pipeline import contracts as c
from rag_pipeline.config import PipelineConfig, load_pipeline_config
from rag_pipeline.defs.automation import on_input_change
from rag_pipeline.defs.executors import placement
from rag_pipeline.defs.inputs.assets import input_deps
from rag_pipeline.defs.metadata import log_warnings, materialize_result
from rag_pipeline.defs.partitions import PAPERS
from rag_pipeline.defs.resources import (
    ChromaResource,
    ChunkingResource,
    EmbedderResource,
    RerankerResource,
    RetrievalResource,
    StateResource,
)
from rag_pipeline.generate.pool import MODEL_POOL
from rag_pipeline.stages import ingest as stage


def paper_asset(asset: c.StageAsset, upstream: tuple[c.StageAsset, ...] = (), **options):
    """The decorator every ingest asset shares: one paper per partition, re-run on input change."""
    return dg.asset(
        name=asset.name, partitions_def=PAPERS, group_name=asset.group, deps=[*(a.name for a in upstream), *input_deps(asset)],
        code_version="1", automation_condition=on_input_change(), **options,
    )


@paper_asset(c.PAPER_PDF, kinds={"pdf"})
def paper_pdf(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """The paper's PDF: downloaded from arXiv (retries, backoff) or copied from a local path; checked to be a readable PDF with a text layer."""
    return materialize_result(stage.fetch_paper(state.store(), context.partition_key))


@paper_asset(c.PAPER_MARKDOWN, (c.PAPER_PDF,), kinds={"markdown"})
def paper_markdown(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """The PDF converted to markdown by pymupdf4llm."""
    return materialize_result(stage.convert_paper(state.store(), context.partition_key))


@paper_asset(c.PAPER_TEXT, (c.PAPER_MARKDOWN,), kinds={"markdown"})
def paper_text(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """Markdown cut at References, cleaned; abstract and conclusion extracted (a missing one is recorded, not fatal)."""
    return materialize_result(log_warnings(context, stage.clean_paper(state.store(), context.partition_key)))


@paper_asset(c.PAPER_CHUNKS, (c.PAPER_TEXT,), kinds={"pandas"})
def paper_chunks(context: dg.AssetExecutionContext, state: StateResource, chunking: ChunkingResource) -> dg.MaterializeResult:
    """Markdown-aware chunks (800/100 by default) with ids `{paper}:{i}`, section and character offsets."""
    return materialize_result(stage.chunk_paper(state.store(), context.partition_key, chunking.section()))


# An embedded Chroma directory takes one writer at a time: the `chroma` pool (limit 1) serialises
# indexing across parallel runs. Under celery both Chroma steps go to the `chroma` queue
# (rag_pipeline.defs.executors): an embedded directory is read and written by one worker process.
@paper_asset(c.PAPER_INDEX, (c.PAPER_CHUNKS,), kinds={"chroma"}, **placement(pool="chroma"))
def paper_index(
    context: dg.AssetExecutionContext, state: StateResource, embedder: EmbedderResource, chroma: ChromaResource
) -> dg.MaterializeResult:
    """The paper's chunks embedded and upserted into Chroma: afterwards the paper holds exactly its current chunks."""
    return materialize_result(
        stage.index_paper(state.store(), context.partition_key, embedder.get(), chroma.client(state.paths()), chroma.section())
    )


def retrieval_pool(config: PipelineConfig | None = None) -> str | None:
    """The pool of the retrievals step: ``gpu`` when pipeline.yaml's retrieval translates queries
    with an LLM (it then loads that model, like generation and judging), else none (a few seconds
    of embedding and BM25 per paper need no slot)."""
    retrieval = (config or load_pipeline_config()).retrieval
    return "gpu" if retrieval.uses_translation else None


@paper_asset(c.RETRIEVALS, (c.PAPER_INDEX,), kinds={"pandas"}, **placement(pool=retrieval_pool(), resources=("chroma",)))
def retrievals(
    context: dg.AssetExecutionContext,
    state: StateResource,
    retrieval: RetrievalResource,
    embedder: EmbedderResource,
    reranker: RerankerResource,
    chroma: ChromaResource,
) -> dg.MaterializeResult:
    """Per question of the paper: top-k candidates filtered by paper (dense, BM25 or hybrid; questions in
    another language than the paper's optionally translated by the configured LLM), reranked, top-n kept."""
    section = retrieval.section()
    if section.uses_translation and context.assets_def.op.pool != "gpu":
        raise dg.Failure(
            f"retrieval translate_with {section.translate_with!r} loads an LLM, but the retrievals step was defined "
            "without the gpu pool: set translate_with in data/pipeline.yaml (not only in the launchpad) and reload"
        )
    return materialize_result(log_warnings(context,
        stage.retrieve_for_paper(
            state.store(), context.partition_key, embedder.get(), reranker.get(), chroma.client(state.paths()),
            chroma.section(), section, reranker.section(),
            generation_cache=state.generation_cache(), model_pool=MODEL_POOL, paths=state.paths(),
        )
    ))


@paper_asset(c.RETRIEVAL_METRICS, (c.RETRIEVALS, c.PAPER_CHUNKS), kinds={"pandas"})
def retrieval_metrics(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """hit@k, MRR, nDCG@k against gold evidence; accuracy from the notebook's manual marks where present."""
    return materialize_result(stage.score_retrieval(state.store(), context.partition_key))


assets = [paper_pdf, paper_markdown, paper_text, paper_chunks, paper_index, retrievals, retrieval_metrics]
