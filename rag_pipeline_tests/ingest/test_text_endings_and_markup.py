"""Conclusion fallback (papers that end in Discussion, Summary, Обсуждение …), converter markup
removal, the author block moved to metadata, and the markup share — on strings and on real PDFs
rendered by the demo corpus renderer and converted by pymupdf4llm."""

from __future__ import annotations

from pathlib import Path

import pytest
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Paragraph, SimpleDocTemplate

from rag_pipeline.demo_corpus.render import render_paper
from rag_pipeline.ingest.chunking import chunk_text
from rag_pipeline.ingest.markdown import pdf_to_markdown
from rag_pipeline.ingest.text import (
    clean_markdown,
    extract_sections,
    markup_share,
    process_markdown,
    split_front_matter,
    strip_converter_markup,
)

HEAD = "# A Paper\n\nAnna Author, Boris Writer\n\n## Abstract\n\nWe do things.\n\n## 1 Introduction\n\nThings matter.\n\n"


# ------------------------------------------------------------------------ conclusion fallback


@pytest.mark.parametrize(
    "heading",
    ["## 5 Discussion", "## 5 Summary", "## 5 Outlook", "## 5 Limitations and Future Work",
     "## 5 Discussion and Limitations", "**5 Discussion**", "## 5 Обсуждение", "## Итоги"],
)
def test_last_body_section_stands_in_for_a_missing_conclusion(heading):
    md = HEAD + "## 4 Results\n\nNumbers.\n\n" + heading + "\n\nWhat it means for practice.\n"
    sections = extract_sections(md)
    assert sections.conclusion == "What it means for practice."
    title = heading.lstrip("#* ").rstrip("*")
    assert sections.conclusion_source == f"fallback:{title}"
    assert sections.missing == []


def test_a_conclusion_heading_wins_over_a_discussion():
    md = HEAD + "## 5 Discussion\n\nTalk.\n\n## 6 Conclusion\n\nDone.\n"
    sections = extract_sections(md)
    assert (sections.conclusion, sections.conclusion_source) == ("Done.", "heading")


def test_back_matter_after_the_discussion_is_not_body():
    md = HEAD + "## 5 Discussion\n\nTalk.\n\n### 5.1 Limitations\n\nSmall data.\n\n## Acknowledgments\n\nThanks.\n"
    sections = extract_sections(md)
    assert sections.conclusion_source == "fallback:5 Discussion"
    assert sections.conclusion == "Talk.\n\n### 5.1 Limitations\n\nSmall data."


def test_a_discussion_followed_by_core_sections_is_not_the_ending():
    md = HEAD + "## 2 Discussion of prior designs\n\nOld.\n\n## 2 Discussion\n\nEarly.\n\n## 3 Experiments\n\nRuns.\n"
    sections = extract_sections(md)
    assert (sections.conclusion, sections.conclusion_source) == ("", "missing")
    assert "conclusion" in sections.missing


def test_a_discussion_subsection_is_not_the_ending():
    md = HEAD + "## 4 Results\n\nNumbers.\n\n### 4.2 Discussion\n\nAbout numbers.\n"
    assert extract_sections(md).conclusion_source == "missing"


def test_neither_conclusion_nor_ending_is_a_recorded_gap_not_a_crash():
    sections = extract_sections(HEAD + "## 2 Method\n\nSteps.\n")
    assert sections.conclusion == "" and sections.conclusion_source == "missing"
    assert sections.missing == ["conclusion"]
    assert extract_sections("").missing == ["abstract", "conclusion"]


def test_the_abstract_summary_is_not_reused_as_the_conclusion():
    md = "# T\n\n## Summary\n\nShort version.\n\n## 1 Introduction\n\nLong version.\n"
    sections = extract_sections(md)
    assert sections.abstract == "Short version." and sections.conclusion_source == "missing"


# ------------------------------------------------------------------------ converter markup


def test_picture_text_blocks_go_with_their_figure_text():
    md = (
        "Before the figure.\n\n<!-- Start of picture text -->\nencoder router<br>decoder<br>"
        "<!-- End of picture text -->\n\nFigure 1: The router.\n"
    )
    assert clean_markdown(md) == "Before the figure.\n\nFigure 1: The router."


def test_legacy_picture_text_markers_go_with_their_text():
    md = "Text.\n\n**----- Start of picture text -----**<br>\nlabel a<br>label b<br>\n**----- End of picture text -----**<br>\n\nMore."
    assert clean_markdown(md) == "Text.\n\nMore."


def test_other_html_comments_are_removed_and_text_kept():
    assert clean_markdown("A <!-- note --> sentence.\n\n<!-- a\nmulti-line comment -->\nB.") == "A sentence.\n\nB."


def test_br_runs_become_one_space():
    assert clean_markdown("one<br><br> <br/>two<BR />three") == "one two three"


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("x<sup>2</sup> grows", "x2 grows"),
        ("h<sub>t-1</sub> state", "ht-1 state"),
        ("Anna<sup>_∗_</sup> wrote", "Anna wrote"),
        ("model<sup>†,‡</sup> is", "model is"),
        ("the <sub>**max**</sub> value", "the max value"),
    ],
)
def test_sup_and_sub_wrappers_keep_text_content_and_drop_footnote_marks(markup, expected):
    assert clean_markdown(markup) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("the state _ht−_ 1 is gated", "the state ht−1 is gated"),
        ("with _x_ and _W_ given", "with x and W given"),
        ("where _f(x)_ is smooth", "where f(x) is smooth"),
        ("we do _not_ tune it", "we do _not_ tune it"),  # an italic word keeps its emphasis
        ("see _Section_ 3", "see _Section_ 3"),
        ("a _b_ 2 case", "a b 2 case"),  # no operator at the end: nothing joined
        ("the d_k scale", "the d_k scale"),  # an identifier, not emphasis
    ],
)
def test_emphasis_markers_inside_math_like_tokens(line, expected):
    assert clean_markdown(line) == expected


def test_tables_headings_and_code_keep_their_shape():
    md = (
        "## 3 Results\n\n|Model|PPL<sup>a</sup>|\n|---|---|\n|Dense|14.21|\n\n"
        "```\n<!-- kept in code --> a<br>b\n```\n\nThe loss is L = a + b."
    )
    assert clean_markdown(md) == (
        "## 3 Results\n\n|Model|PPLa|\n|---|---|\n|Dense|14.21|\n\n"
        "```\n<!-- kept in code --> a<br>b\n```\n\nThe loss is L = a + b."
    )


def test_strip_converter_markup_leaves_plain_text_alone():
    text = "# T\n\nPlain text with a < b and c > d.\n"
    assert strip_converter_markup(text) == text


# ------------------------------------------------------------------------ author block


def test_author_block_before_the_abstract_moves_to_metadata():
    md = (
        "# A Paper\n\nAnna Author, Boris Writer\n\n_Lab of Things, anna@example.org_\n\n"
        "## Abstract\n\nWe do things.\n\n## 1 Introduction\n\nText."
    )
    text, front = split_front_matter(md)
    assert text == "# A Paper\n\n## Abstract\n\nWe do things.\n\n## 1 Introduction\n\nText."
    assert front == "Anna Author, Boris Writer\nLab of Things, anna@example.org"


def test_inline_abstract_and_plain_title():
    md = "A Paper Title\nAnna Author\nanna@example.org\nAbstract—We do things.\n\nMore."
    text, front = split_front_matter(md)
    assert text == "A Paper Title\n\nAbstract—We do things.\n\nMore."
    assert front == "Anna Author\nanna@example.org"


@pytest.mark.parametrize(
    "md",
    [
        "# T\n\nNo abstract here.\n\n## 1 Introduction\n\nText.",  # no abstract: nothing moves
        "# T\n\n## Abstract\n\nRight away.",  # nothing between title and abstract
        "# T\n\n" + "A long body paragraph. " * 20 + "\n\n## Abstract\n\nX.",  # prose, not names
        "# T\n\n## 1 Introduction\n\nIntro.\n\n## Summary\n\nEnd.",  # 'Summary' far away: body between
    ],
)
def test_no_author_block_when_it_does_not_look_like_one(md):
    assert split_front_matter(md) == (md, "")


# ------------------------------------------------------------------------ markup share


def test_markup_share_counts_tags_comments_and_emphasis_not_identifiers():
    assert markup_share("") == 0.0
    assert markup_share("plain d_k text") == 0.0
    assert markup_share("<br>") == 1.0
    assert markup_share("**ab**") == pytest.approx(4 / 6)
    assert markup_share("_x_ y") == pytest.approx(2 / 5)


# ------------------------------------------------------------------------ real PDFs


def _source(sections: list[dict], **extra) -> dict:
    return {
        "id": "demo-ending",
        "title": "Ending Without a Conclusion",
        "authors": ["Anna Author", "Boris Writer"],
        "affiliation": "Lab of Things, Example University. anna.author@example.org",
        "abstract": "We study papers whose body ends with a discussion section and no conclusion.",
        "sections": sections,
        "references": ["A. Author. A paper about endings. 2020."],
        **extra,
    }


DISCUSSION_ENDING = [
    {"heading": "Introduction", "paragraphs": ["Papers end in many ways and some have no conclusion heading at all."]},
    {"heading": "Results", "paragraphs": ["The recall at five is 0.81 on the held-out set of questions."]},
    {"heading": "Discussion", "paragraphs": [
        "The discussion section is where this paper states what its results mean for practice.",
        "Future work will cover scanned documents.",
    ]},
]


@pytest.fixture(scope="module")
def discussion_pdf(tmp_path_factory) -> Path:
    return render_paper(_source(DISCUSSION_ENDING), tmp_path_factory.mktemp("ending") / "ending.pdf")


@pytest.mark.parametrize("columns", [1, 2])
def test_rendered_paper_ending_in_discussion_gets_its_conclusion(tmp_path, columns):
    pdf = render_paper(_source(DISCUSSION_ENDING), tmp_path / "ending.pdf", columns=columns)
    processed = process_markdown(pdf_to_markdown(pdf))
    assert processed.sections.conclusion_source == "fallback:3 Discussion"
    assert "what its results mean for practice" in processed.sections.conclusion
    assert "Future work will cover scanned documents." in processed.sections.conclusion
    assert "A paper about endings" not in processed.sections.conclusion  # references cut
    assert processed.sections.missing == []
    record = processed.sections_record()
    assert record["conclusion_source"] == "fallback:3 Discussion"


def test_rendered_paper_without_any_ending_records_the_gap(tmp_path):
    pdf = render_paper(_source(DISCUSSION_ENDING[:2]), tmp_path / "no-ending.pdf")
    processed = process_markdown(pdf_to_markdown(pdf))
    assert processed.sections.conclusion_source == "missing"
    assert processed.sections.missing == ["conclusion"]
    assert "recall at five" in processed.text


def test_rendered_author_block_is_metadata_not_text(discussion_pdf):
    processed = process_markdown(pdf_to_markdown(discussion_pdf))
    assert "Anna Author, Boris Writer" in processed.front_matter
    assert "anna.author@example.org" in processed.front_matter
    assert "Anna Author" not in processed.text and "example.org" not in processed.text
    assert processed.text.startswith("# Ending Without a Conclusion\n\n## Abstract")
    first_chunk = chunk_text("demo-ending", processed.text)[0].text
    assert "Anna Author" not in first_chunk and "We study papers" in first_chunk


@pytest.fixture(scope="module")
def markup_pdf(tmp_path_factory) -> Path:
    """A page with a superscript, a footnote mark, italic math and a figure with text inside:
    pymupdf4llm writes <sup>, _..._ and a picture-text block with <br> for them."""
    path = tmp_path_factory.mktemp("markup") / "markup.pdf"
    body = ParagraphStyle("b", fontName="Times-Roman", fontSize=10.5, leading=13)
    head = ParagraphStyle("h", fontName="Helvetica-Bold", fontSize=13, leading=16)
    figure = Drawing(300, 120)
    for i, label in enumerate(["encoder", "router", "decoder", "sink block"]):
        figure.add(Rect(20 + 65 * i, 60, 55, 30, fillColor=None))
        figure.add(String(25 + 65 * i, 72, label, fontName="Helvetica", fontSize=8))
    story = [
        Paragraph("1 Method", head),
        Paragraph("The loss scales as x<super>2</super> and the model<super>*</super> is small. "
                  "We write <i>W</i> for the weight.", body),
        figure,
        Paragraph("Figure 1: The router between encoder and decoder.", body),
    ]
    SimpleDocTemplate(str(path), pagesize=A4, invariant=1).build(story)
    return path


def test_rendered_markup_is_removed_from_the_cleaned_text(markup_pdf):
    markdown = pdf_to_markdown(markup_pdf)
    # The converter really produced the markup this test is about.
    assert "<!-- Start of picture text -->" in markdown and "<br>" in markdown
    assert "<sup>2</sup>" in markdown and "_W_" in markdown
    text = process_markdown(markdown).text
    for markup in ("<!--", "<br>", "<sup>", "_W_"):
        assert markup not in text
    assert "encoder router" not in text and "sink block" not in text  # figure text is gone
    assert "x2 and the model is small" in text and "We write W for the weight." in text
    assert "Figure 1: The router between encoder and decoder." in text  # the caption stays
    assert markup_share(text) < markup_share(markdown)


def test_text_stage_surfaces_the_fallback_in_its_metadata(tmp_path, discussion_pdf):
    from rag_pipeline.artifacts import ArtifactStore
    from rag_pipeline.stages.ingest import clean_paper

    store = ArtifactStore(tmp_path / "artifacts")
    with store.writing("paper_markdown", "demo-ending") as out:
        out.write_text(pdf_to_markdown(discussion_pdf))
    outcome = clean_paper(store, "demo-ending")
    assert outcome.metadata["conclusion_source"] == "fallback:3 Discussion"
    assert outcome.metadata["sections_missing"] == "none"
    assert any("'3 Discussion' as the conclusion" in warning for warning in outcome.warnings)
    stored = store.read_json("paper_text", "demo-ending")
    assert stored["conclusion_source"] == "fallback:3 Discussion"
    assert "Anna Author" in stored["front_matter"]
