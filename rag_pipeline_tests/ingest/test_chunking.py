"""Chunking: exact offsets, size bound, overlap, split preferences, section labels, determinism."""

import itertools
import random

import pandas as pd
import pytest

from rag_pipeline.contracts import CHUNK_COLUMNS
from rag_pipeline.ids import InvalidIdError
from rag_pipeline.ingest.chunking import chunk_text, chunks_to_frame

WORDS = [
    "attention",
    "router",
    "block",
    "sparse",
    "модель",
    "θ",
    "x=1",
    "(see",
    "Fig.",
    "3)",
    "e.g.",
    "rate",
]


def random_markdown(rng: random.Random) -> str:
    """Random paper-like markdown: headings, paragraphs, lines, sentences, tables, long tokens."""
    parts = []
    for _ in range(rng.randint(0, 30)):
        roll = rng.random()
        if roll < 0.12:
            parts.append(
                f"\n\n{'#' * rng.randint(1, 3)} {rng.randint(1, 9)} {rng.choice(WORDS).title()}\n\n"
            )
        elif roll < 0.2:
            parts.append("\n| a | b |\n|---|---|\n| 1 | 2 |\n")
        elif roll < 0.24:
            parts.append("y" * rng.randint(100, 2500))  # one unbroken token
        else:
            sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
            parts.append(sentence + rng.choice([". ", "! ", "\n", "\n\n", " ", ";  "]))
    return "".join(parts)


def check_invariants(text, chunks, size):
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert 0 < len(chunk.text) <= size
        assert chunk.text == chunk.text.strip()
        assert chunk.chunk_id == f"p:{chunk.index}"
    assert [c.index for c in chunks] == list(range(len(chunks)))
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts)), "chunks must advance"
    covered = bytearray(len(text))
    for chunk in chunks:
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    assert all(covered[i] or text[i].isspace() for i in range(len(text))), (
        "text lost between chunks"
    )


def test_random_texts_keep_offsets_size_and_coverage():
    rng = random.Random(1234)
    for _ in range(300):
        text = random_markdown(rng)
        size = rng.randint(10, 1200)
        overlap = rng.randint(0, size - 1)
        chunks = chunk_text("p", text, size, overlap)
        check_invariants(text, chunks, size)


def prose(n_sentences: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return " ".join(
        " ".join(rng.choice(WORDS[:6]) for _ in range(rng.randint(5, 15))).capitalize() + "."
        for _ in range(n_sentences)
    )


def test_neighbours_overlap_by_at_most_the_overlap_and_start_at_a_word():
    text = prose(200)
    chunks = chunk_text("p", text, 800, 100)
    assert len(chunks) > 5
    for previous, current in itertools.pairwise(chunks):
        shared = previous.end - current.start
        assert 0 < shared <= 100
        assert text[current.start - 1].isspace() and not text[current.start].isspace()
    # the overlap prefers a sentence start when one lies in the window
    sentence_starts = sum(text[c.start - 2] == "." for c in chunks[1:])
    assert sentence_starts >= len(chunks[1:]) // 2


def test_zero_overlap_gives_disjoint_chunks():
    chunks = chunk_text("p", prose(120), 300, 0)
    assert all(a.end <= b.start for a, b in itertools.pairwise(chunks))


def test_chunks_fill_up_to_the_size():
    chunks = chunk_text("p", prose(200), 800, 100)
    assert min(len(c.text) for c in chunks[:-1]) > 600  # greedy packing, not one sentence per chunk


def test_splits_at_headings_before_paragraphs():
    first = "## 1 Intro\n\n" + prose(40, 1)[:400].rstrip()
    second = "## 2 Method\n\n" + prose(40, 2)[:400].rstrip()
    assert len(first) + len(second) > 600  # together too long for one chunk
    text = first + "\n\n" + second
    chunks = chunk_text("p", text, 600, 100)
    assert [c.text for c in chunks] == [first, second]  # no overlap across a new section
    assert [c.section for c in chunks] == ["1 Intro", "2 Method"]


def test_prefers_paragraph_breaks_over_sentence_breaks():
    paragraphs = [prose(3, seed) for seed in range(6)]
    assert all(len(p) < 380 for p in paragraphs)
    text = "\n\n".join(paragraphs)
    chunks = chunk_text("p", text, 800, 0)
    for chunk in chunks:
        assert chunk.text in paragraphs or all(
            part in paragraphs for part in chunk.text.split("\n\n")
        )


def test_long_token_is_cut_hard():
    text = "start " + "z" * 2000 + " end"
    chunks = chunk_text("p", text, 500, 50)
    check_invariants(text, chunks, 500)
    assert "".join(c.text for c in chunks if set(c.text) == {"z"}).count("z") >= 1000


def test_section_is_the_nearest_heading_at_or_before_the_start():
    text = (
        "Preface text before any heading.\n\n# Title\n\n## 1 Intro\n\n"
        + prose(60, 3)
        + "\n\n## 2 Next\n\n"
        + prose(5, 4)
    )
    chunks = chunk_text("p", text, 400, 80)
    assert chunks[0].section == ""
    headings = [
        (text.index("# Title"), "Title"),
        (text.index("## 1 Intro"), "1 Intro"),
        (text.index("## 2 Next"), "2 Next"),
    ]
    for chunk in chunks:
        expected = ""
        for position, title in headings:
            if position <= chunk.start:
                expected = title
        assert chunk.section == expected
    assert {c.section for c in chunks} >= {"1 Intro", "2 Next"}


def test_deterministic():
    text = random_markdown(random.Random(7))
    assert chunk_text("p", text, 300, 60) == chunk_text("p", text, 300, 60)


def test_empty_and_whitespace_text_give_no_chunks():
    assert chunk_text("p", "") == [] and chunk_text("p", " \n\n\t ") == []


@pytest.mark.parametrize("size, overlap", [(100, 100), (100, 150), (100, -1), (0, 0)])
def test_invalid_sizes_raise_a_clear_error(size, overlap):
    with pytest.raises(ValueError, match="chunk_size > chunk_overlap >= 0"):
        chunk_text("p", "text", size, overlap)


def test_invalid_paper_id_is_rejected():
    with pytest.raises(InvalidIdError, match="paper id"):
        chunk_text("Bad/Id", "text")


def test_frame_has_the_architecture_columns():
    chunks = chunk_text("p", prose(50), 300, 50)
    frame = chunks_to_frame(chunks)
    assert (
        list(frame.columns)
        == list(CHUNK_COLUMNS)
        == ["chunk_id", "paper_id", "index", "text", "section", "start", "end"]
    )
    assert frame["chunk_id"].tolist() == [f"p:{i}" for i in range(len(chunks))]
    assert str(frame["start"].dtype) == "int64" and not frame.isna().any().any()
    empty = chunks_to_frame([])
    assert list(empty.columns) == list(CHUNK_COLUMNS) and len(empty) == 0


def test_frame_round_trips_through_parquet(tmp_path):
    frame = chunks_to_frame(chunk_text("p", prose(30), 200, 40))
    frame.to_parquet(tmp_path / "c.parquet", index=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "c.parquet"), frame, check_dtype=False)


@pytest.mark.parametrize("size, overlap", [(800.0, 100), (800, "100"), (True, 0)])
def test_non_integer_sizes_are_a_type_error(size, overlap):
    with pytest.raises(TypeError, match="must be integers"):
        chunk_text("p", "text", size, overlap)
