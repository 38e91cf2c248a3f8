"""Markdown → the text the pipeline works on: cut the references, clean converter debris, and find
the abstract and the conclusion (the summarisation task's input).

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
    if stripped.startswith("|"):
        return re.sub(r" {2,}", " ", stripped)
    heading = ATX_HEADING.match(stripped)
    if heading:
        title = re.sub(r" {2,}", " ", _strip_markers(heading.group(2)))
        return f"{heading.group(1)} {title}" if title else None
    promoted = _promote_bold_heading(stripped)
    if promoted:
        return promoted
    stripped = CITATION_ARTIFACT.sub("", stripped)
    stripped = ITALIC_PUNCTUATION.sub("", stripped)
    stripped = TRIPLE_EMPHASIS.sub("**", stripped)
    return re.sub(r" {2,}", " ", stripped).strip()


def clean_markdown(md: str) -> str:
    """Remove converter debris while keeping content (the reference notebook's rules, made safer).

    Drops page separators (``-----``), picture placeholders and isolated number-only lines (page
    numbers); removes broken citation/italic markup (``*[12]*``, ``*,*``); un-bolds headings
    (``# **Intro**`` → ``# Intro``) and turns bold numbered or well-known section titles into
    headings (``**3.3** **Training**`` → ``### 3.3 Training``); rejoins sentences cut by a page
    break; turns ``***`` into ``**``; replaces ligatures (``ﬁ``) and
    invisible characters; squeezes runs of spaces and of blank lines. Table rows (``|...|``) and
    fenced code are never rewritten beyond whitespace, and numbers next to other text lines
    (formula parts, table columns) are kept.
    """
    cleaned: list[str] = []
    in_code = False
    for line in md.splitlines():
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
    kept = []
    for index, line in enumerate(cleaned):
        isolated = (index == 0 or not cleaned[index - 1]) and (
            index + 1 == len(cleaned) or not cleaned[index + 1]
        )
        if line and isolated and NUMERIC_ONLY.fullmatch(line):
            continue  # a page number or stray counter standing alone
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(_rejoin_broken_paragraphs(kept))).strip()


def _is_prose(line: str) -> bool:
    return bool(line) and not line.startswith(("#", "|", "```", "- ", "* ", "+ ", ">"))


def _rejoin_broken_paragraphs(lines: list[str]) -> list[str]:
    """Join a paragraph that a page or column break cut mid-sentence.

    The converter ends a paragraph at every page/column break, so 'the attention mass regardless'
    and 'of their content' became two paragraphs (with the page number between them). A paragraph
    that ends without sentence punctuation followed, after blank lines, by one that starts in
    lower case is the same sentence.
    """
    joined: list[str] = []
    pending_blank = 0
    for line in lines:
        if not line:
            pending_blank += 1
            continue
        previous = joined[-1] if joined else ""
        continues_sentence = (
            pending_blank > 0
            and _is_prose(previous)
            and _is_prose(line)
            and line[0].islower()
            and (previous[-1].isalnum() or previous[-1] in ",;-(")
        )
        if continues_sentence:
            joined[-1] = previous + ("" if previous.endswith("-") else " ") + line
        else:
            joined.extend([""] * pending_blank)
            joined.append(line)
        pending_blank = 0
    joined.extend([""] * pending_blank)
    return joined


# ---------------------------------------------------------------------------------------- sections


@dataclass
class Sections:
    """The abstract and conclusion of a paper ("" when not found, and then named in ``missing``)."""

    abstract: str
    conclusion: str
    missing: list[str] = field(default_factory=list)
    headings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _inline_start(line: str, alias: str) -> str | None:
    """Text after 'Abstract—', '**Abstract.**', 'ABSTRACT:' ... on the same line, or None."""
    plain = re.sub(r"\*\*|__", "", line).strip().lstrip("#").strip().lstrip("*_").strip()
    pattern = rf"^(?:{NUMBER_PREFIX.pattern})?{re.escape(alias)}[*_]*{SEPARATOR}[*_]*(\S.*)$"
    match = re.match(pattern, plain, re.IGNORECASE)
    return _strip_markers(match.group(1)) if match else None


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


def _section_text(lines: list[str], headings: list[_Heading], aliases: tuple[str, ...]) -> str:
    found = _find_start(lines, headings, aliases)
    if found is None:
        return ""
    start, first_text = found
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


def extract_sections(md: str) -> Sections:
    """Find the abstract and the conclusion in cleaned (or raw) markdown; never raises."""
    lines = md.splitlines()
    headings = _headings(lines)
    abstract = _section_text(lines, headings, ABSTRACT_HEADINGS)
    conclusion = _section_text(lines, headings, CONCLUSION_HEADINGS)
    missing = [
        name for name, text in (("abstract", abstract), ("conclusion", conclusion)) if not text
    ]
    return Sections(abstract, conclusion, missing, [heading.title for heading in headings])


@dataclass
class PaperText:
    """A paper's cleaned text (references cut) with its sections and sizes."""

    text: str
    sections: Sections
    references_heading: str | None
    n_chars_markdown: int
    n_chars_text: int


def process_markdown(md: str) -> PaperText:
    """Trim the references, clean, then extract sections from the cleaned text."""
    trimmed, references_heading = trim_references(md)
    text = clean_markdown(trimmed)
    return PaperText(
        text=text,
        sections=extract_sections(text),
        references_heading=references_heading,
        n_chars_markdown=len(md),
        n_chars_text=len(text),
    )
