"""Ingest stages, one paper at a time: PDF → markdown → text → chunks → index → retrievals → metrics.

Each stage reads its inputs from the artifact store, calls the core, writes its output atomically
and returns a :class:`StageOutcome` whose version is a content hash of what matters downstream.
"""

from __future__ import annotations

import time

from rag_pipeline import contracts
from rag_pipeline.artifacts import ArtifactStore
from rag_pipeline.config import ChromaConfig, ChunkingConfig, RerankerConfig, RetrievalConfig
from rag_pipeline.datasets import papers_by_id, questions_for_paper
from rag_pipeline.evaluate.retrieval_metrics import retrieval_metrics
from rag_pipeline.hashing import content_hash
from rag_pipeline.index.embedders import Embedder
from rag_pipeline.index.rerankers import Reranker
from rag_pipeline.index.retrieve import retrieve_many
from rag_pipeline.index.vector_store import PaperIndex
from rag_pipeline.ingest.chunking import chunk_text, chunks_to_frame
from rag_pipeline.ingest.errors import InvalidSourceError
from rag_pipeline.ingest.fetch import fetch_pdf
from rag_pipeline.ingest.markdown import markdown_engine, pdf_to_markdown
from rag_pipeline.ingest.text import markup_share, process_markdown
from rag_pipeline.stages.outcome import (
    FilePath,
    Json,
    Markdown,
    StageError,
    StageOutcome,
    Url,
    artifact_metadata,
    frame_preview,
    frame_version,
)

PDF, MARKDOWN, TEXT, CHUNKS = contracts.PAPER_PDF, contracts.PAPER_MARKDOWN, contracts.PAPER_TEXT, contracts.PAPER_CHUNKS
INDEX, RETRIEVALS, RETRIEVAL_METRICS = contracts.PAPER_INDEX, contracts.RETRIEVALS, contracts.RETRIEVAL_METRICS


def fetch_paper(store: ArtifactStore, paper_id: str) -> StageOutcome:
    """The paper's PDF, downloaded from arXiv or copied from a local path, checked to be readable."""
    registry = papers_by_id()
    if paper_id not in registry:
        raise StageError(f"paper {paper_id!r} is not in data/papers.yaml (removed from the registry?)")
    if registry[paper_id].source_error:
        raise InvalidSourceError(paper_id, registry[paper_id].source_error)
    with store.writing(PDF.name, paper_id) as out:
        record = fetch_pdf(registry[paper_id], out.dir, file_name=out.file(".pdf").name)
        info = {
            "paper_id": paper_id,
            "sha256": record.sha256,
            "n_bytes": record.n_bytes,
            "n_pages": record.n_pages,
            "source_url": record.source_url,
            "arxiv_id": record.arxiv_id,
            "arxiv_version": record.arxiv_version,
            "title": record.title,
        }
        out.write_json(info)
    return StageOutcome(
        metadata={
            "sha256": record.sha256,
            "source": Url(record.source_url) if record.source_url.startswith("http") else record.source_url,
            "pages": record.n_pages,
            "bytes": record.n_bytes,
            "arxiv_version": record.arxiv_version or "",
            "title": record.title or "",
            "path": FilePath(store.url_of(PDF.name, paper_id, suffix=".pdf")),
            **artifact_metadata(out),
        },
        version=record.sha256,
    )


def convert_paper(store: ArtifactStore, paper_id: str) -> StageOutcome:
    """The PDF converted to markdown by pymupdf4llm."""
    if not store.exists(PDF.name, paper_id, suffix=".pdf"):
        raise StageError(f"paper {paper_id!r}: {PDF.name} is not materialized yet")
    with store.writing(MARKDOWN.name, paper_id) as out:
        started = time.perf_counter()
        markdown = pdf_to_markdown(out.input_path(PDF.name, paper_id, suffix=".pdf"), paper_id=paper_id)
        seconds = time.perf_counter() - started
        out.write_text(markdown)
    return StageOutcome(
        metadata={
            "chars": len(markdown),
            "engine": markdown_engine(),
            "seconds": round(seconds, 3),
            "preview": Markdown(markdown[:1500]),
            "path": FilePath(store.url_of(MARKDOWN.name, paper_id, suffix=".md")),
            **artifact_metadata(out),
        },
        version=content_hash(markdown),
    )


def clean_paper(store: ArtifactStore, paper_id: str) -> StageOutcome:
    """Markdown cut at References and cleaned; abstract and conclusion found (a missing one is recorded)."""
    with store.writing(TEXT.name, paper_id) as out:
        processed = process_markdown(out.read_text(MARKDOWN.name, paper_id))
        sections = processed.sections_record()
        out.write_text(processed.text)
        out.write_json(sections)
    missing = processed.sections.missing
    return StageOutcome(
        metadata={
            "chars_markdown": processed.n_chars_markdown,
            "chars_text": processed.n_chars_text,
            "references_cut_at": processed.references_heading or "(no references heading found)",
            "sections_found": ", ".join(s for s in ("abstract", "conclusion") if s not in missing) or "none",
            "sections_missing": ", ".join(missing) or "none",
            # "heading", "fallback:<title>" (no conclusion heading: the last body section, e.g. a
            # Discussion, stands in) or "missing"
            "conclusion_source": processed.sections.conclusion_source,
            "abstract": Markdown(processed.sections.abstract[:800] or "_missing_"),
            "conclusion": Markdown(processed.sections.conclusion[:800] or "_missing_"),
            "front_matter": Markdown(processed.front_matter[:800] or "_none found_"),
            "markup_share": round(markup_share(processed.text), 5),
            **artifact_metadata(out),
        },
        version=content_hash([processed.text, sections]),
        warnings=([f"paper {paper_id!r}: sections not found: {', '.join(missing)}"] if missing else [])
        + ([f"paper {paper_id!r}: no conclusion heading; using {processed.sections.conclusion_source.removeprefix('fallback:')!r} as the conclusion"]
           if processed.sections.conclusion_source.startswith("fallback:") else []),
    )


def chunk_paper(store: ArtifactStore, paper_id: str, chunking: ChunkingConfig) -> StageOutcome:
    """Markdown-aware chunks with ids ``{paper}:{i}``, section and character offsets."""
    with store.writing(CHUNKS.name, paper_id) as out:
        text = out.read_text(TEXT.name, paper_id)
        frame = chunks_to_frame(chunk_text(paper_id, text, chunking.chunk_size, chunking.chunk_overlap))
        if frame.empty:
            raise StageError(f"paper {paper_id!r}: the cleaned text produced no chunks")
        out.write_frame(frame)
    lengths = frame["text"].str.len()
    return StageOutcome(
        metadata={
            "chunks": len(frame),
            "mean_chars": round(float(lengths.mean()), 1),
            "max_chars": int(lengths.max()),
            "chunk_size": chunking.chunk_size,
            "chunk_overlap": chunking.chunk_overlap,
            "sections": Markdown(frame["section"].replace("", "(none)").value_counts().head(12).to_frame("chunks").to_markdown()),
            "preview": frame_preview(frame, ["chunk_id", "section", "start", "end", "text"]),
            **artifact_metadata(out),
        },
        version=frame_version(frame, CHUNKS.version_columns),
    )


def index_paper(store: ArtifactStore, paper_id: str, embedder: Embedder, chroma_client, chroma: ChromaConfig) -> StageOutcome:
    """The paper's chunks embedded and upserted into Chroma: afterwards it holds exactly its current chunks."""
    with store.writing(INDEX.name, paper_id) as out:
        chunks = out.read_frame(CHUNKS.name, paper_id)
        index = PaperIndex(chroma_client, embedder, collection_prefix=chroma.collection_prefix)
        started = time.perf_counter()
        count = index.upsert_paper(paper_id, chunks)
        seconds = time.perf_counter() - started
        if count != len(chunks):
            raise StageError(f"paper {paper_id!r}: Chroma holds {count} chunks after upsert, expected {len(chunks)}")
        signature = embedder.signature()
        out.write_json({"paper_id": paper_id, "count": count, "embedder": signature})
    return StageOutcome(
        metadata={
            "chunks_indexed": count,
            "embedder": embedder.name,
            "embedder_signature": Json(signature),
            "chroma_mode": chroma.mode,
            "seconds": round(seconds, 3),
            "chunks_per_s": round(count / seconds, 1) if seconds > 0 else 0.0,
            **artifact_metadata(out),
        },
        version=content_hash([frame_version(chunks, ["chunk_id", "text"]), signature]),
    )


def retrieve_for_paper(
    store: ArtifactStore,
    paper_id: str,
    embedder: Embedder,
    reranker: Reranker | None,
    chroma_client,
    chroma: ChromaConfig,
    retrieval: RetrievalConfig,
    reranker_config: RerankerConfig,
    *,
    generation_cache=None,
    model_pool=None,
    paths=None,
) -> StageOutcome:
    """Per question of the paper: top-k candidates of this paper, reranked, top-n kept; all scores recorded.

    With ``retrieval.translate_with`` the questions in another language than the paper's are first
    translated by that registry model through ``generation_cache`` and ``model_pool`` (the process's
    model pool, as generation uses it)."""
    questions = questions_for_paper(paper_id)
    translations = None
    with store.writing(RETRIEVALS.name, paper_id) as out:
        out.input_ref(INDEX.name, paper_id)  # the indexed chunks these retrievals were drawn from
        index = PaperIndex(chroma_client, embedder, collection_prefix=chroma.collection_prefix)
        # bm25 / hybrid: the BM25 index is rebuilt from the stored chunks (no state of its own)
        needs_chunks = retrieval.strategy != "dense" or retrieval.uses_translation
        chunks = out.read_frame(CHUNKS.name, paper_id) if needs_chunks else None
        translation_signature = None
        if retrieval.uses_translation:
            from rag_pipeline.generate.registry import ModelRegistryError
            from rag_pipeline.index.translate import translate_questions, translation_spec

            if generation_cache is None:
                raise StageError(f"paper {paper_id!r}: query translation needs the generation cache")
            try:
                spec = translation_spec(retrieval)
            except ModelRegistryError as exc:
                raise StageError(f"paper {paper_id!r}: retrieval translate_with: {exc}") from None
            translations = translate_questions(
                questions, chunks, retrieval, cache=generation_cache, pool=model_pool, state=paths, spec=spec
            )
            translation_signature = translations.signature(retrieval, spec)
        frame = retrieve_many(index, reranker, paper_id, questions, top_k=retrieval.top_k, top_n=retrieval.top_n,
                              retrieval=retrieval, chunks=chunks,
                              translations=translations.queries if translations else None,
                              translation_signature=translation_signature)
        out.write_frame(frame)
    kept = frame[frame["kept"]] if not frame.empty else frame
    metadata = {
        "questions": len(questions),
        "candidates": len(frame),
        "kept": len(kept),
        "top_k": retrieval.top_k,
        "top_n": retrieval.top_n,
        "strategy": retrieval.strategy if retrieval.strategy != "hybrid"
        else f"hybrid ({retrieval.fusion}, k={retrieval.rrf_k}, dense {retrieval.dense_weight} / lexical {retrieval.lexical_weight})",
        "reranker": "none" if reranker_config.kind == "none" else f"{reranker_config.kind}:{reranker_config.model}",
        "preview": frame_preview(kept, ["question_id", "final_rank", "chunk_id", "vector_score", "lexical_score",
                                        "fusion_score", "rerank_score", "text"]),
        **artifact_metadata(out),
    }
    warnings = []
    if translations is not None:
        metadata.update({
            "translation": f"{retrieval.translate_with} for {retrieval.translate_for}",
            "paper_language": translations.paper_language,
            "translated": len(translations.queries),
            "translation_cache_hits": translations.cache_hits,
            "translation_seconds": round(translations.seconds, 2),
        })
        warnings = [f"paper {paper_id!r} question {qid}: not translated: {why}" for qid, why in translations.errors.items()]
    return StageOutcome(metadata=metadata, version=frame_version(frame, RETRIEVALS.version_columns), warnings=warnings)


def score_retrieval(store: ArtifactStore, paper_id: str) -> StageOutcome:
    """hit@k, MRR, nDCG@k against gold evidence; accuracy from the notebook's manual marks where present."""
    with store.writing(RETRIEVAL_METRICS.name, paper_id) as out:
        frame = retrieval_metrics(
            out.read_frame(RETRIEVALS.name, paper_id), out.read_frame(CHUNKS.name, paper_id), questions_for_paper(paper_id)
        )
        out.write_frame(frame)
    metadata: dict = {"questions": len(frame), **artifact_metadata(out)}
    for column in ("hit@1", "hit@2", "hit@10", "mrr", "ndcg@10"):
        if column in frame.columns and frame[column].notna().any():
            metadata[column] = round(float(frame[column].dropna().mean()), 4)
    return StageOutcome(metadata=metadata, version=frame_version(frame, list(frame.columns)))
