"""What the blocking checks verify, without Dagster: chunk offsets and questions without context."""

import random

import pandas as pd
import pytest

from rag_pipeline.contracts import RETRIEVAL_COLUMNS
from rag_pipeline.index.retrieve import questions_without_kept_chunk
from rag_pipeline.ingest.chunking import chunk_text, chunks_to_frame, offset_problems
from rag_pipeline_tests.ingest.test_chunking import random_markdown

TEXT = "# Intro\n\n" + " ".join(f"Sentence number {i} talks about sparse attention." for i in range(60))


def frame():
    return chunks_to_frame(chunk_text("p", TEXT, chunk_size=200, chunk_overlap=40))


def test_chunks_from_the_chunker_have_no_problems():
    assert len(frame()) > 5
    assert offset_problems("p", TEXT, frame()) == []
    rng = random.Random(7)
    for _ in range(50):
        text = random_markdown(rng)
        assert offset_problems("p", text, chunks_to_frame(chunk_text("p", text, 120, 30))) == []


def test_a_shifted_offset_is_found():
    chunks = frame()
    chunks.loc[2, ["start", "end"]] += 1
    problems = offset_problems("p", TEXT, chunks)
    start, end = chunks.loc[2, ["start", "end"]]
    assert problems == [f"p:2: text[{start}:{end}] is not the chunk's text"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda f: f.loc.__setitem__((1, "end"), f.loc[1, "start"]), "p:1: offsets [{s}, {s}) are not a non-empty span"),
        (lambda f: f.loc.__setitem__((1, "end"), len(TEXT) + 5), "are not a non-empty span of the"),
        (lambda f: f.loc.__setitem__((1, "start"), -1), "p:1: offsets [-1,"),
    ],
    ids=["empty", "past-the-end", "negative"],
)
def test_offsets_outside_the_text_or_empty_are_found(edit, expected):
    chunks = frame()
    start = int(chunks.loc[1, "start"])
    edit(chunks)
    problems = offset_problems("p", TEXT, chunks)
    assert any(expected.format(s=start) in problem for problem in problems), problems


def test_chunks_that_do_not_advance_are_found():
    chunks = frame()
    swapped = pd.concat([chunks.iloc[[0, 2, 1]], chunks.iloc[3:]], ignore_index=True)
    swapped["index"] = range(len(swapped))
    swapped["chunk_id"] = [f"p:{i}" for i in range(len(swapped))]
    # Texts still match their own offsets; only the order is wrong.
    problems = offset_problems("p", TEXT, swapped)
    assert len(problems) == 1 and problems[0].startswith("p:2: offsets") and "do not advance" in problems[0]


def test_ids_out_of_order_or_of_another_paper_are_found():
    chunks = frame()
    chunks.loc[3, "chunk_id"] = "p:1"
    assert offset_problems("p", TEXT, chunks) == ["p:1 (index 3) at row 3: expected id 'p:3'"]
    assert offset_problems("q", TEXT, frame())[0] == "p:0 (index 0) at row 0: expected id 'q:0'"


def _retrievals(rows):
    return pd.DataFrame([{**dict.fromkeys(RETRIEVAL_COLUMNS), **row} for row in rows], columns=list(RETRIEVAL_COLUMNS))


def test_questions_without_a_kept_chunk_are_listed_in_question_order():
    frame = _retrievals([
        {"question_id": "q1", "kept": True, "text": "context"},
        {"question_id": "q2", "kept": False, "text": "candidate, not kept"},
        {"question_id": "q3", "kept": True, "text": "   "},
    ])
    assert questions_without_kept_chunk(frame, ["q1", "q2", "q3", "q4"]) == ["q2", "q3", "q4"]
    assert questions_without_kept_chunk(_retrievals([]), ["q1"]) == ["q1"]
    assert questions_without_kept_chunk(frame, []) == []
