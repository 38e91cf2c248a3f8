"""What ingestion makes of arXiv-like layout features, on PDFs rendered by the demo corpus renderer
and converted by pymupdf4llm: two columns, running headers and page numbers, a figure with text
inside and a caption, a table, first-page footnotes, author-year references, a Discussion-only
ending and an appendix after the references."""

from __future__ import annotations

import re

import pytest

from rag_pipeline.demo_corpus.render import DemoSourceError, render_paper, validate_source
from rag_pipeline.ingest.chunking import chunk_text
from rag_pipeline.ingest.markdown import pdf_to_markdown
from rag_pipeline.ingest.text import process_markdown


def _paragraph(topic: str, n: int) -> str:
    return " ".join(
        f"In the {topic} part, observation {topic}-{i} reports a measured value of {i * 7 + n}.{i} units "
        f"for configuration {i}, which we compare against the baseline of section {n}."
        for i in range(1, 6)
    )


SECTIONS = [
    {"heading": "Introduction", "paragraphs": [_paragraph("introduction", 1) + " The code is public\u00b9.",
                                               _paragraph("motivation", 1)]},
    {
        "heading": "Method",
        "paragraphs": [_paragraph("method", 2), _paragraph("training", 2)],
        "figure": {"labels": ["encoder", "router", "decoder"], "caption": "Figure 1: The router sits between encoder and decoder.", "after": 1},
        "formula": {"text": "s(i, j) = q_i k_j / sqrt(d) + b(i - j)", "number": 1},
    },
    {
        "heading": "Results",
        "paragraphs": [_paragraph("results", 3), _paragraph("ablation", 3)],
        "table": {"caption": "Table 1: Recall at five per method.", "header": ["Method", "R@5"], "rows": [["Dense", "0.66"], ["Hybrid", "0.78"]]},
    },
    {"heading": "Analysis", "paragraphs": [_paragraph("analysis", 4), _paragraph("errors", 4)]},
    {"heading": "Discussion", "paragraphs": ["The discussion closes the body: hybrid retrieval is the safer default for practice.", _paragraph("discussion", 5)]},
]
SOURCE = {
    "id": "demo-layout",
    "title": "A Layout Like arXiv",
    "authors": ["Anna Author", "Boris Writer"],
    "affiliation": "Lab of Layouts. anna@example.org",
    "abstract": "We render a paper with the layout features of real preprints and check what ingestion keeps.",
    "sections": SECTIONS,
    "references": ["A. Author. Layouts of papers. 2020.", "Writer, B. (2021). Author-year style reference."],
    "appendix": [{"heading": "Extra Proofs", "paragraphs": ["The appendix proof text that follows the references."]}],
    "running_header": {"left": "Preprint. Under review at a workshop", "right": "Author and Writer"},
    "footnotes": ["\u00b9 Code and data: https://example.org/layout under CC-BY-4.0.", "\u00b2 Work done while at the Lab of Layouts."],
    "reference_style": "author-year",
}


@pytest.fixture(scope="module", params=[1, 2], ids=["one-column", "two-columns"])
def layout(request, tmp_path_factory):
    pdf = render_paper(SOURCE, tmp_path_factory.mktemp("layout") / "layout.pdf", columns=request.param)
    markdown = pdf_to_markdown(pdf)
    processed = process_markdown(markdown)
    return markdown, processed, chunk_text("demo-layout", processed.text)


def test_the_rendering_has_the_features_under_test(layout):
    markdown, _, _ = layout
    assert markdown.count("Preprint. Under review at a workshop") >= 3  # one per page
    assert "<!-- Start of picture text -->" in markdown  # the figure's labels are picture text
    assert "Extra Proofs" in markdown  # the appendix after the references


def test_footnotes_leave_the_paragraph_they_interrupt_whole_and_follow_it(layout):
    markdown, processed, chunks = layout
    assert "\u00b9 Code and data" in markdown  # the converter sets them where the first page ends
    text = processed.text
    note, second = text.find("\u00b9 Code and data: https://example.org/layout"), text.find("\u00b2 Work done while")
    assert -1 < note < second and "> \u00b9" not in text  # paragraphs of their own, no block-quote marker
    before = text.rfind("\n\n", 0, note)
    assert text[before - 1] == "."  # set after a whole paragraph, never inside a sentence
    assert text.count("which we compare against the baseline of section") == 9 * 5  # no sentence cut by them
    assert any("\u00b9 Code and data" in chunk.text for chunk in chunks)  # kept as text, searchable


def test_author_year_references_have_no_numbers_and_are_cut_like_numbered_ones(layout):
    markdown, processed, _ = layout
    assert "Writer, B. (2021). Author-year style reference." in markdown
    assert "[1]" not in markdown and "[2]" not in markdown
    assert "Author-year style" not in processed.text


def test_running_headers_and_page_numbers_are_dropped_from_chunks(layout):
    _, processed, chunks = layout
    for chunk in chunks:
        assert "Preprint" not in chunk.text and "Author and Writer" not in chunk.text
        assert not any(re.fullmatch(r"\d{1,3}", line.strip()) for line in chunk.text.splitlines())
    # a paragraph cut by a page break is joined again: every observation sentence is whole
    for topic in ("introduction", "method", "results", "analysis", "discussion"):
        for i in range(1, 6):
            assert f"observation {topic}-{i} reports a measured value" in processed.text


def test_reading_order_follows_the_sections_across_columns(layout):
    _, processed, _ = layout
    positions = [processed.text.find(f"observation {topic}-1 ") for topic in
                 ("introduction", "motivation", "method", "training", "results", "ablation", "analysis", "errors", "discussion")]
    assert -1 not in positions and positions == sorted(positions)


def test_figure_text_goes_and_its_caption_stays_at_the_figure(layout):
    _, processed, _ = layout
    text = processed.text
    assert "encoder router" not in text and "decoder" not in text.replace("encoder and decoder", "")
    caption = text.find("Figure 1: The router sits between encoder and decoder.")
    assert caption != -1
    assert text.find("observation method-5") < caption < text.find("## 3 Results")


def test_table_and_caption_are_kept(layout):
    _, processed, _ = layout
    assert "Table 1: Recall at five per method." in processed.text
    assert re.search(r"^\|\s*Hybrid\s*\|\s*0\.78\s*\|", processed.text, re.MULTILINE)


def test_discussion_ending_is_the_conclusion_and_references_and_appendix_are_cut(layout):
    _, processed, _ = layout
    assert processed.sections.conclusion_source == "fallback:5 Discussion"
    assert processed.sections.conclusion.startswith("The discussion closes the body")
    assert processed.references_heading == "References"
    assert "Layouts of papers" not in processed.text and "Author-year style" not in processed.text
    assert "appendix proof text" not in processed.text  # appendices after the references go too
    assert "Anna Author" in processed.front_matter and "Anna Author" not in processed.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"running_header": {"middle": "x"}}, "running_header needs 'left' and/or 'right'"),
        ({"appendix": [{"heading": "A"}]}, "appendix section 1: needs a 'heading' and 'paragraphs'"),
        ({"sections": [{**SECTIONS[1], "figure": {"labels": ["a"]}}]}, "figure needs 'labels' and a 'caption'"),
        ({"footnotes": []}, "footnotes must be a non-empty list"),
        ({"reference_style": "apa"}, "reference_style must be one of"),
    ],
)
def test_layout_features_are_validated(change, message):
    with pytest.raises(DemoSourceError, match=message):
        validate_source({**SOURCE, **change})


# ------------------------------------------------------------------------ the shipped arXiv-like demo papers


def _shipped_layout_papers() -> list[str]:
    from rag_pipeline.demo_corpus.build import load_sources

    return sorted(pid for pid, source in load_sources().items() if source.get("running_header"))


@pytest.mark.parametrize("paper_id", _shipped_layout_papers())
def test_the_shipped_layout_papers_ingest_as_documented(paper_id):
    """On each shipped demo paper with a running header: headers and page numbers never reach a
    chunk (even where the body spans only two pages and the third holds the references), footnotes
    are paragraphs of their own, captions stay, references and any appendix are cut, and a paper
    ending in a Discussion has it as its conclusion."""
    from rag_pipeline.demo_corpus.build import load_sources, pdf_path

    source = load_sources()[paper_id]
    processed = process_markdown(pdf_to_markdown(pdf_path(paper_id)))
    chunks = chunk_text(paper_id, processed.text)
    header = source["running_header"]
    for chunk in chunks:
        lines = [line.strip().strip("_*").strip() for line in chunk.text.splitlines()]
        for text in header.values():
            assert text not in lines, (paper_id, text)  # never a line of its own (the body may name it)
        assert not any(re.fullmatch(r"\d{1,3}", line.strip()) for line in chunk.text.splitlines())
    for note in source.get("footnotes", []):
        assert re.search(rf"^{re.escape(note[:30])}", processed.text, re.MULTILINE), note  # its own paragraph
    for section in source["sections"]:
        for block in ("figure", "table"):
            if section.get(block):
                assert " ".join(section[block]["caption"].split())[:40] in processed.text, (paper_id, block)
    assert processed.references_heading == "References"
    assert source["references"][-1][:25] not in processed.text
    for appendix in source.get("appendix", []):
        assert appendix["paragraphs"][0][:40] not in processed.text
    ending = source["sections"][-1]["heading"]
    expected = "heading" if "onclusion" in ending else f"fallback:{len(source['sections'])} {ending}"
    assert processed.sections.conclusion_source == expected
    assert processed.sections.conclusion.startswith(" ".join(source["sections"][-1]["paragraphs"][0].split())[:40])
