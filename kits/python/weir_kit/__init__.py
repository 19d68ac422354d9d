"""Weir module kit for Python.

Write a Weir pipeline module as a plain Python function (or a small class),
decorate it with ``@weir_kit.module``, test it natively with pytest and
build it into a WebAssembly component with componentize-py::

    import weir_kit as weir
    from weir_kit import Processor  # the component's export; keep this line

    @weir.module(name="add-source", version="0.1.0")
    def process(record: weir.Record, config: weir.Config) -> weir.Outcome:
        doc = record.json()                 # dict; invalid JSON fails the record
        doc[config.get("key", "source")] = record.topic
        return weir.emit(doc)

The kit hides the component model's edges from the author:

* ``init`` state lives at module level for the instance's lifetime (the
  generated export class is created afresh for every call, so anything
  stored on it would be gone by ``process``);
* an exception in ``process`` fails only its record, with
  ``"<ExceptionType>: <message>"`` as the dead-letter reason, instead of
  trapping the instance (an uncaught exception in an export without an
  error result panics componentize-py's runtime);
* an exception while parsing config becomes ``init``'s error, which
  rejects the module with that message.

Outside WebAssembly (pytest) the same code runs unchanged: ``weir.run``
drives a module through init and a batch exactly as the host does, and
log lines go to Python's ``logging``.
"""

from ._config import Config
from ._errors import Error
from ._log import log
from ._module import module, run
from ._outcome import Document, Drop, Emit, Fail, Outcome, drop, emit, fail
from ._record import Header, Record
from ._component import Processor

__all__ = [
    "Config",
    "Document",
    "Drop",
    "Emit",
    "Error",
    "Fail",
    "Header",
    "Outcome",
    "Processor",
    "Record",
    "drop",
    "emit",
    "fail",
    "log",
    "module",
    "run",
]
