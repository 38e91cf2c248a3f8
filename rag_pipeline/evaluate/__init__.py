"""Evaluation: text metrics with signatures, the LLM judge, paired statistics, leaderboard, report.

Pure Python (no Dagster). Modules:
- ``metrics``: one ``Metric`` class per family (BLEU, ROUGE, chrF, embedding cosine, length,
  language, latency) with its names, direction and signature, in a registry.
- ``text_metrics``: ``score_generations``, every registered metric over a generations frame as
  rows of the ``metrics`` schema.
- ``study``: the reference notebook's study recomputed with this package's metric code.
- ``judge``: listwise / pairwise / graded LLM-as-a-judge over any chat backend, one ``JudgeMode``
  class per mode.
- ``direction``: which way a metric or judge score is better.
- ``statistics``: per-item ranks, bootstrap CIs, paired tests with Holm correction, Bradley-Terry.
- ``leaderboard``: the tables; ``report``: one self-contained HTML file.
"""
