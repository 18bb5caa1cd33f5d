"""Schemathesis hooks of the ingress run (test_ingress_schemathesis.py, schemathesis.toml).

One hook, and a narrow one: it drops a data check's verdict (schema-valid body refused, or
schema-violating body accepted) only when the body holds what JSON Schema cannot describe
(docs/schemas.md, "What the schemas cannot say"), or is over the ingress's size limit, which
no schema bounds. Every other check, and these two on every other body, still fail the run.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

from tests.contract_support import undescribed_body

DATA_CHECKS = frozenset({"ST201", "ST202"})  # negative_data_rejection, positive_data_acceptance
BODY_LIMIT = 64 * 1024  # the ingress's default (CALLSTREAM_MAX_BODY_BYTES), which the test keeps


@schemathesis.hook
def filter_failure(_context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but those a description cannot avoid."""
    if failure.code not in DATA_CHECKS:
        return True
    if undescribed_body(case.body):
        return False
    too_large = len(json.dumps(case.body).encode()) > BODY_LIMIT
    return not (too_large and response.status_code == 413)
