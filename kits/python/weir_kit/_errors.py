"""The kit's error type."""


class Error(Exception):
    """A module error whose message is the whole reason.

    Raised from ``process`` it fails the record with exactly this message
    (other exceptions are prefixed with their type name); raised from a
    class's ``__init__`` it rejects the module.
    """


def reason(exc: BaseException) -> str:
    """The dead-letter reason for an exception."""
    if isinstance(exc, Error):
        return str(exc)
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
