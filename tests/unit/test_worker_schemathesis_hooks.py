"""The worker run's schemathesis hook drops only the verdicts no description can avoid."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest

from tests.integration.worker_schemathesis_hooks import filter_failure

METRICS = "/metrics/{dimension}"


def kept(
    code: str, path: str = METRICS, status: int = 400, body: object = None, **path_parameters: str
) -> bool:
    failure = SimpleNamespace(code=code)
    case = SimpleNamespace(operation=SimpleNamespace(path=path), path_parameters=path_parameters)
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return filter_failure(None, failure, case, SimpleNamespace(status_code=status, content=content))


def refusal(detail: str) -> dict[str, str]:
    return {"error": "bad_request", "detail": detail}


def test_a_range_refusal_of_valid_parameters_is_dropped() -> None:
    assert not kept("ST202", body=refusal("from,to: from is after to"))
    assert not kept("ST202", "/metrics/{dimension}/{value}", body=refusal("from,to: too many"))


@pytest.mark.parametrize(
    ("code", "status", "body"),
    [
        ("ST202", 400, refusal("window: '2h' is not one of 1m, 1h, 1d")),
        ("ST202", 400, refusal("to: from,to: ")),  # another parameter's refusal
        ("ST202", 400, b"not json"),
        ("ST202", 400, {"detail": 5}),
        ("ST202", 503, refusal("from,to: from is after to")),
        ("ST201", 400, refusal("from,to: from is after to")),  # another check
        ("ST108", 200, []),
    ],
)
def test_every_other_failure_is_kept(code: str, status: int, body: object) -> None:
    assert kept(code, status=status, body=body)


@pytest.mark.parametrize("call_id", ["live", ".", ".."])
def test_any_verdict_on_a_call_id_that_reaches_another_route_is_dropped(call_id: str) -> None:
    for code in ("ST108", "ST201", "ST202"):
        assert not kept(code, "/calls/{call_id}", 200, [], call_id=call_id)


def test_every_verdict_on_a_reachable_call_id_is_kept() -> None:
    assert kept("ST108", "/calls/{call_id}", 200, {}, call_id="live-1")
    assert kept("ST202", "/calls/{call_id}", 400, refusal("from,to: x"), call_id="c")
