"""Module settings from the pipeline config."""

from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

from ._errors import Error

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class Config:
    """The key/value settings the pipeline gives this module.

    Values are strings; the typed getters raise ``weir.Error`` naming the
    key and the value when one does not parse, so a bad setting rejects
    the module at ``init`` with a clear reason.
    """

    def __init__(self, pairs: Iterable[Tuple[str, str]] = (), **settings: str):
        self._pairs: List[Tuple[str, str]] = [(str(k), str(v)) for k, v in pairs]
        self._pairs.extend((k, str(v)) for k, v in settings.items())

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """The value of ``key`` (the last one when given twice), else ``default``."""
        for k, v in reversed(self._pairs):
            if k == key:
                return v
        return default

    def require(self, key: str) -> str:
        """The value of ``key``; ``Error`` when it is not set."""
        value = self.get(key)
        if value is None:
            raise Error(f'missing required config key "{key}"')
        return value

    def get_int(self, key: str, default: int) -> int:
        return self._parse(key, default, int, "an integer")

    def get_float(self, key: str, default: float) -> float:
        return self._parse(key, default, float, "a number")

    def _parse(self, key: str, default: Any, convert: Callable[[str], Any], what: str) -> Any:
        raw = self.get(key)
        if raw is None:
            return default
        try:
            return convert(raw.strip())
        except ValueError:
            raise Error(f'config key "{key}": cannot parse "{raw}" as {what}') from None

    def get_bool(self, key: str, default: bool) -> bool:
        raw = self.get(key)
        if raw is None:
            return default
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise Error(f'config key "{key}": cannot parse "{raw}" as true/false')

    def get_list(self, key: str, default: Iterable[str] = ()) -> List[str]:
        """The value split on commas, items trimmed, empty items dropped."""
        raw = self.get(key)
        if raw is None:
            return list(default)
        return [item.strip() for item in raw.split(",") if item.strip()]

    def __iter__(self) -> Iterator[Tuple[str, str]]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:
        return f"Config({self._pairs!r})"
