"""The renderer: deterministic bytes, paper structure visible to pymupdf4llm, clear errors."""

from __future__ import annotations

import copy

import pymupdf
import pymupdf4llm
import pytest

from rag_pipeline.demo_corpus.render import DemoSourceError, render_paper, render_text_pdf
from rag_pipeline.hashing import sha256_file

from .conftest import normalise

PARAGRAPH = (
    "The block router selects a few key blocks for every query block, and the attention inside "
    "each selected block stays dense, which keeps the computation friendly to matrix hardware. "
)


def small_source(**overrides) -> dict:
    source = {
        "id": "demo-test-paper",
        "title": "A Small Test Paper about Block Routing",
        "authors": ["Ada Example", "Bo Sample"],
        "affiliation": "Test Lab",
        "abstract": "We test the renderer on a compact but complete paper. " * 6,
        "sections": [
            {
                "heading": "Introduction",
                "paragraphs": [PARAGRAPH * 3, PARAGRAPH * 2],
                "formula": {"text": "s(i, j) = mean(Q_i) . mean(K_j) / sqrt(d_k)", "number": 1},
            },
            {
                "heading": "Results",
                "paragraphs": [PARAGRAPH * 4] * 3,
                "table": {
                    "caption": "Table 1: Perplexity and speed.",
                    "header": ["Method", "PPL", "Speed"],
                    "rows": [["Dense", "14.21", "1.00x"], ["Routed", "14.29", "2.84x"]],
                },
            },
            {
                "heading": "Conclusion",
                "paragraphs": ["Routing works well enough for long contexts."],
            },
        ],
        "references": [
            "A. Author. A first paper. In Proceedings, 2020.",
            "B. Author. A second one, 2021.",
        ],
    }
    source.update(overrides)
    return source


@pytest.mark.parametrize("columns", [1, 2])
def test_rendering_twice_gives_identical_bytes(tmp_path, columns):
    first = render_paper(small_source(), tmp_path / "a.pdf", columns=columns)
    second = render_paper(small_source(), tmp_path / "b.pdf", columns=columns)
    assert sha256_file(first) == sha256_file(second)


def test_different_content_gives_different_bytes(tmp_path):
    changed = small_source(title="Another Title Entirely")
    assert sha256_file(render_paper(small_source(), tmp_path / "a.pdf")) != sha256_file(
        render_paper(changed, tmp_path / "b.pdf")
    )


@pytest.mark.parametrize("columns", [1, 2])
def test_structure_comes_out_of_pymupdf4llm_as_markdown(tmp_path, columns):
    pdf = render_paper(small_source(), tmp_path / "paper.pdf", columns=columns)
    markdown = pymupdf4llm.to_markdown(str(pdf), show_progress=False)
    headings = [
        normalise(line.lstrip("#")) for line in markdown.splitlines() if line.startswith("#")
    ]
    assert headings == [
        "a small test paper about block routing",
        "abstract",
        "1 introduction",
        "2 results",
        "3 conclusion",
        "references",
    ]
    flat = normalise(markdown)
    assert normalise("s(i, j) = mean(Q_i) . mean(K_j) / sqrt(d_k)") in flat
    assert "|routed|14.29|2.84x|" in flat.replace(" ", "")  # the table becomes a markdown table
    assert "[2] b. author. a second one, 2021." in flat


def test_pdf_metadata_is_fixed_and_has_no_dates_from_now(tmp_path):
    with pymupdf.open(render_paper(small_source(), tmp_path / "paper.pdf")) as doc:
        metadata = doc.metadata
    assert metadata["title"] == "A Small Test Paper about Block Routing"
    assert metadata["author"] == "Ada Example, Bo Sample"
    assert metadata["creationDate"].startswith("D:2000")  # reportlab's invariant date


def test_two_columns_puts_body_text_in_both_halves(tmp_path):
    source = small_source(sections=[{"heading": "Body", "paragraphs": [PARAGRAPH * 6] * 8}])
    with pymupdf.open(render_paper(source, tmp_path / "two.pdf", columns=2)) as doc:
        middle = doc[1].rect.width / 2
        blocks = [b for b in doc[1].get_text("blocks") if b[4].strip()]
    assert any(b[2] < middle for b in blocks) and any(b[0] > middle for b in blocks)
    assert not any(b[0] < middle - 20 and b[2] > middle + 20 for b in blocks)


def test_render_text_pdf_makes_a_readable_pdf(tmp_path):
    out = render_text_pdf(
        ["First paragraph about retrieval.", "Second paragraph & <tags>."], tmp_path / "t.pdf"
    )
    with pymupdf.open(out) as doc:
        text = doc[0].get_text()
    assert "First paragraph about retrieval." in text
    assert "Second paragraph & <tags>." in text  # markup characters are escaped, not interpreted
    assert sha256_file(out) == sha256_file(
        render_text_pdf(
            ["First paragraph about retrieval.", "Second paragraph & <tags>."], tmp_path / "u.pdf"
        )
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("abstract"), "'demo-test-paper': source is missing 'abstract'"),
        (lambda s: s["sections"][1]["table"]["rows"].append(["only one cell"]), "section 2: table"),
        (
            lambda s: s["sections"][2].update(paragraphs=[]),
            "section 3 ('Conclusion'): needs 'paragraphs'",
        ),
        (lambda s: s.update(title="Attention with \u03b1 and \u03b2"), "character '\u03b1'"),
    ],
)
def test_bad_source_raises_an_error_naming_paper_and_part(tmp_path, change, message):
    source = copy.deepcopy(small_source())
    change(source)
    out = tmp_path / "bad.pdf"
    with pytest.raises(DemoSourceError, match="demo-test-paper") as error:
        render_paper(source, out)
    assert message in str(error.value)
    assert not out.exists()  # nothing half-written


def test_bad_column_count_and_empty_or_cyrillic_text_are_rejected(tmp_path):
    with pytest.raises(DemoSourceError, match="columns must be 1 or 2"):
        render_paper(small_source(), tmp_path / "x.pdf", columns=3)
    with pytest.raises(DemoSourceError, match="at least one paragraph"):
        render_text_pdf([], tmp_path / "y.pdf")
    with pytest.raises(DemoSourceError, match="outside cp1252"):
        render_text_pdf(["Текст по-русски"], tmp_path / "z.pdf")
    assert not list(tmp_path.iterdir())


def test_failed_render_keeps_the_previous_file(tmp_path):
    out = render_paper(small_source(), tmp_path / "paper.pdf")
    before = sha256_file(out)
    with pytest.raises(DemoSourceError):
        render_paper(small_source(references=[]), out)
    assert sha256_file(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["paper.pdf"]
