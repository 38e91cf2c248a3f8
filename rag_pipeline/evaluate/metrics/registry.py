"""The metric registry: ``@register_metric`` on a ``Metric`` class makes it selectable by its
family or by any of its names, and tells the leaderboard its direction."""

from __future__ import annotations

from rag_pipeline.evaluate.metrics.base import Direction, DocumentEmbedder, Metric

# family -> class, in registration order, which is the default order of a generation's rows
METRICS: dict[str, type[Metric]] = {}


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Class decorator: add a metric family to the registry (its family and names must be new)."""
    if not (isinstance(getattr(cls, "names", None), tuple) and cls.names):
        raise TypeError(f"{cls.__name__}.names must be a non-empty tuple of metric names")
    if not isinstance(getattr(cls, "direction", None), Direction):
        raise TypeError(f"{cls.__name__}.direction must be a Direction")
    if not isinstance(getattr(cls, "needs_reference", None), bool):
        raise TypeError(f"{cls.__name__}.needs_reference must be True or False")
    taken = {*METRICS, *(name for known in METRICS.values() for name in known.names)}
    clashes = sorted(taken & {cls.family, *cls.names})
    if clashes:
        raise ValueError(f"metric {cls.__name__}: {', '.join(clashes)} already registered")
    METRICS[cls.family] = cls
    return cls


def metric_families() -> dict[str, tuple[str, ...]]:
    """Family -> the metric names it yields, in registration order."""
    return {family: cls.names for family, cls in METRICS.items()}


def metric_class(name: str) -> type[Metric]:
    """The class of a family or of one of its metric names (``rougeL_fmeasure`` -> ``Rouge``)."""
    if name in METRICS:
        return METRICS[name]
    for cls in METRICS.values():
        if name in cls.names:
            return cls
    raise ValueError(f"unknown metric {name!r}")


def create_metric(family: str, embedder: DocumentEmbedder | None = None) -> Metric:
    """An instance of a family's metric, given the run's embedder when it needs one."""
    cls = METRICS[family]
    return cls(embedder) if cls.needs_embedder else cls()


def direction_of(name: str) -> Direction:
    """The direction of a metric name or family; ``DESCRIPTIVE`` for a name no metric yields."""
    try:
        return metric_class(name).direction
    except ValueError:
        return Direction.DESCRIPTIVE
