"""Split a paper's cleaned markdown into overlapping chunks with exact character offsets.

The splitting follows langchain's ``MarkdownTextSplitter`` (the reference notebook used it with
800/100): cut preferably before headings, then at paragraph breaks, line breaks, sentence ends,
spaces, and only as a last resort inside a word; pack the pieces greedily into chunks of at most
``chunk_size`` characters. Unlike langchain it keeps offsets (``text[start:end] == chunk.text``,
which lets a score be traced to the exact passage), and its overlap is measured in characters
(snapped to a word start) instead of whole pieces, so neighbours overlap even when pieces are long.
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import asdict, dataclass

import pandas as pd

from rag_pipeline.contracts import CHUNK_COLUMNS
from rag_pipeline.ids import validate_slug

HEADING_LINE = re.compile(r"^#{1,6}[ \t]+(.*?)[ \t#]*$", re.MULTILINE)
# Split levels, coarse to fine. Each pattern's match *end* is where a new piece may begin.
SPLIT_LEVELS: tuple[re.Pattern, ...] = (
    re.compile(r"^(?=#{1,6}[ \t])", re.MULTILINE),  # before a markdown heading
    re.compile(
        r"^(?=```|(?:\*\*\*+|---+|___+)[ \t]*$)", re.MULTILINE
    ),  # code fence, thematic break
    re.compile(r"\n[ \t]*\n\s*"),  # paragraph break
    re.compile(r"\n"),  # line break
    re.compile(r"[.!?…;][\"'”’»)\]]*[ \t]+"),  # sentence end
    re.compile(r"[ \t]+"),  # word boundary
)


@dataclass(frozen=True)
class Chunk:
    """One chunk of a paper's cleaned text; ``text == paper_text[start:end]``."""

    chunk_id: str
    paper_id: str
    index: int
    text: str
    section: str
    start: int
    end: int


def _split_points(text: str, start: int, end: int, pattern: re.Pattern) -> list[int]:
    return sorted({m.end() for m in pattern.finditer(text, start, end) if start < m.end() < end})


def _pieces(text: str, start: int, end: int, level: int, chunk_size: int) -> list[tuple[int, int]]:
    """Contiguous spans covering [start, end), each at most chunk_size long, cut at the coarsest
    level possible."""
    if end - start <= chunk_size:
        return [(start, end)]
    for current in range(level, len(SPLIT_LEVELS)):
        points = _split_points(text, start, end, SPLIT_LEVELS[current])
        if points:
            break
    else:  # one unbroken token longer than a chunk (a URL, a long formula): cut it
        return [(s, min(s + chunk_size, end)) for s in range(start, end, chunk_size)]
    bounds = [start, *points, end]
    spans: list[tuple[int, int]] = []
    for a, b in itertools.pairwise(bounds):
        if b - a <= chunk_size:
            spans.append((a, b))
        else:
            spans.extend(_pieces(text, a, b, current + 1, chunk_size))
    return spans


SENTENCE_START = re.compile(r"(?:[.!?…;][\"'”’»)\]]*[ \t]+|\n\s*)(?=\S)")


def _overlap_start(text: str, low: int, end: int, heading_starts: list[int]) -> int:
    """Where the next chunk starts inside the overlap window [low, end): at the last heading there,
    else at the earliest sentence start, else at the earliest word start (never mid-word)."""
    first_heading = bisect.bisect_left(heading_starts, low)
    if first_heading < len(heading_starts) and heading_starts[first_heading] < end:
        # The chunk then opens with its heading and is labelled with its own section.
        last = bisect.bisect_left(heading_starts, end) - 1
        return heading_starts[last]
    for match in SENTENCE_START.finditer(text, max(0, low - 8), end):
        if low <= match.end() < end:
            return match.end()
    for position in range(low, end):
        if not text[position].isspace() and (position == 0 or text[position - 1].isspace()):
            return position
    return end


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def chunk_text(
    paper_id: str, text: str, chunk_size: int = 800, chunk_overlap: int = 100
) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``chunk_size`` characters, neighbours overlapping by up
    to ``chunk_overlap`` characters (snapped to a word start; none where a new section begins).

    ``chunk.section`` is the nearest markdown heading at or before the chunk's start ("" if none);
    ``chunk_id`` is ``f"{paper_id}:{index}"``. Deterministic. Raises ValueError unless
    ``chunk_size > chunk_overlap >= 0`` and ``paper_id`` is a slug (TypeError for non-integers).
    """
    validate_slug(paper_id, "paper id")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (chunk_size, chunk_overlap)):
        raise TypeError(
            f"chunk_size and chunk_overlap must be integers, got {chunk_size!r}, {chunk_overlap!r}"
        )
    if not chunk_size > chunk_overlap >= 0:
        raise ValueError(
            "need chunk_size > chunk_overlap >= 0, "
            f"got chunk_size={chunk_size}, chunk_overlap={chunk_overlap}"
        )
    if not text.strip():
        return []

    headings = [(m.start(), m.group(1).strip()) for m in HEADING_LINE.finditer(text)]
    heading_starts = [position for position, _ in headings]
    pieces = _pieces(text, 0, len(text), 0, chunk_size)

    spans: list[tuple[int, int]] = []
    chunk_start, i = 0, 0
    while i < len(pieces):
        chunk_end = chunk_start
        while i < len(pieces) and pieces[i][1] - chunk_start <= chunk_size:
            chunk_end = pieces[i][1]
            i += 1
        spans.append((chunk_start, chunk_end))
        if i == len(pieces):
            break
        next_start, next_end = pieces[i]
        budget = min(chunk_overlap, chunk_size - (next_end - next_start))
        if HEADING_LINE.match(text, _strip_span(text, next_start, next_end)[0]):
            budget = (
                0  # a new section begins: the previous section's tail would only blur the chunk
            )
        # Never back up to (or before) this chunk's own first character: chunks must advance.
        low = max(chunk_end - budget, _strip_span(text, chunk_start, chunk_end)[0] + 1)
        chunk_start = (
            _overlap_start(text, low, chunk_end, heading_starts) if budget > 0 else chunk_end
        )

    chunks: list[Chunk] = []
    for start, end in spans:
        start, end = _strip_span(text, start, end)
        if start == end:
            continue
        nearest = bisect.bisect_right(heading_starts, start) - 1
        section = headings[nearest][1] if nearest >= 0 else ""
        index = len(chunks)
        chunks.append(
            Chunk(f"{paper_id}:{index}", paper_id, index, text[start:end], section, start, end)
        )
    return chunks


def chunks_to_frame(chunks: list[Chunk]) -> pd.DataFrame:
    """Chunk rows with the columns of docs/ARCHITECTURE.md (an empty frame keeps the columns)."""
    frame = pd.DataFrame([asdict(chunk) for chunk in chunks], columns=list(CHUNK_COLUMNS))
    for column in ("index", "start", "end"):
        frame[column] = frame[column].astype("int64")
    for column in ("chunk_id", "paper_id", "text", "section"):
        frame[column] = frame[column].astype(object)
    return frame


def offset_problems(paper_id: str, text: str, chunks: pd.DataFrame) -> list[str]:
    """What is wrong with a paper's stored chunks against its cleaned ``text`` ([] when nothing).

    The invariants ``chunk_text`` guarantees, each broken one a sentence naming the chunk: ids are
    ``{paper}:{i}`` with ``index == i`` in row order; ``0 <= start < end <= len(text)``;
    ``text[start:end]`` is the chunk's text; and both ``start`` and ``end`` strictly increase from
    one chunk to the next (neighbours may overlap, but a chunk never starts or ends at or before
    its predecessor does).
    """
    problems: list[str] = []
    previous: tuple[int, int] | None = None
    for position, row in enumerate(chunks.itertuples(index=False)):
        chunk_id, start, end = str(row.chunk_id), int(row.start), int(row.end)
        expected_id = f"{paper_id}:{position}"
        if chunk_id != expected_id or int(row.index) != position:
            problems.append(f"{chunk_id} (index {row.index}) at row {position}: expected id {expected_id!r}")
        if not 0 <= start < end <= len(text):
            problems.append(f"{chunk_id}: offsets [{start}, {end}) are not a non-empty span of the {len(text)}-character text")
        elif text[start:end] != row.text:
            problems.append(f"{chunk_id}: text[{start}:{end}] is not the chunk's text")
        if previous is not None and not (start > previous[0] and end > previous[1]):
            problems.append(f"{chunk_id}: offsets [{start}, {end}) do not advance past the previous chunk's {list(previous)}")
        previous = (start, end)
    return problems
