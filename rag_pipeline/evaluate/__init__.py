"""Evaluation: text metrics with signatures, the LLM judge, paired statistics, leaderboard, report.

Pure Python (no Dagster). Modules:
- ``text_metrics``: per-generation metrics (BLEU, ROUGE, chrF, embedding cosine, length, language,
  latency) as rows of the ``metrics`` schema.
- ``study``: the reference notebook's study recomputed with this package's metric code.
- ``judge``: listwise / pairwise / graded LLM-as-a-judge over any chat backend.
- ``statistics``: per-item ranks, bootstrap CIs, paired tests with Holm correction, Bradley-Terry.
- ``leaderboard``: the tables; ``report``: one self-contained HTML file.
"""
