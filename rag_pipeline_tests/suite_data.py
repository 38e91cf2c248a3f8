"""The data directory the suite runs on: a copy of the repository's data/ whose pipeline.yaml has
query translation switched off (``retrieval.translate_with: null``), everything else as shipped.

The shipped default translates each Russian question with the packaged LLM before retrieval
(README, "Query translation"). Most tests ingest demo papers only to exercise the graph (runs,
automation, celery, crash safety); with translation on, every one of them would load the LLM and
translate its papers' questions in a fresh state, and ``retrievals`` would queue behind generation
in the ``gpu`` pool. Translation itself is tested where it is the point
(``index/test_translate.py``, with the real packaged model there), and the shipped file is parsed
as shipped (``test_config.py``). The root conftest points ``RAG_PIPELINE_DATA`` here, so in-process
definitions and the subprocesses tests start see the same copy; tests that need a private,
editable data directory copy this one.

No import of rag_pipeline here: it must be set up before the package reads its environment.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import yaml

SHIPPED_DATA = Path(__file__).resolve().parents[1] / "data"


def make_suite_data(target: Path) -> Path:
    """Copy ``data/`` to ``target`` with query translation off in its pipeline.yaml."""
    shutil.copytree(SHIPPED_DATA, target)
    pipeline = target / "pipeline.yaml"
    config = yaml.safe_load(pipeline.read_text(encoding="utf-8"))
    config.setdefault("retrieval", {})["translate_with"] = None
    pipeline.write_text(
        "# written by rag_pipeline_tests/suite_data.py: the shipped file with retrieval.translate_with: null\n"
        + yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return target


_root = Path(tempfile.mkdtemp(prefix="rag-suite-data-"))
atexit.register(shutil.rmtree, _root, ignore_errors=True)
SUITE_DATA = make_suite_data(_root / "data")
