"""argparse types shared by the verbs, so that bad arguments are usage errors, not tracebacks."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from callstream.processors.params import BadRequest, parse_time


def moment(option: str) -> Callable[[str], int]:
    """An argparse type: epoch ms of ISO 8601 (no zone: UTC) or epoch ms (the query API's
    rule, ``parse_time``)."""

    def parse(text: str) -> int:
        try:
            return parse_time(option, text)
        except BadRequest as bad:
            raise argparse.ArgumentTypeError(bad.reason) from None

    return parse
