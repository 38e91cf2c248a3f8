"""Markdown → the text the pipeline works on: cut the references, clean converter debris and markup
(figure text, HTML comments, ``<br>``, ``<sup>``/``<sub>``, emphasis inside math, running headers),
move the author block before the abstract into metadata, and find the abstract and the conclusion
(the summarisation task's input; without a conclusion heading the last body section — Discussion,
Summary, Outlook, Обсуждение … — stands in and ``Sections.conclusion_source`` says so).

Headings in converted papers come in many shapes, so a "heading" here is any of:
``## 5 Conclusion`` (markdown), ``**Abstract**`` (a line that is only bold text), ``5. Conclusions``
(a short numbered line), a line that is exactly a known section name (``ABSTRACT``), and — for a
section start only — ``Abstract—text on the same line``. Small-caps headings that the converter
splits (``A BSTRACT``, ``5 C ONCLUSION``) match too.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

# Aliases in priority order: the first alias found as a heading wins.
REFERENCE_HEADINGS: tuple[str, ...] = (
    "references",
    "reference",
    "bibliography",
    "literature cited",
    "works cited",
    "cited literature",
    "list of references",
    "references and notes",
    "список литературы",
    "литература",
    "список использованных источников",
    "библиографический список",
)
ABSTRACT_HEADINGS: tuple[str, ...] = (
    "abstract",
    "absctract",  # the notebook's alias for a misspelt heading
    "summary",
    "executive summary",
    "аннотация",
    "реферат",
    "резюме",
)
CONCLUSION_HEADINGS: tuple[str, ...] = (
    "conclusion",
    "conclusions",
    "concluding remarks",
    "closing remarks",
    "final remarks",
    "conclusion and future work",
    "conclusions and future work",
    "conclusion and future directions",
    "conclusions and future directions",
    "conclusion and outlook",
    "conclusions and outlook",
    "summary and conclusion",
    "summary and conclusions",
    "discussion and conclusion",
    "discussion and conclusions",
    "conclusion and discussion",
    "conclusions and discussion",
    "summary and outlook",
    "заключение",
    "выводы",
)
# A paper without a conclusion heading often ends its body with one of these: the last such
# top-level section before the references stands in for the conclusion (recorded as a fallback).
CONCLUSION_FALLBACK_HEADINGS: tuple[str, ...] = (
    "discussion",
    "general discussion",
    "summary",
    "summary and discussion",
    "discussion and outlook",
    "discussion and future work",
    "discussion and limitations",
    "limitations and future work",
    "limitations and future directions",
    "future work",
    "future directions",
    "outlook",
    "final thoughts",
    "closing thoughts",
    "обсуждение",
    "обсуждение результатов",
    "итоги",
    "подведение итогов",
    "перспективы",
    "заключительные замечания",
    "выводы и перспективы",
)
# Section names that never head a sub-section: they end a section whatever level a converter gave them.
TOP_LEVEL_OTHER_HEADINGS: tuple[str, ...] = (
    "introduction",
    "related work",
    "acknowledgments",
    "acknowledgements",
    "acknowledgment",
    "acknowledgement",
    "appendix",
    "broader impact",
    "ethics statement",
    "author contributions",
    "funding",
    "введение",
    "благодарности",
    "приложение",
)
# Further common section names: a plain line equal to one of these is a heading (it ends a section).
OTHER_SECTION_HEADINGS: tuple[str, ...] = TOP_LEVEL_OTHER_HEADINGS + (
    "background",
    "method",
    "methods",
    "experiments",
    "results",
    "discussion",
    "limitations",
    "future work",
)
# Front-matter lines that follow an abstract and end it even without a heading.
SECTION_TERMINATORS = re.compile(
    r"^[*_#\s]*(keywords|key words|index terms|ccs concepts|acm reference format|ключевые слова)\b",
    re.IGNORECASE,
)

ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
BOLD_ONLY_LINE = re.compile(r"^\s*(?:(?:\*\*|__)[^*\n]+?(?:\*\*|__)\s*)+$")
NUMBERED_LINE = re.compile(r"^(\d{1,2}(?:\.\d{1,2})*\.?|[IVXL]{1,5}\.)\s+(\S.{0,80})$")
NUMBER_PREFIX = re.compile(
    r"^(?:\d{1,2}(?:\.\d{1,2})*\.?|[IVXLC]{1,5}\.|[A-Z](?:\.\d{1,2})*\.?)\s+"
)
# After an inline section name: a dash, colon or period ('Abstract—', 'Abstract:', 'Abstract -');
# a hyphen glued to the word is not one ('Abstract-based methods').
SEPARATOR = r"(?:\s*[.:\u2014\u2013]\s*|\s+-{1,2}\s*|--\s*)"
MAX_HEADING_WORDS = 12


@dataclass(frozen=True)
class _Heading:
    line: int
    title: str  # display form: markdown markers removed
    level: int  # 1..6 for markdown headings; 7 for bold, numbered or plain-name lines
    number: str  # "5", "5.1" or "" when unnumbered


def _strip_markers(text: str) -> str:
    """Remove emphasis markers and surrounding whitespace: '**_2.1 Gating_**' → '2.1 Gating'."""
    text = re.sub(r"\*\*|__", "", text).strip()
    while len(text) > 1 and text[0] in "*_" and text[-1] in "*_":
        text = text[1:-1].strip()
    return text.strip("*").strip()


def _heading_keys(title: str) -> set[str]:
    """Normalised forms a heading title can match an alias by (number removed, spaces squeezed)."""
    base = re.sub(r"\s+", " ", _strip_markers(title)).strip().rstrip(".:").strip().lower()
    unnumbered = (
        NUMBER_PREFIX.sub("", _strip_markers(title).strip(), count=1).rstrip(".:").strip().lower()
    )
    unnumbered = re.sub(r"\s+", " ", unnumbered)
    # Small caps come out as 'A BSTRACT' / 'C ONCLUSION': compare without spaces as well.
    return {base, unnumbered, base.replace(" ", ""), unnumbered.replace(" ", "")}


def _matches(keys: set[str], alias: str) -> bool:
    return alias in keys or alias.replace(" ", "") in keys


def _section_number(title: str) -> str:
    match = re.match(r"^(\d{1,2}(?:\.\d{1,2})*)\.?\s", _strip_markers(title))
    return match.group(1) if match else ""


_KNOWN_NAMES = REFERENCE_HEADINGS + ABSTRACT_HEADINGS + CONCLUSION_HEADINGS + OTHER_SECTION_HEADINGS
_TOP_LEVEL_NAMES = REFERENCE_HEADINGS + ABSTRACT_HEADINGS + CONCLUSION_HEADINGS + TOP_LEVEL_OTHER_HEADINGS


def _parse_heading(line: str, index: int) -> _Heading | None:
    """The heading on this line, or None.

    Conservative for plain lines: a false heading would cut a section short.
    """
    match = ATX_HEADING.match(line)
    if match:
        title = _strip_markers(match.group(2))
        return (
            _Heading(index, title, len(match.group(1)), _section_number(title)) if title else None
        )
    stripped = line.strip()
    if not stripped or stripped.startswith("|"):
        return None
    if BOLD_ONLY_LINE.match(stripped):
        title = _strip_markers(stripped)
        if title and len(title.split()) <= MAX_HEADING_WORDS and not title.endswith((",", ";")):
            return _Heading(index, title, 7, _section_number(title))
        return None
    plain = _strip_markers(stripped)
    keys = _heading_keys(plain)
    if any(_matches(keys, name) for name in _KNOWN_NAMES):
        return _Heading(index, plain, 7, _section_number(plain))
    numbered = NUMBERED_LINE.match(plain)
    if numbered:
        title = numbered.group(2)
        looks_like_title = (
            title[0].isupper()
            and len(title.split()) <= MAX_HEADING_WORDS
            and not title.rstrip().endswith((".", ",", ";", ":"))
            and not re.search(r"[=<>{}\\]", title)  # formulas and numbered equations are not titles
        )
        if looks_like_title:
            return _Heading(index, plain, 7, _section_number(plain))
    return None


def _headings(lines: list[str]) -> list[_Heading]:
    found = []
    in_code = False
    for index, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if not in_code:
            heading = _parse_heading(line, index)
            if heading:
                found.append(heading)
    return found


def trim_references(md: str) -> tuple[str, str | None]:
    """Cut ``md`` at its references heading (first match of ``REFERENCE_HEADINGS``).

    Returns the text before that heading (appendices after the references go too, as in the
    reference study) and the heading's title, or ``(md, None)`` when there is none.
    """
    lines = md.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    headings = _headings([line.rstrip("\r\n") for line in lines])
    for alias in REFERENCE_HEADINGS:
        for heading in headings:
            if _matches(_heading_keys(heading.title), alias):
                return md[: offsets[heading.line]], heading.title
    return md, None


# ---------------------------------------------------------------------------------------- cleaning

LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
}
INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff\x00]")  # soft hyphen, zero-width, NUL
THEMATIC_BREAK = re.compile(r"(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}")  # page separators
EMPHASIS_ONLY = re.compile(r"[*_]{1,2}")  # debris left when a bold span lost its text
PICTURE_PLACEHOLDER = re.compile(
    r"==>\s*picture \[.*?\] intentionally omitted\s*<=="
    r"|^\**-{3,}\s*(?:Start|End) of picture text\s*-{3,}",
    re.IGNORECASE,
)
NUMERIC_ONLY = re.compile(r"[\d\s.,%]+")
CITATION_ARTIFACT = re.compile(r"\*\[(,|\*|\d+)\]\*")  # '*[12]*', '*[,]*': broken citation markup
ITALIC_PUNCTUATION = re.compile(r"\*(,+|\s*[,.])\*")  # '*,*', '*.*': italicised punctuation debris
TRIPLE_EMPHASIS = re.compile(r"\*{3,}")
BOLD_SPAN = re.compile(r"\*\*([^*|\n]+?)\*\*")  # bold text inside one table cell
# Converter markup (pymupdf4llm): figure text between start/end markers (as HTML comments or as
# bold '----- Start of picture text -----' lines), other HTML comments, <br> runs, <sup>/<sub>.
PICTURE_TEXT_BLOCK = re.compile(
    r"(?:<!--\s*Start of picture text\s*-->|\**-{3,}\s*Start of picture text\s*-{3,}\**)"
    r".*?"
    r"(?:<!--\s*End of picture text\s*-->|\**-{3,}\s*End of picture text\s*-{3,}\**)",
    re.IGNORECASE | re.DOTALL,
)
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
BR_RUN = re.compile(r"(?:[ \t]*<br\s*/?>[ \t]*)+", re.IGNORECASE)
SUP_SUB = re.compile(r"<(sup|sub)>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
FOOTNOTE_MARKS = re.compile(r"[\s*_∗†‡§¶⋆★,]*")  # a <sup> holding only these is a footnote mark
# Emphasis inside inline math: '_ht−_ 1' (italic h_t− and an upright subscript 1) → 'ht−1'.
MATH_CHARS = "−+=<>≤≥×·∙∈∉⊂∑∏∫√∞≈≠±′()[]|/^"
ITALIC_MATH_SPAN = re.compile(
    # one italic token with no space inside, and what may follow it: a subscript set upright
    r"(?<![\w*])_([^\s_]{1,16})_(?![\w*])(?:[ \t]+(\d{1,3}|[a-z])(?![\w*]))?"
)
OPERATOR_ENDINGS = "−+=-"


def _unwrap_sup_sub(match: re.Match) -> str:
    content = re.sub(r"\*\*|__|(?<!\w)[*_]|[*_](?!\w)", "", match.group(2)).strip()
    return "" if FOOTNOTE_MARKS.fullmatch(content) else content


def _unwrap_math_emphasis(line: str) -> str:
    """Drop italic markers around single math-like tokens: '_x_' → 'x', '_ht−_ 1' → 'ht−1'.

    Conservative: only a token without spaces that is one letter or holds a math character
    (an italic word such as '_not_' keeps its markers); an upright subscript after a token that
    ends in an operator ('−', '+', '=') is joined to it.
    """

    def unwrap(match: re.Match) -> str:
        token, follower = match.group(1), match.group(2)
        if not ((len(token) == 1 and token.isalpha()) or any(ch in MATH_CHARS for ch in token)):
            return match.group(0)
        if follower is None:
            return token
        if token[-1] in OPERATOR_ENDINGS:
            return token + follower
        return match.group(0).replace(f"_{token}_", token, 1)

    return ITALIC_MATH_SPAN.sub(unwrap, line)


def strip_converter_markup(md: str) -> str:
    """Remove the converter's HTML-ish markup, keeping the text it wraps.

    Figure text between 'Start/End of picture text' markers goes with its markers (it is the text
    drawn inside a figure, noise for retrieval); other HTML comments go; a run of ``<br>`` becomes
    one space (inside a table cell too, so the row stays one line); ``<sup>``/``<sub>`` keep their
    content without the tags (a footnote mark such as ``<sup>_∗_</sup>`` goes entirely). Code
    fences are left as they are.
    """
    parts = re.split(r"(^```.*?^```[^\n]*$)", md, flags=re.MULTILINE | re.DOTALL)
    for index in range(0, len(parts), 2):  # even parts are outside code fences
        part = PICTURE_TEXT_BLOCK.sub("\n\n", parts[index])
        part = HTML_COMMENT.sub("", part)
        part = BR_RUN.sub(" ", part)
        parts[index] = SUP_SUB.sub(_unwrap_sup_sub, part)
    return "".join(parts)


def _normalise_characters(line: str) -> str:
    for ligature, letters in LIGATURES.items():
        line = line.replace(ligature, letters)
    line = INVISIBLE.sub("", line)
    return line.replace("\u00a0", " ").replace("\t", " ")


def _promote_bold_heading(line: str) -> str | None:
    """Bold section titles as headings: '**3.3** **Training**' → '### 3.3 Training'.

    The converter writes headings set in the body font size as bold lines; as markdown headings
    they label chunks with their section and become preferred split points. Only numbered titles
    and known section names are promoted: other bold lines may be run-in emphasis.
    """
    if not BOLD_ONLY_LINE.match(line):
        return None
    title = re.sub(r"\s+", " ", _strip_markers(line))
    if not title or len(title.split()) > MAX_HEADING_WORDS or title.endswith((".", ",", ";", ":")):
        return None
    numbered = re.match(r"^(\d{1,2}(?:\.\d{1,2}){0,3})\.?\s+(\S)", title)
    if numbered and numbered.group(2).isupper():
        return "#" * min(6, numbered.group(1).count(".") + 2) + " " + title
    if any(_matches(_heading_keys(title), name) for name in _TOP_LEVEL_NAMES):
        return "## " + title
    return None


def _clean_line(line: str) -> str | None:
    """One line cleaned, or None to drop it. Table rows only get whitespace normalised."""
    stripped = _normalise_characters(line).strip()
    if not stripped:
        return ""
    if THEMATIC_BREAK.fullmatch(stripped) or EMPHASIS_ONLY.fullmatch(stripped):
        return None
    if PICTURE_PLACEHOLDER.search(stripped):
        return None
    if stripped.startswith("|"):  # a table row: bold cells unbolded, nothing else rewritten
        return re.sub(r" {2,}", " ", BOLD_SPAN.sub(r"\1", stripped))
    heading = ATX_HEADING.match(stripped)
    if heading:
        title = re.sub(r" {2,}", " ", _strip_markers(heading.group(2)))
        return f"{heading.group(1)} {title}" if title else None
    promoted = _promote_bold_heading(stripped)
    if promoted:
        return promoted
    stripped = CITATION_ARTIFACT.sub("", stripped)
    stripped = ITALIC_PUNCTUATION.sub("", stripped)
    stripped = _unwrap_math_emphasis(stripped)
    stripped = TRIPLE_EMPHASIS.sub("**", stripped)
    return re.sub(r" {2,}", " ", stripped).strip()


def clean_markdown(md: str, whole: str | None = None) -> str:
    """Remove converter debris while keeping content (the reference notebook's rules, made safer).

    Drops page separators (``-----``), picture placeholders, isolated number-only lines (page
    numbers) and running headers/footers (a short stand-alone line repeated at least
    ``RUNNING_LINE_MIN_REPEATS`` times); removes converter markup (``strip_converter_markup``) and
    italic markers inside math-like tokens; removes broken citation/italic markup (``*[12]*``, ``*,*``); un-bolds headings
    (``# **Intro**`` → ``# Intro``) and turns bold numbered or well-known section titles into
    headings (``**3.3** **Training**`` → ``### 3.3 Training``); rejoins sentences cut by a page
    break; turns ``***`` into ``**``; replaces ligatures (``ﬁ``) and
    invisible characters; squeezes runs of spaces and of blank lines. Table rows (``|...|``) are
    only unbolded (``|**Method**|`` → ``|Method|``) and get ``<br>`` as a space; fenced code is
    never rewritten; and numbers next to other text lines
    (formula parts, table columns) are kept. ``whole``, when given, is the document ``md`` was cut
    from (before the references were trimmed): running headers are counted over all of its pages,
    so a short paper whose body spans two pages still loses them.
    """
    cleaned: list[str] = []
    in_code = False
    for line in strip_converter_markup(md).splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            cleaned.append(line.rstrip())
            continue
        if in_code:
            cleaned.append(line.rstrip())
            continue
        result = _clean_line(line)
        if result is not None:
            cleaned.append(result)
    running = _running_lines(cleaned)
    if whole is not None:
        running |= _running_lines([line for line in map(_clean_line, strip_converter_markup(whole).splitlines())
                                   if line is not None])
    kept = []
    for index, line in enumerate(cleaned):
        isolated = (index == 0 or not cleaned[index - 1]) and (
            index + 1 == len(cleaned) or not cleaned[index + 1]
        )
        if line and isolated and NUMERIC_ONLY.fullmatch(line):
            continue  # a page number or stray counter standing alone
        if line and isolated and _running_key(line) in running:
            continue  # a running header or footer, repeated on every page
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(_rejoin_broken_paragraphs(kept))).strip()


FRONT_MATTER_MAX_LINES = 20
FRONT_MATTER_MAX_CHARS = 2000
FRONT_MATTER_MAX_LINE = 300  # a longer line is body prose, not a name or an affiliation


def _is_title_heading(line: str) -> bool:
    """A markdown heading that can be (part of) the title: not numbered, not a section name."""
    heading = _parse_heading(line, 0) if ATX_HEADING.match(line) else None
    return heading is not None and not heading.number and not any(
        _matches(_heading_keys(heading.title), name) for name in _KNOWN_NAMES
    )


def split_front_matter(text: str) -> tuple[str, str]:
    """Move the author / affiliation / e-mail block between the title and the abstract out of
    ``text``; returns ``(text without it, the block)`` (``(text, "")`` when there is none).

    The title is the leading markdown heading line(s) (or the first line); the block is what lies
    between it and the abstract's start (an ``Abstract`` heading or an inline ``Abstract—``). It is
    moved only when it looks like a title block: no heading inside, at most
    ``FRONT_MATTER_MAX_LINES`` non-empty lines of at most ``FRONT_MATTER_MAX_LINE`` characters and
    ``FRONT_MATTER_MAX_CHARS`` in all; otherwise nothing changes.
    """
    lines = text.splitlines()
    start = _find_start(lines, _headings(lines), ABSTRACT_HEADINGS)
    if start is None:
        return text, ""
    abstract_line = start[0].line
    title_end, heading_title = 0, False
    while title_end < abstract_line and (not lines[title_end].strip() or _is_title_heading(lines[title_end])):
        heading_title = heading_title or bool(lines[title_end].strip())
        title_end += 1
    if not heading_title:  # no heading title: the first non-empty line is the title
        title_end += 1
    block = [line for line in lines[title_end:abstract_line] if line.strip()]
    looks_like_title_block = (
        block
        and len(block) <= FRONT_MATTER_MAX_LINES
        and sum(len(line) for line in block) <= FRONT_MATTER_MAX_CHARS
        and all(len(line) <= FRONT_MATTER_MAX_LINE for line in block)
        and not any(_parse_heading(line, 0) for line in block)
    )
    if not looks_like_title_block:
        return text, ""
    kept = lines[:title_end] + [""] + lines[abstract_line:]
    cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    return cleaned, "\n".join(_strip_markers(line) for line in block)


# Markup the cleaned text should not carry: HTML comments and tags, emphasis markers (``*``, and
# ``_`` at a word edge; an underscore inside an identifier such as ``d_k`` is text).
MARKUP = re.compile(
    r"<!--.*?-->|</?(?:br|sup|sub|span|div|p|i|b|em|strong|u)\b[^>]*>|\*+|(?<![^\W_])_+|_+(?![^\W_])",
    re.IGNORECASE | re.DOTALL,
)


def markup_share(text: str) -> float:
    """Share of ``text``'s characters that are converter markup (``MARKUP``); 0.0 for empty text."""
    if not text:
        return 0.0
    return sum(len(match.group(0)) for match in MARKUP.finditer(text)) / len(text)


RUNNING_LINE_MIN_REPEATS = 3
RUNNING_LINE_MAX_CHARS = 120


def _running_key(line: str) -> str:
    """A line as compared for repetition: markers removed, digits as '#', case folded."""
    return re.sub(r"\d+", "#", re.sub(r"\s+", " ", _strip_markers(line))).strip().casefold()


def _running_lines(lines: list[str]) -> set[str]:
    """Keys of running headers/footers: a short line that stands alone (blank lines around it), is
    not a heading, table row, list item or code, and occurs at least ``RUNNING_LINE_MIN_REPEATS``
    times ('Preprint. Under review', 'Smith et al.', 'Page 3 of 9')."""
    counts: dict[str, int] = {}
    for index, line in enumerate(lines):
        if not line or len(line) > RUNNING_LINE_MAX_CHARS or not _is_prose(line):
            continue
        if (index and lines[index - 1]) or (index + 1 < len(lines) and lines[index + 1]):
            continue
        key = _running_key(line)
        if key and not NUMERIC_ONLY.fullmatch(key.replace("#", "0")):
            counts[key] = counts.get(key, 0) + 1
    return {key for key, count in counts.items() if count >= RUNNING_LINE_MIN_REPEATS}


def _is_prose(line: str) -> bool:
    return bool(line) and not line.startswith(("#", "|", "```", "- ", "* ", "+ ", ">"))


# A footnote as the converter gives it: its mark (a superscript digit, a dagger) first, often as a
# block quote (small text at the foot of a page): '> ¹ Code and data: https://...'.
FOOTNOTE = re.compile(r"^(?:>\s*)?([¹²³⁴⁵⁶⁷⁸⁹⁰†‡§]+)\s*(\S.*)$")


def _rejoin_broken_paragraphs(lines: list[str]) -> list[str]:
    """Join a paragraph that a page or column break cut mid-sentence.

    The converter ends a paragraph at every page/column break, so 'the attention mass regardless'
    and 'of their content' became two paragraphs (with the page number between them). A paragraph
    that ends without sentence punctuation followed, after blank lines, by one that starts in
    lower case is the same sentence. Footnotes the converter put between the two parts (the foot of
    the page) are set after the joined paragraph, as paragraphs of their own without the block-quote
    marker ('¹ Code and data: ...').
    """
    joined: list[str] = []
    held: list[str] = []  # footnotes met after an unfinished paragraph
    pending_blank = 0
    for line in lines:
        if not line:
            pending_blank += 1
            continue
        footnote = FOOTNOTE.match(line)
        if footnote:
            line = f"{footnote.group(1)} {footnote.group(2)}"
            previous = joined[-1] if joined else ""
            if held or (_is_prose(previous) and (previous[-1].isalnum() or previous[-1] in ",;-(")):
                held.append(line)
                pending_blank = 0
                continue
        previous = joined[-1] if joined else ""
        continues_sentence = (
            (pending_blank > 0 or held)
            and _is_prose(previous)
            and _is_prose(line)
            and line[0].islower()
            and (previous[-1].isalnum() or previous[-1] in ",;-(")
        )
        if continues_sentence:
            joined[-1] = previous + ("" if previous.endswith("-") else " ") + line
            for note in held:
                joined.extend(["", note])
            if held:
                joined.append("")
        else:
            for note in held:
                joined.extend(["", note])
            joined.extend([""] * max(1, pending_blank) if (held or pending_blank) else [])
            joined.append(line)
        held = []
        pending_blank = 0
    for note in held:
        joined.extend(["", note])
    joined.extend([""] * pending_blank)
    return joined


# ---------------------------------------------------------------------------------------- sections


CONCLUSION_FROM_HEADING = "heading"
CONCLUSION_MISSING = "missing"
CONCLUSION_FALLBACK_PREFIX = "fallback:"
# Sections that may follow the stand-in conclusion without making it "not the end of the body".
_ENDING_NAMES = CONCLUSION_FALLBACK_HEADINGS + ("limitations", "broader impacts", "ethical considerations")
_BACK_MATTER_NAMES: tuple[str, ...] = (
    "acknowledgments", "acknowledgements", "acknowledgment", "acknowledgement", "appendix",
    "broader impact", "ethics statement", "author contributions", "funding", "благодарности",
    "приложение",
)


@dataclass
class Sections:
    """The abstract and conclusion of a paper ("" when not found, and then named in ``missing``).

    ``conclusion_source`` says where the conclusion came from: ``"heading"`` (a conclusion heading),
    ``"fallback:<title>"`` (no conclusion heading; the last body section, e.g. ``fallback:5
    Discussion``, stands in) or ``"missing"``.
    """

    abstract: str
    conclusion: str
    missing: list[str] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)
    conclusion_source: str = CONCLUSION_MISSING

    def to_dict(self) -> dict:
        return asdict(self)


def _inline_start(line: str, alias: str) -> str | None:
    """Text after 'Abstract—', '**Abstract.**', 'ABSTRACT:' ... on the same line, or None."""
    plain = re.sub(r"\*\*|__", "", line).strip().lstrip("#").strip().lstrip("*_").strip()
    pattern = rf"^(?:{NUMBER_PREFIX.pattern})?{re.escape(alias)}[*_]*{SEPARATOR}[*_]*(\S.*)$"
    match = re.match(pattern, plain, re.IGNORECASE)
    return _strip_markers(match.group(1)) if match else None


def _names_match(title: str, aliases: tuple[str, ...], compound: bool = True) -> bool:
    """The title is one of ``aliases`` ('5 Discussion'), or starts with one in a compound title
    ('Discussion and Limitations', 'Summary, Outlook') when ``compound``."""
    keys = _heading_keys(title)
    if any(_matches(keys, alias) for alias in aliases):
        return True
    return compound and any(
        re.match(rf"^{re.escape(alias)}\s*(?:,|&|\band\b)", key) for alias in aliases for key in keys
    )


def _find_start(
    lines: list[str], headings: list[_Heading], aliases: tuple[str, ...]
) -> tuple[_Heading, str] | None:
    for alias in aliases:  # exact heading titles first, in alias priority order
        for heading in headings:
            if _matches(_heading_keys(heading.title), alias):
                return heading, ""
    for alias in aliases:  # then compound titles: 'Conclusions, Limitations and Future Work'
        for heading in headings:
            keys = _heading_keys(heading.title)
            if any(re.match(rf"^{re.escape(alias)}\s*(?:,|&|\band\b)", key) for key in keys):
                return heading, ""
    for alias in aliases:  # last, a name with its text on the same line ('Abstract. We ...')
        for index, line in enumerate(lines):
            rest = _inline_start(line, alias)
            if rest:
                return _Heading(index, alias, 7, ""), rest
    return None


def _ends_section(start: _Heading, candidate: _Heading) -> bool:
    if start.number and candidate.number.startswith(start.number + "."):
        return False  # a numbered sub-section ('5.1 Limitations' under '5 Conclusion')
    if candidate.number:
        return True  # any other numbered heading starts a new section, whatever its level
    if any(_matches(_heading_keys(candidate.title), name) for name in _TOP_LEVEL_NAMES):
        return True  # 'Acknowledgments', 'References'...: converters give them arbitrary levels
    # An unnumbered deeper markdown heading ('### Limitations' under '## Conclusion') stays inside.
    return not (start.level < 7 and candidate.level < 7 and candidate.level > start.level)


def _section_body(lines: list[str], headings: list[_Heading], start: _Heading, first_text: str = "") -> str:
    heading_at = {heading.line: heading for heading in headings}
    body = [first_text] if first_text else []
    for index in range(start.line + 1, len(lines)):
        candidate = heading_at.get(index)
        if candidate is not None and _ends_section(start, candidate):
            break
        if SECTION_TERMINATORS.match(lines[index]):
            break
        body.append(lines[index])
    return re.sub(r"\n{3,}", "\n\n", "\n".join(body)).strip()


def _section_text(lines: list[str], headings: list[_Heading], aliases: tuple[str, ...]) -> str:
    found = _find_start(lines, headings, aliases)
    return _section_body(lines, headings, *found) if found else ""


def _top_level(headings: list[_Heading]) -> list[_Heading]:
    """Headings of top-level sections: numbered '5'/'V.' (not '5.1'), or unnumbered at most as deep
    as the numbered top-level markdown headings (a '### Discussion' under '## 4 Results' is not)."""
    numbered_levels = [h.level for h in headings if h.number and "." not in h.number and h.level < 7]
    deepest = min(numbered_levels) if numbered_levels else 6
    return [
        h for h in headings
        if ("." not in h.number) and (h.number or h.level <= deepest or h.level == 7)
    ]


def _fallback_conclusion_start(headings: list[_Heading], after_line: int) -> _Heading | None:
    """The last top-level body section before the references when it is a paper ending
    (Discussion, Summary, Outlook, …), or None.

    Back matter (acknowledgments, appendix, funding …) is not body; a section named as an ending
    counts only if nothing but endings and back matter follows it (an early 'Discussion of prior
    work' section followed by experiments is not the paper's conclusion).
    """
    body = [
        h for h in _top_level(headings)
        if h.line > after_line and not _names_match(h.title, _BACK_MATTER_NAMES, compound=False)
    ]
    for position in range(len(body) - 1, -1, -1):
        heading = body[position]
        if _names_match(heading.title, CONCLUSION_FALLBACK_HEADINGS):
            return heading
        if not _names_match(heading.title, _ENDING_NAMES):
            return None  # a core section comes after every ending: no stand-in
    return None


def extract_sections(md: str) -> Sections:
    """Find the abstract and the conclusion in cleaned (or raw) markdown; never raises.

    Without a conclusion heading, the last body section before the references stands in when it
    is a paper ending (``CONCLUSION_FALLBACK_HEADINGS``: Discussion, Summary, Outlook,
    Обсуждение …); ``conclusion_source`` records which (``fallback:<title>``).
    """
    lines = md.splitlines()
    headings = _headings(lines)
    abstract_start = _find_start(lines, headings, ABSTRACT_HEADINGS)
    abstract = _section_body(lines, headings, *abstract_start) if abstract_start else ""
    conclusion = _section_text(lines, headings, CONCLUSION_HEADINGS)
    source = CONCLUSION_FROM_HEADING if conclusion else CONCLUSION_MISSING
    if not conclusion:
        fallback = _fallback_conclusion_start(headings, abstract_start[0].line if abstract_start else -1)
        if fallback is not None:
            conclusion = _section_body(lines, headings, fallback)
            source = CONCLUSION_FALLBACK_PREFIX + fallback.title if conclusion else CONCLUSION_MISSING
    missing = [
        name for name, text in (("abstract", abstract), ("conclusion", conclusion)) if not text
    ]
    return Sections(abstract, conclusion, missing, [heading.title for heading in headings], source)


@dataclass
class PaperText:
    """A paper's cleaned text (references cut) with its sections and sizes.

    ``front_matter`` holds the author / affiliation / e-mail lines that stood between the title
    and the abstract: metadata, kept out of ``text`` (and so out of chunks and embeddings).
    """

    text: str
    sections: Sections
    references_heading: str | None
    n_chars_markdown: int
    n_chars_text: int
    front_matter: str = ""

    def sections_record(self) -> dict:
        """What the text stage stores next to the text (``sections.json``)."""
        return {
            "abstract": self.sections.abstract,
            "conclusion": self.sections.conclusion,
            "conclusion_source": self.sections.conclusion_source,
            "missing": list(self.sections.missing),
            "headings": list(self.sections.headings),
            "references_heading": self.references_heading,
            "front_matter": self.front_matter,
        }


def process_markdown(md: str) -> PaperText:
    """Trim the references, clean, move the author block out, then extract sections."""
    trimmed, references_heading = trim_references(md)
    text, front_matter = split_front_matter(clean_markdown(trimmed, whole=md))
    return PaperText(
        text=text,
        sections=extract_sections(text),
        references_heading=references_heading,
        n_chars_markdown=len(md),
        n_chars_text=len(text),
        front_matter=front_matter,
    )
