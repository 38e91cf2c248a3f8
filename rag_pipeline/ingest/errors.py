"""Ingestion errors. Every message starts with the paper id, so a failed partition says which paper
broke and why without a traceback."""

from __future__ import annotations


class IngestError(Exception):
    """A paper that cannot be ingested. ``str(err)`` is ``"paper '<id>': <reason>"``."""

    def __init__(self, paper_id: str, reason: str):
        self.paper_id = paper_id
        self.reason = reason
        super().__init__(f"paper {paper_id!r}: {reason}")

    def __reduce__(self):
        # Exceptions with custom __init__ arguments do not pickle by default (multiprocess
        # executors send them between processes).
        return (type(self), (self.paper_id, self.reason))


class InvalidSourceError(IngestError):
    """The source cannot be used at all: an invalid arXiv id, a missing local file, no source."""


class DownloadError(IngestError):
    """The PDF could not be downloaded (after retries where the failure was transient)."""

    def __init__(self, paper_id: str, reason: str, url: str = "", attempts: int = 0):
        self.url = url
        self.attempts = attempts
        super().__init__(paper_id, reason)

    def __reduce__(self):
        return (type(self), (self.paper_id, self.reason, self.url, self.attempts))


class NotAPdfError(IngestError):
    """The file does not start with the ``%PDF-`` header (an HTML error page, an empty file...)."""


class CorruptPdfError(IngestError):
    """The file claims to be a PDF but is truncated or damaged (or the converter failed on it)."""


class EncryptedPdfError(IngestError):
    """The PDF needs a password to be read."""


class NoTextLayerError(IngestError):
    """No page has extractable text (a scanned or image-only PDF): it needs OCR first."""
