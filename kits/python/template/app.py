"""A Weir module in Python. Rename it in @weir.module and write process()."""

import weir_kit as weir
from weir_kit import Processor  # noqa: F401 - the component's export; keep this line


@weir.module(name="my-module", version="0.1.0")
def process(record: weir.Record, config: weir.Config) -> weir.Outcome:
    doc = record.json()  # a dict; a record that is not a JSON object fails with the reason
    doc[config.get("field", "source")] = record.topic
    return weir.emit(doc)
