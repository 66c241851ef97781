"""Errors named for what the caller should do; ORM and driver errors never escape `storage`."""

from __future__ import annotations


class StorageError(Exception):
    """Any error of the store; the subclasses say what the caller should do."""


class StorageUnavailable(StorageError):
    """The database failed or could not be reached; retrying may help."""


class NotFoundError(StorageError):
    """The asked-for object does not exist; retrying will not help."""


class StudyNotFound(NotFoundError):
    def __init__(self, study_id: int) -> None:
        super().__init__(f"study {study_id} does not exist")
        self.study_id = study_id


class TrialNotFound(NotFoundError):
    def __init__(self, study_id: int, number: int) -> None:
        super().__init__(f"trial {number} of study {study_id} does not exist")
        self.study_id = study_id
        self.number = number


class ConflictError(StorageError):
    """The write breaks a uniqueness or reference rule (e.g. a trial number used twice);
    retrying the same write will not help."""


class StudyStateChanged(ConflictError):
    """A compare-and-set of a study's state found it in another state: another command
    (or the study's driver) changed it first."""

    def __init__(self, study_id: int, state: str) -> None:
        super().__init__(f"study {study_id} is {state} now")
        self.study_id = study_id
        self.state = state


class InvalidCursorError(StorageError):
    """A pagination cursor was not one this store handed out."""
