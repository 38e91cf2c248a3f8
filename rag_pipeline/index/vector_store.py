"""Chunks in Chroma: one collection per embedder, one paper = the chunks whose ``paper_id`` matches.

Chroma never embeds anything here: collections are created with ``embedding_function=None``
(otherwise Chroma would download its default ONNX model) and every add / query passes vectors
computed by our embedder. Distances are cosine (``hnsw.space = cosine``); a candidate's score is
the cosine similarity ``1 - distance``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from rag_pipeline.config import ChromaConfig, ChromaMode, ConfigError
from rag_pipeline.hashing import content_hash
from rag_pipeline.ids import validate_slug
from rag_pipeline.index.embedders import Embedder
from rag_pipeline.settings import state_paths

CHROMA_MODES = get_args(ChromaMode)  # ("persistent", "http", "ephemeral")
COLLECTION_NAME_MAX = 63
# Asking Chroma for a few more neighbours than needed makes the cut at k deterministic when
# scores tie at the boundary (HNSW returns tied neighbours in arbitrary order).
TIE_MARGIN = 5
EMBED_BATCH = 64
READ_PAGE = 5000  # records per get() when reading a whole collection


class EmbedderMismatchError(ValueError):
    """A collection built with one embedder opened with another (their vectors are not comparable)."""


class PaperNotIndexedError(LookupError):
    """A query for a paper that has no chunks in the collection."""


def make_chroma_client(config: ChromaConfig | dict | None = None):
    """A Chroma client for ``config`` (telemetry off): PersistentClient, HttpClient or EphemeralClient."""
    # chromadb is imported on use (here and in PaperIndex): its import alone takes about a second.
    import chromadb
    from chromadb.config import Settings

    config = config if isinstance(config, ChromaConfig) else ChromaConfig.from_dict(config)
    settings = Settings(anonymized_telemetry=False)
    if config.mode == "persistent":
        path = config.path or str(state_paths().chroma)
        return chromadb.PersistentClient(path=str(path), settings=settings)
    if config.mode == "http":
        return chromadb.HttpClient(
            host=config.host, port=config.port, ssl=config.ssl, headers=dict(config.headers) or None,
            settings=Settings(anonymized_telemetry=False, **http_settings(config)),
            tenant=config.tenant, database=config.database,
        )
    return chromadb.EphemeralClient(settings=settings)


def http_settings(config: ChromaConfig) -> dict[str, Any]:
    """chromadb Settings for a server: the CA bundle to verify TLS with, and token auth with the
    token read from the environment variable ``config.token_env`` (never from a file)."""
    settings: dict[str, Any] = {}
    if config.ssl_ca_file:
        settings["chroma_server_ssl_verify"] = config.ssl_ca_file
    if config.token_env:
        token = os.environ.get(config.token_env)
        if not token:
            raise ChromaTokenMissingError(
                f"chroma.token_env names the environment variable {config.token_env}, which is not set (or empty): "
                f"export {config.token_env}=<the Chroma server's token>"
            )
        settings.update(
            chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
            chroma_client_auth_credentials=token,
            chroma_auth_token_transport_header=config.token_header,
        )
    return settings


class ChromaTokenMissingError(ConfigError):
    """``chroma.token_env`` names an environment variable that is not set."""


def collection_name(prefix: str, embedder_name: str) -> str:
    """A valid Chroma collection name from a prefix and an embedder name (3..63 chars, [A-Za-z0-9._-])."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{prefix}-{embedder_name}")
    name = re.sub(r"\.{2,}", ".", name).strip("._-")
    if len(name) > COLLECTION_NAME_MAX:
        name = f"{name[: COLLECTION_NAME_MAX - 9].rstrip('._-')}-{content_hash(name, 8)}"
    return name if len(name) >= 3 else f"{name}-idx"


@dataclass
class Candidate:
    """One retrieved chunk: cosine ``score`` to the question and its 1-based ``rank``."""

    chunk_id: str
    text: str
    section: str
    score: float
    rank: int


def _chunk_records(paper_id: str, chunks: pd.DataFrame) -> list[dict[str, Any]]:
    """Validate a chunks frame for ``paper_id`` into (id, text, metadata) records."""
    if not isinstance(chunks, pd.DataFrame):
        raise TypeError(
            f"paper {paper_id!r}: chunks must be a pandas DataFrame, got {type(chunks).__name__}"
        )
    missing = [c for c in ("chunk_id", "text") if c not in chunks.columns]
    if missing:
        raise ValueError(f"paper {paper_id!r}: chunks frame lacks column(s) {missing}")
    if chunks.empty:
        raise ValueError(f"paper {paper_id!r}: no chunks to index (the chunks frame is empty)")
    if "paper_id" in chunks.columns:
        others = sorted({str(p) for p in chunks["paper_id"]} - {paper_id})
        if others:
            raise ValueError(
                f"paper {paper_id!r}: chunks frame holds rows of other paper(s) {others}"
            )
    duplicated = chunks["chunk_id"][chunks["chunk_id"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"paper {paper_id!r}: duplicate chunk ids {duplicated[:5]}")
    records = []
    for position, row in enumerate(chunks.to_dict("records")):
        chunk_id, text = row["chunk_id"], row["text"]
        if not isinstance(chunk_id, str) or not chunk_id.startswith(f"{paper_id}:"):
            raise ValueError(
                f"paper {paper_id!r}: chunk id {chunk_id!r} does not start with '{paper_id}:'"
            )
        if not isinstance(text, str):
            raise TypeError(f"paper {paper_id!r}: chunk {chunk_id!r} has no text ({text!r})")
        index = row.get("index")
        metadata = {
            "paper_id": paper_id,
            "chunk_index": int(index) if _is_number(index) else position,
            "section": str(row["section"]) if isinstance(row.get("section"), str) else "",
            "text_hash": content_hash(text),
        }
        for offset in ("start", "end"):
            if _is_number(row.get(offset)):
                metadata[offset] = int(row[offset])
        records.append({"id": chunk_id, "text": text, "metadata": metadata})
    return records


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and np.isfinite(value)
    )


class PaperIndex:
    """The chunks of many papers in one Chroma collection per embedder, filtered by ``paper_id``.

    The collection's metadata records the embedder's identity hash; opening it with a different
    embedder raises EmbedderMismatchError instead of mixing incomparable vectors.
    """

    def __init__(self, client, embedder: Embedder, collection_prefix: str = "chunks"):
        self.client = client
        self.embedder = embedder
        self.collection_name = collection_name(collection_prefix, embedder.name)
        self.last_upsert: dict[str, Any] = {}
        self._collection = self._open_collection()

    def _open_collection(self):
        from chromadb.errors import NotFoundError

        identity = self.embedder.identity_hash()
        try:
            collection = self.client.get_collection(self.collection_name, embedding_function=None)
        except (NotFoundError, ValueError):
            metadata = {
                "embedder_name": self.embedder.name,
                "embedder_identity": identity,
                "embedder_signature": json.dumps(
                    self.embedder.signature(), sort_keys=True, ensure_ascii=False
                ),
            }
            # get_or_create: another process may have created it between our get and create
            collection = self.client.get_or_create_collection(
                self.collection_name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata=metadata,
            )
        stored = (collection.metadata or {}).get("embedder_identity")
        if stored != identity:
            recorded = (collection.metadata or {}).get("embedder_signature", "nothing")
            raise EmbedderMismatchError(
                f"Chroma collection {self.collection_name!r} was built with embedder {recorded} "
                f"(identity {stored}), not with {self.embedder.name!r} (identity {identity}): their vectors "
                "are not comparable. Use another collection_prefix, or delete the collection and re-index."
            )
        return collection

    def upsert_paper(self, paper_id: str, chunks: pd.DataFrame, progress: bool = True) -> int:
        """Make the paper's chunks in the collection exactly ``chunks``; return the paper's count.

        Idempotent: chunks with unchanged text are not re-embedded (only their metadata is updated
        if it changed), new or changed ones are embedded and upserted, and stored chunks absent from
        ``chunks`` are deleted. ``last_upsert`` records the counts.
        All embedding happens before the collection is touched, so a failure leaves the old index.
        """
        validate_slug(paper_id, "paper id")
        records = _chunk_records(paper_id, chunks)
        stored = self._collection.get(where={"paper_id": paper_id}, include=["metadatas"])
        stored_metadata = dict(zip(stored["ids"], stored["metadatas"] or []))
        # A vector depends only on the text: same text with new offsets/section = metadata update.
        to_embed = [
            r
            for r in records
            if (stored_metadata.get(r["id"]) or {}).get("text_hash") != r["metadata"]["text_hash"]
        ]
        embed_ids = {r["id"] for r in to_embed}
        to_update = [
            r
            for r in records
            if r["id"] not in embed_ids and stored_metadata[r["id"]] != r["metadata"]
        ]

        vectors = []
        batches = range(0, len(to_embed), EMBED_BATCH)
        for start in tqdm(
            batches,
            desc=f"embed {paper_id}",
            unit="batch",
            disable=not progress or len(batches) < 2,
            leave=False,
        ):
            vectors.append(
                self.embedder.embed_documents(
                    [r["text"] for r in to_embed[start : start + EMBED_BATCH]]
                )
            )
        embeddings = (
            np.concatenate(vectors) if vectors else np.zeros((0, self.embedder.dim), np.float32)
        )

        write_batch = max(1, min(1000, int(self.client.get_max_batch_size())))
        for start in range(0, len(to_embed), write_batch):
            batch = to_embed[start : start + write_batch]
            self._collection.upsert(
                ids=[r["id"] for r in batch],
                embeddings=embeddings[start : start + write_batch],
                documents=[r["text"] for r in batch],
                metadatas=[r["metadata"] for r in batch],
            )
        for start in range(0, len(to_update), write_batch):
            batch = to_update[start : start + write_batch]
            self._collection.update(
                ids=[r["id"] for r in batch], metadatas=[r["metadata"] for r in batch]
            )
        stale = sorted(set(stored_metadata) - {r["id"] for r in records})
        for start in range(0, len(stale), write_batch):
            self._collection.delete(ids=stale[start : start + write_batch])
        self.last_upsert = {
            "paper_id": paper_id,
            "chunks": len(records),
            "embedded": len(to_embed),
            "metadata_updated": len(to_update),
            "unchanged": len(records) - len(to_embed) - len(to_update),
            "deleted": len(stale),
        }
        return self.count(paper_id)

    def delete_paper(self, paper_id: str) -> int:
        """Remove every chunk of ``paper_id``; return how many were removed."""
        count = self.count(paper_id)
        if count:
            self._collection.delete(where={"paper_id": paper_id})
        return count

    def count(self, paper_id: str | None = None) -> int:
        """Number of chunks of one paper, or of the whole collection."""
        if paper_id is None:
            return int(self._collection.count())
        return len(self._collection.get(where={"paper_id": paper_id}, include=[])["ids"])

    def paper_ids(self) -> list[str]:
        """The papers that have chunks in the collection."""
        papers: set[str] = set()
        # Page by page: one get() of every record fails from about 33,000 chunks on (embedded
        # Chroma's SQLite: "too many SQL variables"; docs/scale.md).
        for offset in range(0, self.count(), READ_PAGE):
            metadatas = self._collection.get(include=["metadatas"], limit=READ_PAGE, offset=offset)["metadatas"] or []
            papers.update(m["paper_id"] for m in metadatas)
        return sorted(papers)

    def query(self, paper_id: str, question: str, k: int) -> list[Candidate]:
        """The ``k`` chunks of ``paper_id`` most similar to ``question`` (cosine), best first.

        Ties are broken by chunk position in the paper. Raises PaperNotIndexedError when the paper
        has no chunks in this collection.
        """
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"paper {paper_id!r}: empty question")
        vector = self.embedder.embed_queries([question])
        result = self._collection.query(
            query_embeddings=vector,
            n_results=k + TIE_MARGIN,
            where={"paper_id": paper_id},
            include=["documents", "metadatas", "distances"],
        )
        ids = result["ids"][0]
        if not ids:
            raise PaperNotIndexedError(
                f"paper {paper_id!r} has no chunks in Chroma collection {self.collection_name!r}: "
                "index it first (the paper_index asset, or PaperIndex.upsert_paper)"
            )
        found = [
            (
                1.0 - float(distance),
                int(metadata.get("chunk_index", 0)),
                chunk_id,
                text,
                str(metadata.get("section", "")),
            )
            for chunk_id, text, metadata, distance in zip(
                ids, result["documents"][0], result["metadatas"][0], result["distances"][0]
            )
        ]
        found.sort(key=lambda item: (-item[0], item[1], item[2]))
        return [
            Candidate(chunk_id=chunk_id, text=text, section=section, score=score, rank=rank)
            for rank, (score, _, chunk_id, text, section) in enumerate(found[:k], start=1)
        ]

    def drop(self) -> None:
        """Delete the whole collection (every paper indexed with this embedder)."""
        self.client.delete_collection(self.collection_name)
