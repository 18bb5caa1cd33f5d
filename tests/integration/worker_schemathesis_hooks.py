"""Schemathesis hooks of the worker run (test_worker_schemathesis.py, worker_schemathesis.toml).

One hook, and a narrow one. It drops:

- the positive-data verdict (a schema-valid request refused) for the refusals no schema can
  describe: ``from`` after ``to``, or a range of more windows than the worker serves at once
  (processors/params.py; its 400's detail starts with the parameters ``from,to``);
- any verdict on ``/calls/{call_id}`` for a call id that names another route or none
  (``live``, dot segments): the document excludes them, but the request reaches ``/calls/live``
  or is resolved away, so no answer of ``/calls/{call_id}`` can be checked.

Every other check, and these on every other request, still fail the run.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

from callstream.processors.openapi import UNREACHABLE_CALL_IDS

POSITIVE_DATA = "ST202"  # positive_data_acceptance
UNDESCRIBED = "from,to: "
CALL_ROUTE = "/calls/{call_id}"


@schemathesis.hook
def filter_failure(_context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a range refusal of valid parameters, or one of an unreachable
    call id."""
    if case.operation.path == CALL_ROUTE:
        return (case.path_parameters or {}).get("call_id") not in UNREACHABLE_CALL_IDS
    if failure.code != POSITIVE_DATA or response.status_code != 400:
        return True
    try:
        detail = json.loads(response.content)["detail"]
    except (ValueError, KeyError, TypeError):
        return True
    return not (isinstance(detail, str) and detail.startswith(UNDESCRIBED))
