"""Logging through the host (``wasi:logging``); Python's ``logging`` natively."""

import logging as _logging

from . import _state

_NATIVE = _logging.getLogger("weir.module")
_LEVELS = ("trace", "debug", "info", "warn", "error", "critical")
_PY_LEVELS = {
    "trace": _logging.DEBUG,
    "debug": _logging.DEBUG,
    "info": _logging.INFO,
    "warn": _logging.WARNING,
    "error": _logging.ERROR,
    "critical": _logging.CRITICAL,
}


def _emit(level: str, message: str) -> None:
    context = _state.name()
    try:
        from wit_world.imports import logging as wasi_logging  # only inside the component
    except ImportError:
        _NATIVE.log(_PY_LEVELS[level], "%s: %s", context, message)
        return
    wasi_logging.log(getattr(wasi_logging.Level, level.upper()), context, str(message))


class _Log:
    """``weir.log.info("...")`` and friends; the host rate-limits per module."""

    def trace(self, message: str) -> None:
        _emit("trace", message)

    def debug(self, message: str) -> None:
        _emit("debug", message)

    def info(self, message: str) -> None:
        _emit("info", message)

    def warn(self, message: str) -> None:
        _emit("warn", message)

    def error(self, message: str) -> None:
        _emit("error", message)


log = _Log()
