"""The course's data errors: each message says what went wrong and what to do about it.

All of them derive from :class:`DataError`, so a notebook cell can catch every data problem
with one ``except DataError``.

- :class:`DataUnavailable`: the data is not on this machine and could not be fetched
  (no internet, server down, package not installed). The message names the file, where it
  would come from, and the exact path an instructor can copy it to for an offline class.
- :class:`ChecksumMismatch`: a file's checksum differs from the official one. A bad file the
  course downloaded is moved aside (``NAME.bad-<timestamp>``) and never used;
  :class:`StagedCopy`, a file someone put in the cache, is left where it is.
- :class:`CorruptFile`: a file is not what its name says (an HTML error page saved as
  ``.npz``, a truncated download, arrays of the wrong shape or type).
"""

from __future__ import annotations


class DataError(Exception):
    """Base class of every data problem the course reports."""


class DataUnavailable(DataError):
    """The data is neither on this machine nor reachable from it."""


class ChecksumMismatch(DataError):
    """A file's checksum differs from the official one."""


class StagedCopy(ChecksumMismatch):
    """A file someone put in the cache whose checksum is not the official one: it is left
    as it is (never renamed, moved or downloaded over)."""


class CorruptFile(DataError):
    """A file is damaged or is not the kind of file its name says."""
