"""Ingestion assets, partitioned by paper: PDF → markdown → text → chunks → index → retrievals."""


import time

import dagster as dg
import pandas as pd

from rag_pipeline.datasets import papers_by_id, questions_for_paper
from rag_pipeline.defs.automation import on_input_change
from rag_pipeline.defs.partitions import PAPERS
from rag_pipeline.defs.resources import (
    ChromaResource,
    EmbedderResource,
    PipelineSettings,
    RerankerResource,
    StateResource,
)
from rag_pipeline.hashing import content_hash

GROUP = "ingest"


def frame_preview(frame: pd.DataFrame, columns: list[str], rows: int = 5, width: int = 80) -> dg.MetadataValue:
    """A short markdown table for the UI; long cells are cut."""
    shown = frame[[c for c in columns if c in frame.columns]].head(rows).copy()
    for column in shown.columns:
        shown[column] = shown[column].map(lambda v: (str(v)[:width] + "…") if len(str(v)) > width else v)
    return dg.MetadataValue.md(shown.to_markdown(index=False) if not shown.empty else "_empty_")


def frame_version(frame: pd.DataFrame, columns: list[str]) -> dg.DataVersion:
    """Data version of a table: the hash of the columns that matter downstream."""
    present = [c for c in columns if c in frame.columns]
    return dg.DataVersion(content_hash(frame[present].astype(str).values.tolist()))


@dg.asset(partitions_def=PAPERS, group_name=GROUP, kinds={"pdf"}, code_version="1",
          automation_condition=on_input_change())
def paper_pdf(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """The paper's PDF: downloaded from arXiv (retries, backoff) or copied from a local path; checked to be a readable PDF with a text layer."""
    from rag_pipeline.ingest.errors import InvalidSourceError
    from rag_pipeline.ingest.fetch import fetch_pdf

    paper_id = context.partition_key
    registry = papers_by_id()
    if paper_id not in registry:
        raise dg.Failure(f"paper {paper_id!r} is not in data/papers.yaml (removed from the registry?)")
    if registry[paper_id].source_error:
        raise InvalidSourceError(paper_id, registry[paper_id].source_error)
    store = state.store()
    target_dir = store.path("paper_pdf", paper_id, suffix=".pdf").parent
    record = fetch_pdf(registry[paper_id], target_dir)
    info = {
        "paper_id": paper_id,
        "sha256": record.sha256,
        "n_bytes": record.n_bytes,
        "n_pages": record.n_pages,
        "source_url": record.source_url,
        "arxiv_id": record.arxiv_id,
        "arxiv_version": record.arxiv_version,
        "title": record.title,
        "path": str(record.path),
    }
    store.write_json("paper_pdf", paper_id, obj=info)
    return dg.MaterializeResult(
        metadata={
            "sha256": record.sha256,
            "source": dg.MetadataValue.url(record.source_url) if record.source_url.startswith("http") else record.source_url,
            "pages": record.n_pages,
            "bytes": record.n_bytes,
            "arxiv_version": record.arxiv_version or "",
            "title": record.title or "",
            "path": dg.MetadataValue.path(str(record.path)),
        },
        data_version=dg.DataVersion(record.sha256),
    )


@dg.asset(partitions_def=PAPERS, deps=[paper_pdf], group_name=GROUP, kinds={"markdown"}, code_version="1",
          automation_condition=on_input_change())
def paper_markdown(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """The PDF converted to markdown by pymupdf4llm."""
    from rag_pipeline.ingest.markdown import markdown_engine, pdf_to_markdown

    paper_id = context.partition_key
    store = state.store()
    pdf = store.path("paper_pdf", paper_id, suffix=".pdf")
    if not pdf.exists():
        raise dg.Failure(f"paper {paper_id!r}: paper_pdf is not materialized yet ({pdf})")
    started = time.perf_counter()
    markdown = pdf_to_markdown(pdf, paper_id=paper_id)
    seconds = time.perf_counter() - started
    path = store.write_text("paper_markdown", paper_id, text=markdown)
    return dg.MaterializeResult(
        metadata={
            "chars": len(markdown),
            "engine": markdown_engine(),
            "seconds": round(seconds, 3),
            "preview": dg.MetadataValue.md(markdown[:1500]),
            "path": dg.MetadataValue.path(str(path)),
        },
        data_version=dg.DataVersion(content_hash(markdown)),
    )


@dg.asset(partitions_def=PAPERS, deps=[paper_markdown], group_name=GROUP, kinds={"markdown"}, code_version="1",
          automation_condition=on_input_change())
def paper_text(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """Markdown cut at References, cleaned; abstract and conclusion extracted (a missing one is recorded, not fatal)."""
    from rag_pipeline.ingest.text import process_markdown

    paper_id = context.partition_key
    store = state.store()
    processed = process_markdown(store.read_text("paper_markdown", paper_id))
    sections = {
        "abstract": processed.sections.abstract,
        "conclusion": processed.sections.conclusion,
        "missing": list(processed.sections.missing),
        "headings": list(processed.sections.headings),
        "references_heading": processed.references_heading,
    }
    store.write_text("paper_text", paper_id, text=processed.text)
    store.write_json("paper_text", paper_id, obj=sections)
    if processed.sections.missing:
        context.log.warning(f"paper {paper_id!r}: sections not found: {', '.join(processed.sections.missing)}")
    return dg.MaterializeResult(
        metadata={
            "chars_markdown": processed.n_chars_markdown,
            "chars_text": processed.n_chars_text,
            "references_cut_at": processed.references_heading or "(no references heading found)",
            "sections_found": ", ".join(s for s in ("abstract", "conclusion") if s not in processed.sections.missing) or "none",
            "sections_missing": ", ".join(processed.sections.missing) or "none",
            "abstract": dg.MetadataValue.md(processed.sections.abstract[:800] or "_missing_"),
            "conclusion": dg.MetadataValue.md(processed.sections.conclusion[:800] or "_missing_"),
        },
        data_version=dg.DataVersion(content_hash([processed.text, sections])),
    )


@dg.asset(partitions_def=PAPERS, deps=[paper_text], group_name=GROUP, kinds={"pandas"}, code_version="1",
          automation_condition=on_input_change())
def paper_chunks(context: dg.AssetExecutionContext, state: StateResource, settings: PipelineSettings) -> dg.MaterializeResult:
    """Markdown-aware chunks (800/100 by default) with ids `{paper}:{i}`, section and character offsets."""
    from rag_pipeline.ingest.chunking import chunk_text, chunks_to_frame

    paper_id = context.partition_key
    store = state.store()
    text = store.read_text("paper_text", paper_id)
    frame = chunks_to_frame(chunk_text(paper_id, text, settings.chunk_size, settings.chunk_overlap))
    if frame.empty:
        raise dg.Failure(f"paper {paper_id!r}: the cleaned text produced no chunks")
    store.write_frame("paper_chunks", paper_id, frame=frame)
    lengths = frame["text"].str.len()
    return dg.MaterializeResult(
        metadata={
            "chunks": len(frame),
            "mean_chars": round(float(lengths.mean()), 1),
            "max_chars": int(lengths.max()),
            "chunk_size": settings.chunk_size,
            "chunk_overlap": settings.chunk_overlap,
            "sections": dg.MetadataValue.md(frame["section"].replace("", "(none)").value_counts().head(12).to_frame("chunks").to_markdown()),
            "preview": frame_preview(frame, ["chunk_id", "section", "start", "end", "text"]),
        },
        data_version=frame_version(frame, ["chunk_id", "text", "section", "start", "end"]),
    )


# An embedded Chroma directory takes one writer at a time: the `chroma` pool (limit 1) serialises
# indexing across parallel runs.
@dg.asset(partitions_def=PAPERS, deps=[paper_chunks], group_name=GROUP, kinds={"chroma"}, code_version="1",
          automation_condition=on_input_change(), pool="chroma")
def paper_index(
    context: dg.AssetExecutionContext, state: StateResource, embedder: EmbedderResource, chroma: ChromaResource
) -> dg.MaterializeResult:
    """The paper's chunks embedded and upserted into Chroma: afterwards the paper holds exactly its current chunks."""
    from rag_pipeline.index.vector_store import PaperIndex

    paper_id = context.partition_key
    store = state.store()
    chunks = store.read_frame("paper_chunks", paper_id)
    model = embedder.get()
    index = PaperIndex(chroma.client(state.paths()), model, collection_prefix=chroma.collection_prefix)
    started = time.perf_counter()
    count = index.upsert_paper(paper_id, chunks)
    seconds = time.perf_counter() - started
    if count != len(chunks):
        raise dg.Failure(f"paper {paper_id!r}: Chroma holds {count} chunks after upsert, expected {len(chunks)}")
    signature = model.signature()
    store.write_json("paper_index", paper_id, obj={"paper_id": paper_id, "count": count, "embedder": signature})
    return dg.MaterializeResult(
        metadata={
            "chunks_indexed": count,
            "embedder": model.name,
            "embedder_signature": dg.MetadataValue.json(signature),
            "chroma_mode": chroma.mode,
            "seconds": round(seconds, 3),
            "chunks_per_s": round(count / seconds, 1) if seconds > 0 else 0.0,
        },
        data_version=dg.DataVersion(content_hash([frame_version(chunks, ["chunk_id", "text"]).value, signature])),
    )


@dg.asset(partitions_def=PAPERS, deps=[paper_index], group_name=GROUP, kinds={"pandas"}, code_version="1",
          automation_condition=on_input_change())
def retrievals(
    context: dg.AssetExecutionContext,
    state: StateResource,
    settings: PipelineSettings,
    embedder: EmbedderResource,
    reranker: RerankerResource,
    chroma: ChromaResource,
) -> dg.MaterializeResult:
    """Per question of the paper: top-k candidates filtered by paper, reranked, top-n kept; all scores recorded."""
    from rag_pipeline.index.retrieve import retrieve_many
    from rag_pipeline.index.vector_store import PaperIndex

    paper_id = context.partition_key
    questions = questions_for_paper(paper_id)
    model = embedder.get()
    index = PaperIndex(chroma.client(state.paths()), model, collection_prefix=chroma.collection_prefix)
    frame = retrieve_many(index, reranker.get(), paper_id, questions, top_k=settings.top_k, top_n=settings.top_n)
    state.store().write_frame("retrievals", paper_id, frame=frame)
    kept = frame[frame["kept"]] if not frame.empty else frame
    return dg.MaterializeResult(
        metadata={
            "questions": len(questions),
            "candidates": len(frame),
            "kept": len(kept),
            "top_k": settings.top_k,
            "top_n": settings.top_n,
            "reranker": reranker.kind if reranker.kind == "none" else f"{reranker.kind}:{reranker.model}",
            "preview": frame_preview(kept, ["question_id", "final_rank", "chunk_id", "vector_score", "rerank_score", "text"]),
        },
        data_version=frame_version(frame, ["question_id", "question", "chunk_id", "final_rank", "kept", "text"]),
    )


@dg.asset(partitions_def=PAPERS, deps=[retrievals, paper_chunks], group_name=GROUP, kinds={"pandas"}, code_version="1",
          automation_condition=on_input_change())
def retrieval_metrics(context: dg.AssetExecutionContext, state: StateResource) -> dg.MaterializeResult:
    """hit@k, MRR, nDCG@k against gold evidence; accuracy from the notebook's manual marks where present."""
    from rag_pipeline.evaluate.retrieval_metrics import retrieval_metrics as compute

    paper_id = context.partition_key
    store = state.store()
    frame = compute(store.read_frame("retrievals", paper_id), store.read_frame("paper_chunks", paper_id), questions_for_paper(paper_id))
    store.write_frame("retrieval_metrics", paper_id, frame=frame)
    metadata: dict = {"questions": len(frame)}
    for column in ("hit@1", "hit@2", "hit@10", "mrr", "ndcg@10"):
        if column in frame.columns and frame[column].notna().any():
            metadata[column] = round(float(frame[column].dropna().mean()), 4)
    return dg.MaterializeResult(metadata=metadata, data_version=frame_version(frame, list(frame.columns)))


ingest_assets = [paper_pdf, paper_markdown, paper_text, paper_chunks, paper_index, retrievals, retrieval_metrics]
