"""The error raised for data files that are present but unusable."""
from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """A data file or folder is malformed, misplaced or not the expected data set.

    The message is one line that names the file or folder and what is wrong with it
    (format, shape, label range, example count, or a file where a folder should be).
    """
