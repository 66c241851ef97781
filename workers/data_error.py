"""The one error a data set raises when a user can fix it: its own module, so that reading
files (`workers.files`) and preparing arrays (`workers.data`) both raise it without
importing each other."""

from __future__ import annotations


class DataError(ValueError):
    """The data set cannot be used as given; the message says why."""
