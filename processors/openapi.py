"""OpenAPI 3.1 of the worker's routes (``GET /openapi.json``).

The answers' schemas are the models' (msgspec's, as schemas/json/ are): ``CallState`` is what
``callstream.call-state`` carries, ``WindowMetrics`` what ``callstream.metrics`` carries, and
``LiveCalls`` (schemas/queries.py) the live view. The parameters are described as tightly as
processors/params.py reads them; what JSON Schema cannot say (``from`` after ``to``, a range
of more than ``MAX_WINDOWS`` windows) is in the descriptions.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from callstream import __version__
from callstream.openapi import ERROR, REFS, STATUS, get, json_response, retry_after
from callstream.processors.params import (
    ALL,
    DEFAULT_WINDOW,
    DIMENSIONS,
    EPOCH_MS_DIGITS,
    FORMATS,
    MAX_WINDOWS,
    WINDOWS,
)
from callstream.schemas.calls import CallState
from callstream.schemas.metrics import WindowMetrics
from callstream.schemas.queries import LiveCalls

# A call id the router cannot reach: "live" is the live view's route, dot segments are
# resolved away by clients.
UNREACHABLE_CALL_IDS = ("live", ".", "..")
_TIME = {
    "anyOf": [
        {"type": "string", "pattern": f"^[0-9]{{1,{EPOCH_MS_DIGITS}}}$"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "date"},
    ]
}
_TIME_DESCRIPTION = (
    "epoch milliseconds, or ISO 8601 (a time without a zone is UTC; a date alone is its "
    "midnight, UTC); before 1970 reads as 1970"
)


def _parameter(where: str, name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter ``in`` ``where`` (``query`` or ``path``); path parameters are required."""
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return _parameter("query", name, description, schema)


def _path(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return _parameter("path", name, description, schema)


def _bad_request(what: str) -> dict[str, Any]:
    return json_response("Error", f"bad_request: {what}; the detail names the parameter and why")


def _unready(what: str) -> dict[str, Any]:
    return json_response("Error", what, retry_after())


_TABLE_UNREADY = _unready(
    "not_ready: the worker owning the key is rebalancing or recovering its tables, or "
    "owner_unavailable: it did not answer in time"
)


def _metrics_parameters(windows: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        _query(
            "window",
            f"the window's length, one the worker counts (CALLSTREAM_METRICS_WINDOWS); default "
            f"{DEFAULT_WINDOW}, or the worker's first when it counts no {DEFAULT_WINDOW} windows",
            {"enum": list(windows)},
        ),
        _query("from", f"the first window start to include: {_TIME_DESCRIPTION}", _TIME),
        _query(
            "to",
            f"the window starts to include are before this: {_TIME_DESCRIPTION}. Without from and "
            "to, the last 24 hours; with one of them, the 24 hours after from (before to). At most "
            f"{MAX_WINDOWS} windows, and from not after to",
            _TIME,
        ),
        _query(
            "format",
            "json (default) or csv: a header row, then a row per window",
            {"enum": list(FORMATS)},
        ),
    ]


def _file(summary: str, media_type: str) -> dict[str, Any]:
    return get(
        summary,
        {"200": {"description": summary, "content": {media_type: {"schema": {"type": "string"}}}}},
    )


WALLBOARD_EVENTS = (
    "Server-Sent Events, until the client leaves. First a `snapshot` event (data: `{as_of_ms, "
    "board}`), or, for a client reconnecting with the id of the last event it applied "
    "(`Last-Event-ID`) while this worker still keeps what followed, the `patch` events it "
    "missed; then a `patch` event (data: `{as_of_ms, patch}`) whenever the board changes. A "
    "board has the sections meta, calls, tiles and chart, each a mapping; a patch gives per "
    "changed section the keys set (`set`) and deleted (`del`). Comments keep the connection "
    "alive every 15 s. docs/query-api.md describes the board."
)


def _wallboard_paths() -> dict[str, Any]:
    """The wallboard's page, its two files and its events (processors/board_stream.py)."""
    last_event_id = {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "description": "the id of the last event applied: the patches after it come first, "
        "when this worker keeps them; else a snapshot",
        "schema": {"type": "string"},
    }
    events = {
        "type": "object",
        "description": WALLBOARD_EVENTS,
        "required": ["event", "id", "data"],
        "properties": {
            "event": {"enum": ["snapshot", "patch"]},
            "id": {"type": "string", "pattern": "^[0-9a-f]+-[0-9]+$"},
            "data": {"type": "string", "contentMediaType": "application/json"},
        },
    }
    return {
        "/": _file(
            "the wallboard: the calls in progress, the hour's and day's figures", "text/html"
        ),
        "/wallboard/wallboard.js": _file("the wallboard's script", "text/javascript"),
        "/wallboard/wallboard.css": _file("the wallboard's style sheet", "text/css"),
        "/wallboard/events": get(
            "the whole call centre's board, pushed as it changes",
            {
                "200": {
                    "description": "the board's events",
                    "content": {"text/event-stream": {"schema": events}},
                }
            },
            parameters=[last_event_id],
        ),
    }


def _metrics_operation(
    summary: str, parameters: list[dict[str, Any]], sizes: tuple[str, ...]
) -> dict[str, Any]:
    windows = {"type": "array", "items": {"$ref": REFS.format(name="WindowMetrics")}}
    csv = {"type": "string", "description": "a header row of WindowMetrics' fields, a row each"}
    return get(
        summary,
        {
            "200": {
                "description": "the windows, by dimension value, then window start",
                "content": {"application/json": {"schema": windows}, "text/csv": {"schema": csv}},
            },
            "400": _bad_request(
                "an unknown dimension, window or format, a value for 'all', a time that does not"
                " read, from after to, too many windows, an unknown or repeated parameter"
            ),
            "503": _TABLE_UNREADY,
        },
        parameters=[*parameters, *_metrics_parameters(sizes)],
    )


@functools.cache
def openapi_document(windows: tuple[str, ...] = WINDOWS) -> dict[str, Any]:
    """The document served at the worker's ``GET /openapi.json``; ``windows``: the window sizes
    it counts (CALLSTREAM_METRICS_WINDOWS), the only ones ``/metrics`` takes."""
    (_, _, _), models = msgspec.json.schema_components(
        [CallState, WindowMetrics, LiveCalls], ref_template=REFS
    )
    dimension = _path("dimension", "what the windows are of", {"enum": list(DIMENSIONS)})
    valued = [d for d in DIMENSIONS if d != ALL]
    return {
        "openapi": "3.1.0",
        "info": {"title": "callstream worker", "version": __version__},
        "paths": {
            "/healthz": get("the process is alive", {"200": json_response("Status", "alive")}),
            "/readyz": get(
                "joined its group and recovered its tables",
                {
                    "200": json_response("Status", "ready"),
                    "503": json_response("Error", "not ready", retry_after(required=False)),
                },
            ),
            "/metrics": get(
                "Prometheus metrics of the worker",
                {"200": {"description": "metrics", "content": {"text/plain": {}}}},
            ),
            "/calls/live": get(
                "the calls in progress in the whole call centre, with counts per hotline and agent",
                {
                    "200": json_response("LiveCalls", "the calls the filters keep"),
                    "400": _bad_request("an empty, unknown or repeated parameter"),
                    "503": _unready("not_ready: the live view is still reading its topic"),
                },
                parameters=[
                    _query(
                        "hotline", "only this hotline's calls", {"type": "string", "minLength": 1}
                    ),
                    _query(
                        "agent",
                        "only this agent's (extension's)",
                        {"type": "string", "minLength": 1},
                    ),
                ],
            ),
            "/calls/{call_id}": get(
                "a call's joined state, from whichever worker owns it",
                {
                    "200": json_response("CallState", "the call's state"),
                    "404": json_response(
                        "Error",
                        "not_found: no such call, or completed longer ago than the retention",
                    ),
                    "503": _TABLE_UNREADY,
                },
                parameters=[
                    _path(
                        "call_id",
                        "the call's id (call_uuid, transaction_id)",
                        {
                            "type": "string",
                            "minLength": 1,
                            "not": {"enum": list(UNREACHABLE_CALL_IDS)},
                        },
                    )
                ],
            ),
            "/metrics/{dimension}": _metrics_operation(
                "the windows of every value of a dimension ('all': the whole call centre)",
                [dimension],
                windows,
            ),
            "/metrics/{dimension}/{value}": _metrics_operation(
                "the windows of one hotline, agent (extension) or direction",
                [
                    _path("dimension", "what the windows are of", {"enum": valued}),
                    _path(
                        "value",
                        "the hotline, extension or direction",
                        {"type": "string", "minLength": 1},
                    ),
                ],
                windows,
            ),
            "/openapi.json": get(
                "this document",
                {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
            ),
            **_wallboard_paths(),
        },
        "components": {"schemas": {"Error": ERROR, "Status": STATUS, **models}},
    }
