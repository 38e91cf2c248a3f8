"""Render every demo paper source into the shipped PDFs.

Sources live in ``data/demo_corpus/sources/<paper_id>.yaml``; the PDFs go to
``data/demo_corpus/pdf/<paper_id>.pdf``. Run ``python -m rag_pipeline.demo_corpus.build``
(the Makefile's ``corpus`` target) after editing a source, and ship the re-rendered PDFs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from rag_pipeline.config import read_yaml
from rag_pipeline.demo_corpus.render import DemoSourceError, render_paper, validate_source
from rag_pipeline.ids import validate_slug
from rag_pipeline.settings import data_dir


def corpus_dir() -> Path:
    """``data/demo_corpus`` (follows ``$RAG_PIPELINE_DATA``)."""
    return data_dir() / "demo_corpus"


def source_paths(sources_dir: Path | None = None) -> list[Path]:
    """The demo paper sources, sorted by paper id."""
    directory = Path(sources_dir) if sources_dir else corpus_dir() / "sources"
    return sorted(directory.glob("*.yaml"))


def load_source(path: Path) -> dict:
    """Read and validate one source file.

    Its ``id`` must be a ``demo-`` slug equal to the file stem; errors name the file.
    """
    path = Path(path)
    source = read_yaml(path, DemoSourceError, "demo paper source")
    if not isinstance(source, dict):
        raise DemoSourceError(f"{path}: expected a mapping with title, authors, abstract, sections")
    paper_id = validate_slug(str(source.get("id", "")), f"paper id in {path}")
    if not paper_id.startswith("demo-") or paper_id != path.stem:
        raise DemoSourceError(
            f"{path}: paper id {paper_id!r} must start with 'demo-' and match the file name"
        )
    try:
        validate_source(source)
    except DemoSourceError as exc:
        raise DemoSourceError(f"{path}: {exc}") from exc
    return source


def load_sources(sources_dir: Path | None = None) -> dict[str, dict]:
    """Every demo paper source by paper id."""
    return {source["id"]: source for source in map(load_source, source_paths(sources_dir))}


def pdf_path(paper_id: str, out_dir: Path | None = None) -> Path:
    """Where the shipped PDF of a demo paper lives."""
    return (Path(out_dir) if out_dir else corpus_dir() / "pdf") / f"{paper_id}.pdf"


def render_source(source: dict, out_dir: Path | None = None) -> Path:
    """Render one loaded source with the column layout it asks for (``columns``, default 1)."""
    return render_paper(
        source, pdf_path(source["id"], out_dir), columns=int(source.get("columns", 1))
    )


def build_demo_corpus(
    out_dir: Path | None = None, sources_dir: Path | None = None, progress: bool = True
) -> list[Path]:
    """Render every source into ``out_dir`` (default ``data/demo_corpus/pdf``).

    Returns the PDF paths, one per source, in paper id order.
    """
    sources = load_sources(sources_dir)
    if not sources:
        where = sources_dir or corpus_dir() / "sources"
        raise DemoSourceError(f"no demo paper sources (*.yaml) found in {where}")
    return [
        render_source(source, out_dir)
        for source in tqdm(sources.values(), desc="render demo papers", disable=not progress)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=None, help="default: data/demo_corpus/pdf")
    parser.add_argument("--no-progress", action="store_true", help="disable the progress bar")
    args = parser.parse_args(argv)
    for path in build_demo_corpus(args.out_dir, progress=not args.no_progress):
        print(path)


if __name__ == "__main__":
    main()
