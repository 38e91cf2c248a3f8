"""What a stage returns: figures for the UI and the content hash of what it stored.

Values are plain Python or one of the small wrappers below; the Dagster layer turns them into
its metadata types (``rag_pipeline.defs.metadata``) and the CLI can print them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rag_pipeline.hashing import content_hash


class StageError(RuntimeError):
    """A partition cannot be produced; the message names the paper / model and what is missing."""


@dataclass(frozen=True)
class Markdown:
    text: str


@dataclass(frozen=True)
class Json:
    value: Any


@dataclass(frozen=True)
class FilePath:
    path: str


@dataclass(frozen=True)
class Url:
    url: str


@dataclass
class StageOutcome:
    """One partition's result: UI metadata, the data version (a content hash) and warnings to log."""

    metadata: dict[str, Any]
    version: str
    warnings: list[str] = field(default_factory=list)


def frame_preview(frame: pd.DataFrame, columns: list[str], rows: int = 5, width: int = 80) -> Markdown:
    """A short markdown table for the UI; long cells are cut."""
    shown = frame[[c for c in columns if c in frame.columns]].head(rows).copy()
    for column in shown.columns:
        shown[column] = shown[column].map(lambda v: (str(v)[:width] + "…") if len(str(v)) > width else v)
    return Markdown(shown.to_markdown(index=False) if not shown.empty else "_empty_")


def frame_version(frame: pd.DataFrame, columns) -> str:
    """Data version of a table: the hash of the columns that matter downstream."""
    present = [c for c in columns if c in frame.columns]
    return content_hash(frame[present].astype(str).values.tolist())


def artifact_metadata(draft) -> dict:
    """The stored version a stage wrote and the stored input versions it read, for the UI: the
    same trail `rag-pipeline explain` walks (``defs/versions.py`` finds a version by this key)."""
    return {
        "artifact_version": draft.version,
        "artifact_inputs": Json({label: ref.version for label, ref in sorted(draft.inputs.items())}),
    }
