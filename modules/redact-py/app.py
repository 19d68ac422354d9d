"""Redacts personal data from text fields: email addresses, phone numbers
and configured keywords, replaced by ``[EMAIL]``, ``[PHONE]`` and
``[REDACTED]``. Adds ``redacted: {"emails": n, "phones": n, "keywords": n}``.

Config:
  fields    comma-separated top-level fields to redact (default ``text``)
  keywords  comma-separated words redacted case-insensitively as whole words
  emails    ``true``/``false``: redact email addresses (default true)
  phones    ``true``/``false``: redact phone numbers (default true)

Records whose value is not a JSON object fail with the parser's message.
The Rust module ``redact`` does exactly the same (same patterns, fields
and output), so either can replace the other in a running pipeline.
"""

import re

import weir_kit as weir
from weir_kit import Processor  # noqa: F401 - the component's export

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]?\d{3,4}[ .-]?\d{3,4}")


@weir.module(name="redact", version="0.1.0")
class Redact:
    def __init__(self, config: weir.Config):
        self.fields = config.get_list("fields", ["text"])
        keywords = config.get_list("keywords")
        self.keywords = (
            re.compile(r"\b(?:" + "|".join(re.escape(k) for k in keywords) + r")\b", re.IGNORECASE)
            if keywords
            else None
        )
        self.emails = config.get_bool("emails", True)
        self.phones = config.get_bool("phones", True)

    def process(self, record: weir.Record) -> weir.Outcome:
        doc = record.json()
        counts = {"emails": 0, "phones": 0, "keywords": 0}
        for field in self.fields:
            text = doc.get(field)
            if not isinstance(text, str):
                continue
            if self.emails:
                text, n = EMAIL.subn("[EMAIL]", text)
                counts["emails"] += n
            if self.phones:
                text, n = PHONE.subn("[PHONE]", text)
                counts["phones"] += n
            if self.keywords is not None:
                text, n = self.keywords.subn("[REDACTED]", text)
                counts["keywords"] += n
            doc[field] = text
        doc["redacted"] = counts
        return weir.emit(doc)
