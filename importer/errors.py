"""Domain errors. Adapters (API, UI) turn them into status codes and notifications."""


class ImporterError(Exception):
    """Base class; `str(error)` is a message fit for a user."""


class NotFound(ImporterError):
    pass


class Conflict(ImporterError):
    pass


class InvalidInput(ImporterError):
    pass
