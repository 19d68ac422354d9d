"""The module registered with ``@weir.module`` and its per-instance state.

Everything lives at module level: a component instance imports this once
and keeps it for its lifetime (one batch), while componentize-py creates
the export class afresh for each call.
"""

from typing import Any, Optional

registered: Optional[Any] = None  # the _Module
instance: Optional[Any] = None  # the _Running after a successful init
init_error: Optional[str] = None


def name() -> str:
    return registered.name if registered is not None else "module"
