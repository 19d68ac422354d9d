"""``@weir.module`` and the batch driver shared by the component and tests."""

import inspect
from typing import Any, Callable, Iterable, List, Optional, Tuple, Union

from . import _state
from ._config import Config
from ._errors import reason
from ._outcome import Document, Drop, Emit, Fail, Outcome
from ._record import Record


class _Module:
    """A registered module: a function or a class, with its name and version."""

    def __init__(self, target: Any, name: str, version: str):
        self.target = target
        self.name = name
        self.version = version

    def start(self, config: Config) -> "_Running":
        """Runs ``init``: a class is instantiated with the config; a function
        is bound to it. Exceptions propagate (the caller reports them)."""
        if inspect.isclass(self.target):
            return _Running(self.target(config))
        return _Running(_Function(self.target, config))


class _Function:
    """A per-record function as a processor."""

    def __init__(self, function: Callable[..., Any], config: Config):
        self.function = function
        self.config = config
        params = inspect.signature(function).parameters
        self.takes_config = len(params) >= 2

    def process(self, record: Record) -> Any:
        if self.takes_config:
            return self.function(record, self.config)
        return self.function(record)


class _Running:
    """An initialised processor for one instance."""

    def __init__(self, processor: Any):
        self.processor = processor

    def process_batch(self, records: List[Record]) -> List[Outcome]:
        batch = getattr(self.processor, "process_batch", None)
        if batch is not None:
            try:
                outcomes = [_outcome(o) for o in batch(records)]
            except Exception as e:  # noqa: BLE001 - every record fails with the reason
                return [Fail(reason(e))] * len(records)
            if len(outcomes) != len(records):
                why = f"process_batch returned {len(outcomes)} outcomes for {len(records)} records"
                return [Fail(why)] * len(records)
            return outcomes
        return [self._one(record) for record in records]

    def _one(self, record: Record) -> Outcome:
        try:
            return _outcome(self.processor.process(record))
        except Exception as e:  # noqa: BLE001 - the record fails, not the instance
            return Fail(reason(e))


def _outcome(value: Any) -> Outcome:
    """An Outcome from what ``process`` returned (a dict is emitted as is)."""
    if isinstance(value, (Emit, Drop, Fail)):
        return value
    if isinstance(value, (dict, Document)):
        return Emit([Document.of(value)])
    raise TypeError(
        f"process returned {type(value).__name__}; return weir.emit(...), "
        "weir.drop(), weir.fail(reason) or a dict"
    )


def module(name: str, version: str) -> Callable[[Any], Any]:
    """Registers a function or class as this component's module.

    * ``def process(record)`` or ``def process(record, config)``: called per
      record; returns ``emit(...)``, ``drop()``, ``fail(reason)`` or a dict.
    * a class whose ``__init__(self, config)`` parses settings once per
      instance and whose ``process(self, record)`` (or
      ``process_batch(self, records) -> list``) handles records.

    The function or class is returned unchanged, so tests call it directly.
    Use it once per component.
    """

    def register(target: Any) -> Any:
        if not (inspect.isclass(target) or callable(target)):
            raise TypeError("@weir.module decorates a function or a class")
        if inspect.isclass(target) and not (
            hasattr(target, "process") or hasattr(target, "process_batch")
        ):
            raise TypeError(f"class {target.__name__} needs a process or process_batch method")
        _state.registered = _Module(target, name, version)
        return target

    return register


ConfigLike = Union[Config, Iterable[Tuple[str, str]], dict, None]


def run(target: Any, records: Iterable[Any], config: ConfigLike = None) -> List[Outcome]:
    """Runs ``target`` (a decorated function or class) as the host would:
    init with ``config`` (a Config, dict or pairs), then one batch.

    Records may be Records, or values for ``Record.from_value``. Exceptions
    from init propagate; exceptions from processing become ``Fail``.
    """
    config = _as_config(config)
    registered = _Module(target, "test", "0")
    running = registered.start(config)
    batch = [r if isinstance(r, Record) else Record.from_value(r, offset=i) for i, r in enumerate(records)]
    return running.process_batch(batch)


def _as_config(config: ConfigLike) -> Config:
    if config is None:
        return Config()
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return Config(config.items())
    return Config(config)
