"""Audit: tamper evidence, append-only storage, signatures, exception reports and exports.

Modules
- ``chain``: the link encoding (SHA-256, ``pgf-chain/1``) and checkpoints (``POSITION-HEX20``).
- ``recorders`` (SQLite) and ``recorders_postgres``: the application recorders ``store.py`` selects; they write
  each event's link and move the chain head in the transaction that stores the event, and install
  the append-only triggers. Old stores are linked on first open (see that module).
- ``verify``: streaming recomputation (batches of 10,000 events and links merged by position)
  that names the first broken event; ``grants``: SQL for a writer and an auditor role.
- ``signatures``: ``pgf sign`` and the pure ``signatures(patient_events)`` used by ``pgf status``.
- ``exceptions``: ``pgf audit exceptions``. ``trail``, ``odm``, ``sdtm``: ``pgf export ...``.

Where things live
- ``pgf_chain`` (position = notification id, stream id, version, hash, backfilled) and the one-row
  ``pgf_chain_head`` (position, hash, and the stream/version of the latest event) sit beside the
  events table: ``stored_events`` in a SQLite file, ``<schema>.pgf_events`` on PostgreSQL.

What it proves, and what it does not
- Any change to a stored event (payload, recorded time, type, stream, version), a deletion, an
  insertion without a link, a reordering, or the removal of the latest events is reported by
  ``pgf audit verify`` with the first affected reference.
- Someone able to rewrite *every* link and the head after a change (or to drop the chain tables so
  they are rebuilt as "backfilled") defeats the chain alone; a checkpoint kept outside the database
  (``pgf audit checkpoint``) still catches it, since the rewritten log no longer extends it.
- The triggers stop UPDATE/DELETE by anyone, including the owner, until the owner drops them; on
  PostgreSQL the roles from ``pgf db grants`` cannot drop or disable them at all.
"""
