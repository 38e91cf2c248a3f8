'''Per-generation text metrics: one ``Metric`` class per family, one module per family.

A metric family (``bleu``, ``rouge``, ``chrf``, ``cosine``, ``length``, ``language``,
``latency``) is a ``Metric`` subclass that states, beside its code, the metric names it yields
(ROUGE yields 9, length 2), its ``direction`` (higher / lower is better, or descriptive), whether
it needs a reference, an output or an embedder, the ``signature`` that reproduces each value, and
``score`` (or ``score_all`` for a batch). ``@register_metric`` adds it to ``METRICS``; everything
else (``text_metrics.score_generations``, the leaderboard's directions, the valid names in error
messages) reads that registry.

Adding a metric is one class in one new module, plus its import below (the import order is the
order of a generation's rows), e.g. ``metrics/exclamations.py``::

    from rag_pipeline.evaluate.metrics.base import Direction, Metric, Score
    from rag_pipeline.evaluate.metrics.registry import register_metric

    @register_metric
    class Exclamations(Metric):
        family = "exclamations"
        names = ("exclamations",)
        direction = Direction.LOWER
        needs_reference = False

        def signature(self, name):
            return {"metric": name, "definition": "count of '!' in output"}

        def score(self, sample):
            return {"exclamations": Score(float(sample.hypothesis.count("!")), self.signature("exclamations"))}
'''

from rag_pipeline.evaluate.metrics.base import Direction, DocumentEmbedder, Metric, Sample, Score
from rag_pipeline.evaluate.metrics.registry import (
    METRICS,
    create_metric,
    direction_of,
    metric_class,
    metric_families,
    register_metric,
)

# Importing a module registers its metric; this order is the default order of a generation's rows,
# so the import sorter must leave it alone.
# isort: off
from rag_pipeline.evaluate.metrics import bleu, rouge, chrf, cosine, length, language, latency  # noqa: F401
# isort: on

__all__ = [
    "METRICS", "Direction", "DocumentEmbedder", "Metric", "Sample", "Score", "create_metric", "direction_of",
    "metric_class", "metric_families", "register_metric",
]
