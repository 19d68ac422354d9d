"""What a module makes of a record."""

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

_SEPARATORS = (",", ":")


@dataclass
class Document:
    """A document to index. ``body`` is serialised JSON (an object)."""

    body: bytes
    index: Optional[str] = None
    id: Optional[str] = None

    @classmethod
    def of(cls, doc: Any, index: Optional[str] = None, id: Optional[str] = None) -> "Document":
        """From a dict (serialised compactly, non-ASCII kept), a Document, bytes or str."""
        if isinstance(doc, Document):
            return Document(doc.body, index or doc.index, id or doc.id)
        if isinstance(doc, (bytes, bytearray)):
            body = bytes(doc)
        elif isinstance(doc, str):
            body = doc.encode()
        elif isinstance(doc, dict):
            body = json.dumps(doc, ensure_ascii=False, separators=_SEPARATORS).encode()
        else:
            raise TypeError(f"a document is a dict, bytes or str, not {type(doc).__name__}")
        return cls(body, index, id)

    def json(self) -> Dict[str, Any]:
        """The body parsed (for tests)."""
        return json.loads(self.body)


@dataclass
class Emit:
    """Zero or more documents go on to the next module (or the sink)."""

    documents: List[Document] = field(default_factory=list)


@dataclass
class Drop:
    """The record is intentionally discarded; its offset still advances."""


@dataclass
class Fail:
    """The record goes to the dead-letter queue with ``reason``."""

    reason: str


Outcome = Union[Emit, Drop, Fail]


def emit(*docs: Any, index: Optional[str] = None, id: Optional[str] = None) -> Emit:
    """Emit documents (dicts, Documents, bytes or str); ``index``/``id`` apply to each."""
    return Emit([Document.of(doc, index, id) for doc in docs])


def drop() -> Drop:
    return Drop()


def fail(reason: Any) -> Fail:
    return Fail(str(reason))
