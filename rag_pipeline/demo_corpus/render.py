"""Render a demo paper (structured YAML source) into a deterministic, paper-like PDF.

The layout mimics a conference paper closely enough that the ingestion stage has to cope with
what real papers have: a title block, an abstract, numbered section headings set in a larger
bold font (pymupdf4llm turns those into markdown headings), a numeric table, a displayed
formula, a reference list and, optionally, a two-column body, a running header above the body
(``running_header: {left, right}``), figures drawn as vector graphics with text labels inside and
a caption below (``figure: {labels, caption, after}`` in a section), lettered appendix sections
after the references (``appendix:``), footnotes at the foot of the first page (``footnotes:``, a
list of texts; the body marks them with superscript digits such as ``¹``) and the reference style
(``reference_style: numbered`` — ``[1] ...``, the default — or ``author-year``: entries as written,
no numbers).

Only the standard PDF fonts are used (no embedded TrueType), so text is limited to Latin-1;
formulas are written in ASCII ("softmax(Q K^T / sqrt(d_k))"). The bytes are deterministic:
reportlab's ``invariant`` mode fixes the creation date and the document id, and the metadata is
fixed, so the same source always renders the same file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    FrameBreak,
    KeepTogether,
    NextPageTemplate,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from rag_pipeline import atomic

PAGE_SIZE = A4
MARGIN = 2.2 * cm
COLUMN_GAP = 0.7 * cm
# Frames pad their content by 6 pt on every side by default; the title block's height must
# include that padding or the first page's columns would overlap it.
FRAME_PADDING = 6
PRODUCER_CREATOR = "rag_pipeline demo corpus renderer"

# The standard (non-embedded) PDF fonts cover the Windows-1252 character set.
FONT_ENCODING = "cp1252"
REQUIRED_FIELDS = ("id", "title", "authors", "abstract", "sections", "references")
REFERENCE_STYLES = ("numbered", "author-year")


class DemoSourceError(ValueError):
    """A demo paper source that cannot be rendered; the message names the paper and the field."""


def _styles(columns: int) -> dict[str, ParagraphStyle]:
    # Body 10 pt (10.5 pt in one column); headings clearly larger and bold, which is what
    # pymupdf4llm's header detection keys on.
    body_size = 10 if columns == 2 else 10.5
    return {
        "title": ParagraphStyle(
            "title",
            fontName="Helvetica-Bold",
            fontSize=17,
            leading=21,
            alignment=TA_CENTER,
            spaceAfter=10,
        ),
        "authors": ParagraphStyle(
            "authors",
            fontName="Times-Roman",
            fontSize=11,
            leading=14,
            alignment=TA_CENTER,
            spaceAfter=2,
        ),
        "affiliation": ParagraphStyle(
            "affiliation",
            fontName="Times-Italic",
            fontSize=10,
            leading=13,
            alignment=TA_CENTER,
            spaceAfter=12,
        ),
        "heading": ParagraphStyle(
            "heading",
            fontName="Helvetica-Bold",
            fontSize=13,
            leading=16,
            alignment=TA_LEFT,
            spaceBefore=10,
            spaceAfter=5,
            keepWithNext=1,
        ),
        "abstract": ParagraphStyle(
            "abstract",
            fontName="Times-Roman",
            fontSize=body_size,
            leading=body_size * 1.3,
            alignment=TA_JUSTIFY,
            leftIndent=0.8 * cm if columns == 1 else 0,
            rightIndent=0.8 * cm if columns == 1 else 0,
            spaceAfter=6,
        ),
        "body": ParagraphStyle(
            "body",
            fontName="Times-Roman",
            fontSize=body_size,
            leading=body_size * 1.3,
            alignment=TA_JUSTIFY,
            spaceAfter=6,
        ),
        # Not Courier: pymupdf4llm 1.28 drops centred monospace text that wraps onto two lines.
        "formula": ParagraphStyle(
            "formula",
            fontName="Times-Roman",
            fontSize=body_size,
            leading=body_size * 1.4,
            alignment=TA_CENTER,
            spaceBefore=4,
            spaceAfter=8,
        ),
        "caption": ParagraphStyle(
            "caption",
            fontName="Times-Italic",
            fontSize=9,
            leading=11,
            alignment=TA_CENTER,
            spaceBefore=4,
            spaceAfter=4,
        ),
        "cell": ParagraphStyle("cell", fontName="Times-Roman", fontSize=8.5, leading=10),
        "cell_head": ParagraphStyle("cell_head", fontName="Times-Bold", fontSize=8.5, leading=10),
        "reference": ParagraphStyle(
            "reference",
            fontName="Times-Roman",
            fontSize=9,
            leading=11.5,
            alignment=TA_LEFT,
            leftIndent=16,
            firstLineIndent=-16,
            spaceAfter=3,
        ),
        "plain": ParagraphStyle(
            "plain",
            fontName="Times-Roman",
            fontSize=11,
            leading=14,
            alignment=TA_LEFT,
            spaceAfter=8,
        ),
    }


def _text(value: Any) -> str:
    """Escape source text for reportlab's paragraph mini-markup (the sources are plain text)."""
    return escape(" ".join(str(value).split()))


def _require(source: dict, key: str, paper: str) -> Any:
    if key not in source or source[key] in (None, "", []):
        raise DemoSourceError(f"demo paper {paper!r}: source is missing {key!r}")
    return source[key]


def _unrenderable_text(value: Any, where: str) -> str | None:
    """The first string under ``value`` that the standard fonts cannot show, as an error message."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = _unrenderable_text(item, where)
            if found:
                return found
        return None
    text = str(value)
    try:
        text.encode(FONT_ENCODING)
    except UnicodeEncodeError as exc:
        context = text[max(0, exc.start - 30) : exc.start + 30]
        return (
            f"{where}: character {text[exc.start]!r} in {context!r} is outside "
            f"{FONT_ENCODING}; the standard PDF fonts cannot show it (write formulas in ASCII)"
        )
    return None


def validate_source(source: dict) -> None:
    """Check that a source has every part the renderer needs; raise DemoSourceError naming it."""
    if not isinstance(source, dict):
        raise DemoSourceError(f"demo paper source must be a mapping, got {type(source).__name__}")
    paper = str(source.get("id", "<no id>"))
    for key in REQUIRED_FIELDS:
        _require(source, key, paper)
    problem = _unrenderable_text(source, f"demo paper {paper!r}")
    if problem:
        raise DemoSourceError(problem)
    for number, section in enumerate(source["sections"], start=1):
        where = f"demo paper {paper!r} section {number}"
        if not isinstance(section, dict) or not section.get("heading"):
            raise DemoSourceError(f"{where}: needs a 'heading'")
        if not section.get("paragraphs"):
            raise DemoSourceError(f"{where} ({section['heading']!r}): needs 'paragraphs'")
        table = section.get("table")
        if table is not None:
            header = table.get("header") or []
            rows = table.get("rows") or []
            if not header or not rows or any(len(row) != len(header) for row in rows):
                raise DemoSourceError(
                    f"{where}: table needs a 'header' and 'rows' of the same width"
                )
        formula = section.get("formula")
        if formula is not None and not formula.get("text"):
            raise DemoSourceError(f"{where}: formula needs 'text'")
        figure = section.get("figure")
        if figure is not None and not (figure.get("labels") and figure.get("caption")):
            raise DemoSourceError(f"{where}: figure needs 'labels' and a 'caption'")
    for number, section in enumerate(source.get("appendix") or [], start=1):
        if not isinstance(section, dict) or not section.get("heading") or not section.get("paragraphs"):
            raise DemoSourceError(f"demo paper {paper!r} appendix section {number}: needs a 'heading' and 'paragraphs'")
    style = source.get("reference_style", "numbered")
    if style not in REFERENCE_STYLES:
        raise DemoSourceError(f"demo paper {paper!r}: reference_style must be one of {list(REFERENCE_STYLES)}, got {style!r}")
    footnotes = source.get("footnotes")
    if footnotes is not None and not (isinstance(footnotes, list) and footnotes and all(str(f).strip() for f in footnotes)):
        raise DemoSourceError(f"demo paper {paper!r}: footnotes must be a non-empty list of texts")
    header = source.get("running_header")
    if header is not None and not (isinstance(header, dict) and set(header) <= {"left", "right"} and header):
        raise DemoSourceError(f"demo paper {paper!r}: running_header needs 'left' and/or 'right' text")


def _table(table: dict, styles: dict[str, ParagraphStyle], width: float) -> list[Flowable]:
    header = [Paragraph(_text(cell), styles["cell_head"]) for cell in table["header"]]
    rows = [[Paragraph(_text(cell), styles["cell"]) for cell in row] for row in table["rows"]]
    first_share = float(table.get("first_column_share", 0.34))
    rest = (width - width * first_share) / max(1, len(header) - 1)
    grid = Table(
        [header, *rows],
        colWidths=[width * first_share] + [rest] * (len(header) - 1),
        repeatRows=1,
        hAlign="CENTER",
    )
    grid.setStyle(
        TableStyle(
            [
                ("LINEABOVE", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
                ("LINEBELOW", (0, -1), (-1, -1), 0.8, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    caption = (
        Paragraph(_text(table["caption"]), styles["caption"]) if table.get("caption") else None
    )
    return [KeepTogether([f for f in (caption, grid) if f is not None]), Spacer(1, 6)]


def _figure(figure: dict, styles: dict[str, ParagraphStyle], width: float) -> list[Flowable]:
    """A box diagram (vector graphics with text labels inside, as figures in papers have) and its
    caption below it."""
    labels = [str(label) for label in figure["labels"]]
    box_width = min(70.0, (width - 10) / max(1, len(labels)) - 8)
    drawing = Drawing(width, 70)
    for index, label in enumerate(labels):
        x = 5 + index * (box_width + 8)
        drawing.add(Rect(x, 20, box_width, 30, fillColor=None, strokeColor=colors.black))
        drawing.add(String(x + 4, 32, label, fontName="Helvetica", fontSize=7))
    caption = Paragraph(_text(figure["caption"]), styles["caption"])
    return [KeepTogether([drawing, caption]), Spacer(1, 6)]


def _formula(formula: dict, styles: dict[str, ParagraphStyle]) -> Flowable:
    number = formula.get("number")
    label = f"&nbsp;&nbsp;&nbsp;&nbsp;({escape(str(number))})" if number is not None else ""
    return Paragraph(_text(formula["text"]) + label, styles["formula"])


def _section_flowables(section: dict, number: int, styles: dict, width: float) -> list[Flowable]:
    heading = f"{number} {section['heading']}"
    paragraphs = [str(p) for p in section["paragraphs"]]
    inserts: dict[int, list[Flowable]] = {}
    # `after` is how many paragraphs precede the block; default: formula after the first
    # paragraph, table at the end of the section.
    if section.get("formula"):
        after = int(section["formula"].get("after", 1))
        inserts.setdefault(after, []).append(_formula(section["formula"], styles))
    if section.get("table"):
        after = int(section["table"].get("after", len(paragraphs)))
        inserts.setdefault(after, []).extend(_table(section["table"], styles, width))
    if section.get("figure"):
        after = int(section["figure"].get("after", 1))
        inserts.setdefault(after, []).extend(_figure(section["figure"], styles, width))
    flowables: list[Flowable] = [
        CondPageBreak(3 * cm),
        Paragraph(_text(heading), styles["heading"]),
    ]
    for index, paragraph in enumerate(paragraphs):
        flowables.extend(inserts.pop(index, []))
        flowables.append(Paragraph(_text(paragraph), styles["body"]))
    for index in sorted(inserts):  # blocks placed after the last paragraph
        flowables.extend(inserts[index])
    return flowables


def _title_block(source: dict, styles: dict, columns: int) -> list[Flowable]:
    authors = source["authors"]
    names = ", ".join(str(a) for a in authors) if isinstance(authors, list) else str(authors)
    block: list[Flowable] = [
        Paragraph(_text(source["title"]), styles["title"]),
        Paragraph(_text(names), styles["authors"]),
    ]
    if source.get("affiliation"):
        block.append(Paragraph(_text(source["affiliation"]), styles["affiliation"]))
    else:
        block.append(Spacer(1, 10))
    if columns == 1:
        # In one column the abstract flows with the body; in two it sits full-width on top.
        return block
    return block + _abstract(source, styles)


def _abstract(source: dict, styles: dict) -> list[Flowable]:
    return [
        Paragraph("Abstract", styles["heading"]),
        Paragraph(_text(source["abstract"]), styles["abstract"]),
    ]


def _references(source: dict, styles: dict) -> list[Flowable]:
    flowables: list[Flowable] = [CondPageBreak(3 * cm), Paragraph("References", styles["heading"])]
    numbered = source.get("reference_style", "numbered") == "numbered"
    for number, reference in enumerate(source["references"], start=1):
        label = f"[{number}]&nbsp;&nbsp;" if numbered else ""
        flowables.append(Paragraph(f"{label}{_text(reference)}", styles["reference"]))
    return flowables


def _page_number(canvas, doc) -> None:
    canvas.saveState()
    canvas.setFont("Times-Roman", 8)
    canvas.drawCentredString(PAGE_SIZE[0] / 2, 1.2 * cm, str(doc.page))
    canvas.restoreState()


def _running_header(header: dict):
    """Page decoration with a running header (left and/or right text above the body) and the page
    number, as arXiv preprints and proceedings have."""

    def draw(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Times-Italic", 8)
        top = PAGE_SIZE[1] - 1.3 * cm
        if header.get("left"):
            canvas.drawString(MARGIN, top, str(header["left"]))
        if header.get("right"):
            canvas.drawRightString(PAGE_SIZE[0] - MARGIN, top, str(header["right"]))
        canvas.restoreState()
        _page_number(canvas, doc)

    return draw


FOOTNOTE_STYLE = ParagraphStyle("footnote", fontName="Times-Roman", fontSize=7.5, leading=9, alignment=TA_LEFT)


def _with_footnotes(decorate, footnotes: list[str]):
    """Page decoration that also sets ``footnotes`` at the foot of the first page, under a short
    rule, in the bottom margin above the page number (as a journal's first-page footnotes)."""

    def draw(canvas, doc) -> None:
        decorate(canvas, doc)
        if doc.page != 1:
            return
        width = PAGE_SIZE[0] - 2 * MARGIN
        paragraphs = [Paragraph(_text(text), FOOTNOTE_STYLE) for text in footnotes]
        heights = [paragraph.wrap(width, MARGIN)[1] for paragraph in paragraphs]
        top = MARGIN - 0.15 * cm
        canvas.saveState()
        canvas.setLineWidth(0.4)
        canvas.line(MARGIN, top, MARGIN + 4 * cm, top)
        y = top - 2
        for paragraph, height in zip(paragraphs, heights):
            y -= height
            paragraph.drawOn(canvas, MARGIN, y)
        canvas.restoreState()

    return draw


def _height(flowables: list[Flowable], width: float) -> float:
    total = 0.0
    for index, flowable in enumerate(flowables):
        _, height = flowable.wrap(width, PAGE_SIZE[1])
        total += height + (flowable.getSpaceBefore() if index else 0) + flowable.getSpaceAfter()
    return total


def _document(
    buffer: io.BytesIO, source: dict, columns: int, title_block: list[Flowable]
) -> BaseDocTemplate:
    doc = BaseDocTemplate(
        buffer,
        pagesize=PAGE_SIZE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=str(source["title"]),
        author=", ".join(str(a) for a in source["authors"]),
        subject=f"demo corpus paper {source['id']}",
        creator=PRODUCER_CREATOR,
        producer=PRODUCER_CREATOR,
        keywords=[],
        invariant=1,
        pageCompression=1,
    )
    footer = _page_number
    if source.get("running_header"):
        footer = _running_header(source["running_header"])
    if source.get("footnotes"):
        footer = _with_footnotes(footer, [str(f) for f in source["footnotes"]])
    x, y, width, height = doc.leftMargin, doc.bottomMargin, doc.width, doc.height
    if columns == 1:
        doc.addPageTemplates(
            [PageTemplate("body", [Frame(x, y, width, height, id="body")], onPage=footer)]
        )
        return doc
    column_width = (width - COLUMN_GAP) / 2
    header_height = _height(title_block, width - 2 * FRAME_PADDING) + 2 * FRAME_PADDING + 2

    def two_columns(bottom: float, column_height: float, prefix: str) -> list[Frame]:
        return [
            Frame(x, bottom, column_width, column_height, id=f"{prefix}-left"),
            Frame(
                x + column_width + COLUMN_GAP,
                bottom,
                column_width,
                column_height,
                id=f"{prefix}-right",
            ),
        ]

    first = [Frame(x, y + height - header_height, width, header_height, id="header")]
    first += two_columns(y, height - header_height, "first")
    doc.addPageTemplates(
        [
            PageTemplate("first", first, onPage=footer),
            PageTemplate("later", two_columns(y, height, "later"), onPage=footer),
        ]
    )
    return doc


def render_paper(source: dict, out_path: Path, columns: int = 1) -> Path:
    """Render one demo paper source (the YAML mapping) to ``out_path``; returns the path.

    ``columns`` is 1 or 2 (body text in two columns, title and abstract full width). The bytes
    depend only on the source and ``columns``; the file is written atomically.
    """
    if columns not in (1, 2):
        raise DemoSourceError(
            f"demo paper {source.get('id')!r}: columns must be 1 or 2, got {columns!r}"
        )
    validate_source(source)
    styles = _styles(columns)
    title_block = _title_block(source, styles, columns)
    buffer = io.BytesIO()
    doc = _document(buffer, source, columns, title_block)
    frame_width = (doc.width - COLUMN_GAP) / 2 if columns == 2 else doc.width
    content_width = frame_width - 2 * FRAME_PADDING

    story: list[Flowable] = list(title_block)
    if columns == 2:
        story += [NextPageTemplate("later"), FrameBreak()]
    else:
        story += _abstract(source, styles)
    for number, section in enumerate(source["sections"], start=1):
        story += _section_flowables(section, number, styles, content_width)
    story += _references(source, styles)
    for number, section in enumerate(source.get("appendix") or []):  # lettered: A, B, ...
        story += [
            CondPageBreak(3 * cm),
            Paragraph(_text(f"{chr(ord('A') + number)} {section['heading']}"), styles["heading"]),
            *[Paragraph(_text(paragraph), styles["body"]) for paragraph in section["paragraphs"]],
        ]
    doc.build(story)
    return atomic.write_bytes(out_path, buffer.getvalue())


def render_text_pdf(paragraphs: list[str], out_path: Path) -> Path:
    """Render plain paragraphs (one per list item) to a small, valid, deterministic PDF.

    A helper for tests that need a real PDF without a full paper; written atomically. Text must
    be Windows-1252 (Latin) characters: the standard fonts have no Cyrillic glyphs.
    """
    if not paragraphs:
        raise DemoSourceError(f"render_text_pdf({out_path}): needs at least one paragraph")
    problem = _unrenderable_text(list(paragraphs), f"render_text_pdf({out_path})")
    if problem:
        raise DemoSourceError(problem)
    styles = _styles(1)
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=PAGE_SIZE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title="text",
        author="",
        subject="",
        creator=PRODUCER_CREATOR,
        producer=PRODUCER_CREATOR,
        keywords=[],
        invariant=1,
        pageCompression=1,
    )
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body")
    doc.addPageTemplates([PageTemplate("body", [frame])])
    doc.build([Paragraph(_text(text), styles["plain"]) for text in paragraphs])
    return atomic.write_bytes(out_path, buffer.getvalue())
