"""The downstream change feed: every change of every projection, resumable by position.

A change (:class:`Change`) is a projection's new row for one subject after one event, with a
``position`` derived from the event log (``notification_id * 8 + projection index``): strictly
increasing in feed order, the same for every reader, and stable across restarts.

Exactly once, in the consumer's own database::

    from pgf_events.feed import ChangeFeed

    with ChangeFeed("postgresql://pgf@db/trial") as feed:
        for change in feed.follow(after=my_db.last_position(), projection="safety"):
            with my_db.transaction():               # ONE transaction:
                my_db.apply(change)                 #   the consumer's own effect
                my_db.set_last_position(change.position)  #   and the position it has reached

After a crash the transaction either happened (position moved with the effect) or did not
(neither did); resuming with ``after=`` the stored position therefore sees every later change
exactly once. ``examples/sae_notifier.py`` is a complete consumer written this way.
"""

from pgf_events.feed.api import ChangeFeed, check_position, check_projection
from pgf_events.feed.change import STRIDE, Change, feed_position, split_position

__all__ = ["STRIDE", "Change", "ChangeFeed", "check_position", "check_projection", "feed_position",
           "split_position"]
