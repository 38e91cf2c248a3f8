"""Trimming, cleaning and section extraction on markdown strings (the shapes converters produce)."""

import pytest

from rag_pipeline.ingest.text import (
    ABSTRACT_HEADINGS,
    CONCLUSION_HEADINGS,
    REFERENCE_HEADINGS,
    clean_markdown,
    extract_sections,
    process_markdown,
    trim_references,
)

BODY = "# A Paper\n\n## Abstract\n\nWe do things.\n\n## 1 Introduction\n\nThings matter.\n\n"


# ------------------------------------------------------------------------------------ trimming


def test_alias_lists_include_the_notebook_and_the_extra_names():
    assert {"references", "bibliography", "literature cited"} <= set(REFERENCE_HEADINGS)
    assert {"abstract", "absctract", "summary"} <= set(ABSTRACT_HEADINGS)
    assert {
        "conclusion",
        "conclusions",
        "concluding remarks",
        "closing remarks",
        "conclusion and future work",
        "discussion and conclusion",
    } <= set(CONCLUSION_HEADINGS)


@pytest.mark.parametrize("alias", REFERENCE_HEADINGS)
@pytest.mark.parametrize(
    "shape", ["## {}", "# **{}**", "**{}**", "{}", "7 {}", "## 7. {}", "{upper}"]
)
def test_trim_references_finds_every_alias_in_every_heading_shape(alias, shape):
    heading = shape.format(alias.title(), upper=alias.upper())
    md = BODY + heading + "\n\n[1] A. Author. Title. 2020.\n\n## A Appendix\n\nMore."
    text, found = trim_references(md)
    assert text == BODY
    assert found is not None and found.lower().endswith(alias)


def test_trim_references_small_caps_heading():
    text, found = trim_references(BODY + "R EFERENCES\n\n[1] X.")
    assert text == BODY and found == "R EFERENCES"


def test_trim_references_without_heading_returns_everything():
    md = BODY + "We cite [1] and the references list is absent."
    assert trim_references(md) == (md, None)


def test_trim_references_ignores_the_word_inside_prose_and_tables():
    md = BODY + "See the references below for details.\n\n| References | 3 |\n|---|---|\n\nEnd."
    assert trim_references(md) == (md, None)


def test_trim_references_takes_the_first_heading_and_drops_appendix_after_it():
    md = BODY + "## References\n\n[1] X.\n\n## Appendix\n\n## Bibliography\n\n[2] Y."
    text, found = trim_references(md)
    assert text == BODY and found == "References"


# ------------------------------------------------------------------------------------ cleaning


def test_clean_drops_page_separators_and_isolated_page_numbers():
    md = "First paragraph.\n\n-----\n\n12\n\nSecond paragraph.\n"
    assert clean_markdown(md) == "First paragraph.\n\nSecond paragraph."


def test_clean_unbolds_headings_and_strips_italic_markers():
    md = "## **2 Method**\n\n### **_2.1 Gating_**\n\n# **1** **Introduction**"
    assert clean_markdown(md) == "## 2 Method\n\n### 2.1 Gating\n\n# 1 Introduction"


@pytest.mark.parametrize(
    "line, heading",
    [
        ("**3.3** **Training Dynamics**", "### 3.3 Training Dynamics"),
        ("**2** **Method**", "## 2 Method"),
        ("**2.5.1 Decoding**", "#### 2.5.1 Decoding"),
        ("**Abstract**", "## Abstract"),
        ("**Acknowledgments**", "## Acknowledgments"),
    ],
)
def test_clean_promotes_bold_section_titles_to_headings(line, heading):
    assert clean_markdown(f"Text before.\n\n{line}\n\nText after.") == (
        f"Text before.\n\n{heading}\n\nText after."
    )


@pytest.mark.parametrize(
    "line", ["**RAG-Token model**", "**2022**", "**3 a lower-case start**", "**1. We did this.**"]
)
def test_clean_keeps_other_bold_lines_as_they_are(line):
    assert clean_markdown(line) == line


def test_clean_removes_broken_citation_and_punctuation_markup():
    assert (
        clean_markdown("as shown in*[12]* before*,* and*.* after") == "as shown in before and after"
    )


def test_clean_turns_triple_emphasis_into_bold_and_squeezes_spaces():
    assert clean_markdown("a ***strong***   word\t\there") == "a **strong** word here"


def test_clean_squeezes_blank_lines():
    assert clean_markdown("One.\n\n\n\n\nTwo.") == "One.\n\nTwo."


def test_clean_replaces_ligatures_and_invisible_characters():
    assert clean_markdown("e\ufb03cient \ufb01ne\u00adtuning\u200b") == "efficient finetuning"


def test_clean_drops_picture_placeholders():
    md = "Text.\n\n**==> picture [120 x 80] intentionally omitted <==**\n\nMore text."
    assert clean_markdown(md) == "Text.\n\nMore text."


def test_clean_keeps_table_rows_verbatim_but_for_bold_and_line_breaks_in_cells():
    table = (
        "|**Method**|**PPL**|**Mem.**<br>**GB**|\n|---|---|---|\n"
        "|Dense|14.21|38.2|\n|*[1]* k=8|14.29|11.4|"
    )
    # A <br> inside a cell is the converter's line break: one space, the row stays one line;
    # bold header cells lose their markers; anything else in a row stays as it is.
    assert clean_markdown(table) == (
        "|Method|PPL|Mem. GB|\n|---|---|---|\n|Dense|14.21|38.2|\n|*[1]* k=8|14.29|11.4|"
    )


def test_clean_keeps_numbers_that_belong_to_formulas_or_columns():
    md = "The loss is\nL = a + b\n2\n\nColumns:\n0.71\n0.78\n4.5"
    assert clean_markdown(md) == md


def test_clean_keeps_formulas_and_code():
    formula = "s(i, j) = ( mean(Q_i) . mean(K_j) ) / sqrt(d_k) + beta[ min(i - j, 64) ] (1)"
    cleaned = clean_markdown(formula + "\n\n```\nx  =  1\n```")
    assert formula in cleaned
    assert "```\nx  =  1\n```" in cleaned


def test_clean_rejoins_a_sentence_cut_by_a_page_break():
    md = "the first tokens receive a\n\n3\n\nlarge share of the mass.\n\nNew paragraph."
    expected = "the first tokens receive a large share of the mass.\n\nNew paragraph."
    assert clean_markdown(md) == expected


def test_clean_does_not_join_real_paragraphs_or_headings():
    md = "A finished sentence.\n\nthen lower case\n\n## Heading\n\nlower text"
    assert clean_markdown(md) == md


# ------------------------------------------------------------------------------------ sections


@pytest.mark.parametrize(
    "abstract_heading",
    [
        "# Abstract",
        "## **Abstract**",
        "**Abstract**",
        "ABSTRACT",
        "A BSTRACT",
        "Abstract",
        "## Summary",
        "# Absctract",
    ],
)
def test_abstract_heading_shapes(abstract_heading):
    md = f"# Title\n\n{abstract_heading}\n\nWe propose X.\nIt works.\n\n## 1 Introduction\n\nIntro."
    sections = extract_sections(md)
    assert sections.abstract == "We propose X.\nIt works."


@pytest.mark.parametrize(
    "line",
    [
        "Abstract\u2014We propose X. It works.",
        "**Abstract.** We propose X. It works.",
        "ABSTRACT: We propose X. It works.",
        "_Abstract_ - We propose X. It works.",
    ],
)
def test_abstract_with_text_on_the_same_line(line):
    md = f"# Title\n\n{line}\nSecond line.\n\n## 1 Introduction\n\nIntro."
    assert extract_sections(md).abstract == "We propose X. It works.\nSecond line."


def test_abstract_ends_at_keywords_line():
    md = "**Abstract**\n\nWe propose X.\n\n**Keywords:** retrieval, RAG\n\n1 Introduction\n\nIntro."
    assert extract_sections(md).abstract == "We propose X."


def test_hyphenated_word_is_not_an_inline_abstract():
    md = "Abstract-based indexing is old.\n\n## 1 Introduction\n\nIntro."
    assert extract_sections(md).missing == ["abstract", "conclusion"]


@pytest.mark.parametrize(
    "heading",
    [
        "## 5 Conclusion",
        "5. Conclusions",
        "## **6 Concluding Remarks**",
        "V. CONCLUSION",
        "5 C ONCLUSION",
        "## Closing remarks",
        "## 7 Conclusion and Future Work",
        "## 6 Discussion and Conclusion",
        "## 6 Conclusions, Limitations and Future Work",
        "**Conclusion**",
    ],
)
def test_conclusion_heading_shapes(heading):
    md = (
        f"## Abstract\n\nAbs.\n\n## 4 Results\n\nNumbers.\n\n{heading}\n\nWe conclude Y.\n\n"
        "## Acknowledgments\n\nThanks."
    )
    sections = extract_sections(md)
    assert sections.conclusion == "We conclude Y."
    assert sections.abstract == "Abs."
    assert sections.missing == []


def test_conclusion_keeps_its_subsections_and_stops_at_the_next_section():
    md = (
        "## 5 Conclusion\n\nWe conclude.\n\n### 5.1 Limitations\n\nSmall data.\n\n"
        "### Future work\n\nMore.\n\n## 6 Broader Impact\n\nNone."
    )
    assert (
        extract_sections(md).conclusion
        == "We conclude.\n\n### 5.1 Limitations\n\nSmall data.\n\n### Future work\n\nMore."
    )


def test_deeper_numbered_heading_after_the_abstract_still_ends_it():
    md = "## Abstract\n\nAbs text.\n\n### 1 Introduction\n\nIntro text."
    assert extract_sections(md).abstract == "Abs text."


def test_exact_conclusion_wins_over_discussion_and_inline_mentions():
    md = (
        "## Abstract\n\nA.\n\nConclusion: an early remark in the text.\n\n## 5 Discussion\n\nD.\n\n"
        "## 6 Conclusions\n\nThe real one."
    )
    assert extract_sections(md).conclusion == "The real one."


def test_missing_sections_are_recorded_not_raised():
    sections = extract_sections("# Title\n\nJust some text without structure.")
    assert (sections.abstract, sections.conclusion) == ("", "")
    assert sections.missing == ["abstract", "conclusion"]
    assert sections.headings == ["Title"]


def test_empty_heading_body_counts_as_missing():
    sections = extract_sections(
        "## Abstract\n\n## 1 Introduction\n\nText.\n\n## 2 Conclusion\n\nDone."
    )
    assert (
        sections.abstract == ""
        and sections.missing == ["abstract"]
        and sections.conclusion == "Done."
    )


@pytest.mark.parametrize(
    "odd", ["", "\n\n", "####", "**", "# ", "| a | b |\n|---|---|", "```\n# Abstract\n"]
)
def test_extract_sections_never_crashes_on_odd_input(odd):
    sections = extract_sections(odd)
    assert sections.missing == ["abstract", "conclusion"]


def test_headings_lists_structure_in_order():
    md = (
        "# Title\n\n**Abstract**\n\nA.\n\n## 1 Introduction\n\nI.\n\n2. Method\n\nM.\n\n"
        "## 3 Conclusion\n\nC."
    )
    assert extract_sections(md).headings == [
        "Title",
        "Abstract",
        "1 Introduction",
        "2. Method",
        "3 Conclusion",
    ]


def test_numbered_sentences_and_equations_are_not_headings():
    md = "## 3 Conclusion\n\nWe list:\n1. We propose a method that works.\n2 x = y + 1\n\nEnd."
    sections = extract_sections(md)
    assert sections.headings == ["3 Conclusion"]
    assert sections.conclusion.endswith("End.")


def test_process_markdown_trims_cleans_and_extracts():
    md = (
        "# **Paper**\n\n## **Abstract**\n\nWe  propose*[3]* X.\n\n-----\n\n"
        "## **2 Conclusion**\n\nIt works.\n\n## **References**\n\n[1] Someone. 2020.\n"
    )
    paper = process_markdown(md)
    assert paper.text == "# Paper\n\n## Abstract\n\nWe propose X.\n\n## 2 Conclusion\n\nIt works."
    assert paper.references_heading == "References"
    assert paper.sections.abstract == "We propose X."
    assert paper.sections.conclusion == "It works."
    assert paper.n_chars_markdown == len(md) and paper.n_chars_text == len(paper.text)
    assert "Someone" not in paper.text
