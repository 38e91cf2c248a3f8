"""Which way a score is better; shared by the text metrics and the judge modes (and light to
import, so the judge does not load the metric libraries)."""

from enum import IntEnum


class Direction(IntEnum):
    """Which way a metric is better; the int values are what the statistics take (+1, -1, 0)."""

    HIGHER = 1
    LOWER = -1
    DESCRIPTIVE = 0  # not ranked, not tested (a length, say)
