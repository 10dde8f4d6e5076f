"""The errors of reading a log."""

from __future__ import annotations


class LogFormatError(ValueError):
    """A path that is no training log nbtrain can read.

    The message is one line: the file, the formats tried and, for each, what was missing.
    """


class NotThisFormat(Exception):
    """Raised by one format's reader: the file is not in that format. The message says what
    was missing; ``read_log`` collects them into one ``LogFormatError``."""


__all__ = ["LogFormatError", "NotThisFormat"]
