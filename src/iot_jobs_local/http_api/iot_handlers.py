"""The ``iot`` control plane's handler table: operation name -> handler, one module per resource.

Each handler reads its already-parsed input, calls the engine and returns the output members.
"""

from __future__ import annotations

from . import event_handlers, execution_handlers, job_handlers, thing_handlers
from .handler import Handler

HANDLERS: dict[str, Handler] = {
    **thing_handlers.HANDLERS,
    **job_handlers.HANDLERS,
    **execution_handlers.HANDLERS,
    **event_handlers.HANDLERS,
}

__all__ = ["HANDLERS", "Handler"]
