"""The component export componentize-py binds (``Processor``).

componentize-py instantiates this class afresh for every call, so it keeps
nothing on ``self``: ``init`` stores the running module in ``_state`` and
``process`` reads it from there. ``process`` never raises (an exception in
an export without an error result panics the runtime): every failure is a
``fail`` outcome per record.
"""

from typing import Any, List

from . import _state
from ._config import Config
from ._errors import reason
from ._outcome import Drop, Emit, Fail
from ._record import Header, Record


def _types():
    from wit_world.imports import types  # generated bindings, only inside the component

    return types


class Processor:
    def describe(self) -> Any:
        types = _types()
        registered = _state.registered
        if registered is None:
            return types.ModuleInfo(name="unregistered", version="0")
        return types.ModuleInfo(name=registered.name, version=registered.version)

    def init(self, config: List[Any]) -> None:
        from componentize_py_types import Err

        registered = _state.registered
        if registered is None:
            raise Err("no module registered: decorate a function or class with @weir_kit.module")
        try:
            _state.instance = registered.start(Config(config))
            _state.init_error = None
        except Exception as e:  # noqa: BLE001 - init errors reject the module
            _state.instance = None
            _state.init_error = reason(e)
            raise Err(_state.init_error) from None

    def process(self, batch: List[Any]) -> List[Any]:
        types = _types()
        running = _state.instance
        if running is None:
            why = _state.init_error or "process called before a successful init"
            return [types.Outcome_Fail(why) for _ in batch]
        records = [_record(r) for r in batch]
        try:
            outcomes = running.process_batch(records)
            return [_to_wit(types, o) for o in outcomes]
        except Exception as e:  # noqa: BLE001 - never let an exception reach the runtime
            why = reason(e)
            return [types.Outcome_Fail(why) for _ in batch]


def _record(r: Any) -> Record:
    return Record(
        value=r.value,
        topic=r.topic,
        partition=r.partition,
        offset=r.offset,
        timestamp_ms=r.timestamp_ms,
        key=r.key,
        headers=[Header(h.key, h.value) for h in r.headers],
    )


def _to_wit(types: Any, outcome: Any) -> Any:
    if isinstance(outcome, Emit):
        return types.Outcome_Emit(
            [types.Document(body=d.body, index=d.index, id=d.id) for d in outcome.documents]
        )
    if isinstance(outcome, Drop):
        return types.Outcome_Drop()
    if isinstance(outcome, Fail):
        return types.Outcome_Fail(outcome.reason)
    return types.Outcome_Fail(f"internal: unexpected outcome {outcome!r}")
