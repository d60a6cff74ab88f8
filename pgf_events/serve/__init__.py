"""``pgf serve``: read-only HTTP for services in any language (optional ``serve`` extra).

- ``app.py``: the Starlette application: patient status, reports, the SSE change feed, health;
- ``openapi.py``: the OpenAPI 3.1 document served at ``/openapi.json`` (plain data, no imports);
- ``pulse.py``: one watcher thread per server that wakes every open SSE stream when events arrive.

Nothing here authenticates clients: the server binds to 127.0.0.1 by default and answers as the
user who started it (whose role ``pgf serve`` checked once, at start).
"""
