"""What each handled provider event does to our records (event type -> handler).

Every handler runs inside the transaction that claimed the event id, so an event's effects
and its "processed" mark commit together or not at all.
"""

from __future__ import annotations

from processor.webhooks.service import Handler

HANDLERS: dict[str, Handler] = {}
