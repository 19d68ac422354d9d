"""Input records."""

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ._errors import Error


@dataclass
class Header:
    """One Kafka header; ``value`` is None for a null header."""

    key: str
    value: Optional[bytes]


@dataclass
class Record:
    """One Kafka record as the broker returned it.

    ``value`` is the raw bytes; ``json()`` parses it as a JSON object (on
    request, once per call) and ``text()`` decodes it as UTF-8.
    """

    value: bytes
    topic: str = "test"
    partition: int = 0
    offset: int = 0
    timestamp_ms: Optional[int] = None
    key: Optional[bytes] = None
    headers: List[Header] = field(default_factory=list)

    @classmethod
    def from_value(cls, value: Any, **fields: Any) -> "Record":
        """A test record: ``value`` may be bytes, str, or a dict/list (JSON-encoded)."""
        if isinstance(value, str):
            value = value.encode()
        elif not isinstance(value, (bytes, bytearray)):
            value = json.dumps(value).encode()
        return cls(value=bytes(value), **fields)

    def text(self) -> str:
        """The value as UTF-8 text; ``Error`` when it is not UTF-8."""
        try:
            return self.value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Error(f"value is not UTF-8: {e}") from None

    def json(self) -> Dict[str, Any]:
        """The value parsed as a JSON object (a fresh dict per call).

        Fails the record with ``invalid JSON at byte N: ...`` or
        ``expected a JSON object, found ...`` when it is not one.
        """
        text = self.text()
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as e:
            offset = len(text[: e.pos].encode("utf-8"))
            raise Error(f"invalid JSON at byte {offset}: {e.msg}") from None
        if not isinstance(parsed, dict):
            raise Error(f"expected a JSON object, found {_kind(parsed)}")
        return parsed

    def header(self, key: str) -> Optional[bytes]:
        """The value of the first header named ``key`` (None when absent or null)."""
        for header in self.headers:
            if header.key == key:
                return header.value
        return None

    def coordinates(self) -> str:
        """``topic/partition/offset``."""
        return f"{self.topic}/{self.partition}/{self.offset}"


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"
