"""The OpenAPI 3.1 document of ``pgf serve`` (plain data: every path the server answers)."""

from __future__ import annotations

from typing import Any

from pgf_events import __version__
from pgf_events.projections.slices import PROJECTIONS

DESCRIPTION = """\
Read-only HTTP access to one pgf-events trial store: a patient's derived status, each cohort report,
and the change feed of the projections as Server-Sent Events.

**Authentication.** Every path but this document is authenticated with the store's own identities.
On PostgreSQL: HTTP Basic with your database login and password (checked by logging in to the
database; the login needs a read role in the store). On SQLite the server listens on localhost only and
answers the OS account that started it: send the one-time token it printed at start as
`Authorization: Bearer TOKEN` (or `?token=TOKEN`). 401 without valid credentials, 403 without a read
role, 400 for a Host header that is not the server's (DNS-rebinding defence) or a position out of range.
Report and patient answers carry `X-Read-Models-Verified`: when the read models were last verified.

**Change feed.** Every change has a `position` derived from the event log (notification id x 8 +
projection index): strictly increasing, stable across restarts. A client that stores the last position
it processed (in the same transaction as its own effect) and reconnects with `Last-Event-ID` (or
`?after=`) set to it receives every later change exactly once.
"""

_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON_OBJECT = {"type": "object", "additionalProperties": True}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "pgf-events (read-only)", "version": __version__, "description": DESCRIPTION,
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "paths": {
            "/health": {"get": {
                "operationId": "health", "summary": "Liveness, the store and the head of its event log.",
                "responses": {"200": _json("The server can read the store.", {"$ref": "#/components/schemas/Health"})},
            }},
            "/patients/{subject}": {"get": {
                "operationId": "patientStatus",
                "summary": "One patient's derived state: the document `pgf status SUBJECT --json` prints.",
                "parameters": [{"name": "subject", "in": "path", "required": True, "schema": {"type": "string"},
                                "example": "S001"}],
                "responses": {
                    "200": _json("The patient's status.", {"$ref": "#/components/schemas/PatientStatus"}),
                    "400": _json("The subject code is malformed.", _ERROR),
                    "403": _json("A site-scoped grant asked for another site's patient.", _ERROR),
                    "404": _json("No such patient.", _ERROR),
                },
            }},
            "/reports/{name}": {"get": {
                "operationId": "report",
                "summary": "A cohort report: the document `pgf report NAME --json` prints.",
                "parameters": [{"name": "name", "in": "path", "required": True,
                                "schema": {"type": "string", "enum": list(PROJECTIONS)}}],
                "responses": {
                    "200": _json("Rows (one per subject) and the cohort summary; a site-scoped grant's "
                                 "report covers its sites' patients only.", {"$ref": "#/components/schemas/Report"}),
                    "404": _json("No such report.", _ERROR),
                },
            }},
            "/changes": {"get": {
                "operationId": "changes",
                "summary": "The change feed as Server-Sent Events: every change after a position, then live.",
                "description": (
                    "Each event has `id:` = the change's position and `data:` = the change as one JSON object. "
                    "The stream stays open and sends new changes as they are recorded; a comment line "
                    "(`: keep-alive`) is sent when nothing happened for a while. `Last-Event-ID`, when "
                    "present, takes precedence over `after`."
                ),
                "parameters": [
                    {"name": "after", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 0, "default": 0},
                     "description": "Send only changes with a greater position."},
                    {"name": "projection", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": list(PROJECTIONS)},
                     "description": "Only this projection's changes."},
                    {"name": "Last-Event-ID", "in": "header", "required": False,
                     "schema": {"type": "integer", "minimum": 0},
                     "description": "The id of the last event received (sent by EventSource on reconnection)."},
                ],
                "responses": {
                    "200": {"description": "An endless text/event-stream; each `data:` line is a Change.",
                            "content": {"text/event-stream": {
                                "schema": {"type": "string"},
                                "x-data-schema": {"$ref": "#/components/schemas/Change"},
                            }}},
                    "400": _json("`after`, `Last-Event-ID` or `projection` is invalid.", _ERROR),
                    "403": _json("A site-scoped grant: the feed carries every site's patients.", _ERROR),
                },
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document.",
                "responses": {"200": _json("The OpenAPI 3.1 document.", _JSON_OBJECT)},
            }},
        },
        "components": {"schemas": {
            "Change": {
                "type": "object",
                "required": ["position", "projection", "subject", "kind", "event_ref", "recorded_at", "data"],
                "properties": {
                    "position": {"type": "integer", "minimum": 0,
                                 "description": "notification id x 8 + projection index; strictly increasing"},
                    "projection": {"type": "string", "enum": list(PROJECTIONS)},
                    "subject": {"type": "string", "example": "S001"},
                    "kind": {"type": "string", "enum": ["insert", "update"]},
                    "event_ref": {"type": "string", "description": "the event that caused it, SUBJECT#N",
                                  "example": "S001#7"},
                    "recorded_at": {"type": "string", "format": "date-time",
                                    "description": "when that event was recorded (UTC)"},
                    "protocol_version": {"type": ["string", "null"]},
                    "data": {"type": "object", "additionalProperties": True,
                             "description": "the projection's whole new row for the subject"},
                },
            },
            "Health": {"type": "object", "required": ["status"], "properties": {
                "status": {"const": "ok"}, "store": {"type": "string"}, "head": {"type": "integer"},
                "feed_position": {"type": "integer"}, "protocol_version": {"type": "string"},
                "version": {"type": "string"},
            }},
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "PatientStatus": {
                "type": "object", "additionalProperties": True,
                "required": ["subject", "protocol_version", "version", "site", "eligibility", "signatures"],
                "properties": {
                    "subject": {"type": "string", "example": "S001"},
                    "as_of": {"type": ["string", "null"], "format": "date-time"},
                    "cutoff": {"type": ["string", "null"], "format": "date"},
                    "protocol_version": {"type": "string"}, "version": {"type": "integer", "minimum": 1},
                    "evaluation_date": {"type": "string", "format": "date"}, "site": {"type": "string"},
                    "eligibility": _JSON_OBJECT, "dosing": {"type": ["object", "null"]},
                    "endpoints": {"type": ["object", "null"]}, "survival": {"type": ["object", "null"]},
                    "safety": {"type": ["object", "null"]},
                    "signatures": {"type": "array", "items": _JSON_OBJECT},
                },
            },
            "Report": {
                "type": "object", "additionalProperties": True,
                "required": ["report", "protocol_version", "rows", "summary"],
                "properties": {
                    "report": {"type": "string", "enum": list(PROJECTIONS)},
                    "as_of": {"type": ["string", "null"], "format": "date-time"},
                    "cutoff": {"type": ["string", "null"], "format": "date"},
                    "protocol_version": {"type": "string"},
                    "rows": {"type": "array", "items": {"type": "object", "required": ["subject"],
                                                        "additionalProperties": True}},
                    "summary": _JSON_OBJECT,
                    "read_models_verified": {"type": ["object", "null"]},
                },
            },
        }},
    }
    doc["components"]["securitySchemes"] = {  # type: ignore[index]
        "databaseLogin": {"type": "http", "scheme": "basic", "description": "PostgreSQL stores: database login"},
        "startToken": {"type": "http", "scheme": "bearer", "description": "SQLite stores: the token printed at start"},
    }
    doc["security"] = [{"databaseLogin": []}, {"startToken": []}]
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
