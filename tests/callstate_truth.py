"""The pure fold's truth for a call, and how a published state or completed call differs.

The worker tests wait until ``callstream.call-state`` holds exactly these states. A weaker
wait (every call ``completed``) stops too early: a CDR folded before its call's hangup completes
the call, and the hangup changes it again a few milliseconds later. Likewise on
``callstream.calls-completed``: such a hangup publishes the call again (a higher revision), so
the wait is for each call's highest revision to be the truth's completed call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from callstream.processors.callstate import (
    apply,
    completed_call,
    content_revision,
    without_history,
)
from callstream.schemas.calls import CallState, CompletedCall
from callstream.schemas.parse import parse_webhook

SHOWN = 5  # calls described in a failure message; the rest are counted
LONGEST = 160  # characters of one field's value in a failure message


def folded(events: Iterable[bytes]) -> CallState:
    """What the pure fold makes of one call's webhook bodies: the pipeline's ground truth."""
    state = None
    for body in events:
        state, _ = apply(state, parse_webhook(body).payload, received_at_ms=1)
    assert state is not None, "no events"
    return state


def latest_states(values: Iterable[bytes | None]) -> dict[str, CallState]:
    """The last call-state of each call among ``callstream.call-state`` values (what compaction
    keeps)."""
    states: dict[str, CallState] = {}
    for value in values:
        if value is not None:
            state = msgspec.json.decode(value, type=CallState)
            states[state.call_id] = state
    return states


def state_mismatches(
    expected: Mapping[str, CallState], seen: Mapping[str, CallState]
) -> dict[str, str]:
    """Each expected call whose state in ``seen`` is not the expected one, with how it differs.

    Compared without ``updated_at_ms`` and ``revision`` (:func:`without_history`): the first is
    the worker's clock when it applied an event; the second counts corrections of the completed
    call, so it depends on the order a timeout and CDR versions arrived (the tests that know it
    assert it themselves). Every other field is a function of the set of events folded, so
    equality means each expected event was folded and no other one.
    """
    differences = {}
    for call, want in expected.items():
        got = seen.get(call)
        if got is None:
            differences[call] = "no state"
            continue
        want_fields = msgspec.structs.asdict(without_history(want))
        got_fields = msgspec.structs.asdict(without_history(got))
        if fields := _field_differences(want_fields, got_fields):
            differences[call] = fields
    return differences


def _field_differences(want: Mapping[str, object], got: Mapping[str, object]) -> str:
    return "; ".join(
        f"{name}: expected {_short(value)}, seen {_short(got[name])}"
        for name, value in want.items()
        if got[name] != value
    )


def completed_mismatches(
    expected: Mapping[str, CallState], values: Iterable[bytes | None], *, replayed: bool = False
) -> dict[str, str]:
    """Each expected call whose highest record among ``callstream.calls-completed`` values is
    not the expected state's completed call at its revision (the count of the events it folds),
    or whose revisions came twice with other figures.

    Which lower revisions a call gets depends on the order the worker read its events in. A
    revision may come again: the same record when a
    flush's outputs are re-sent after a worker kill. Other figures at one revision are a doubled
    output, but for ``replayed`` (a worker was killed): a replay that read a call's events and
    CDR in another order publishes lower revisions again with other figures
    (docs/architecture.md, The worker's guarantee), so then only the highest is held to it.
    """
    published = _by_call(values)
    differences = {}
    for call_id, want in expected.items():
        calls = published.get(call_id, [])
        if not calls:
            differences[call_id] = "no completed call"
            continue
        last = calls[-1]
        firsts = {call.revision: call for call in reversed(calls)}  # each revision's first
        held = [call for call in calls if not replayed or call.revision == last.revision]
        doubled = sorted({call.revision for call in held if call != firsts[call.revision]})
        truth = msgspec.structs.replace(completed_call(want), revision=last.revision)
        fields = _field_differences(msgspec.structs.asdict(truth), msgspec.structs.asdict(last))
        if doubled:
            differences[call_id] = f"revisions {doubled} published again with other figures"
        elif fields:
            differences[call_id] = f"revision {last.revision}: {fields}"
        elif last.revision != (events := content_revision(want.events_seen)):
            differences[call_id] = f"revision {last.revision}, not {events} (the events folded)"
    return differences


def highest_revisions(values: Iterable[bytes | None]) -> dict[str, int]:
    """The highest revision of each call among ``callstream.calls-completed`` values."""
    return {call_id: call.revision for call_id, call in latest_completed(values).items()}


def latest_completed(values: Iterable[bytes | None]) -> dict[str, CompletedCall]:
    """Each call's record of the highest revision among ``callstream.calls-completed`` values."""
    return {call_id: calls[-1] for call_id, calls in _by_call(values).items()}


def _by_call(values: Iterable[bytes | None]) -> dict[str, list[CompletedCall]]:
    """Each call's completed-call records, by revision."""
    published: dict[str, list[CompletedCall]] = {}
    for value in values:
        if value is not None:
            call = msgspec.json.decode(value, type=CompletedCall)
            published.setdefault(call.call_id, []).append(call)
    return {
        call_id: sorted(calls, key=lambda call: call.revision)
        for call_id, calls in published.items()
    }


def describe(differences: Mapping[str, str]) -> str | None:
    """A failure message for :func:`state_mismatches`' answer; ``None`` when there is none."""
    if not differences:
        return None
    lines = [f"{call}: {how}" for call, how in list(differences.items())[:SHOWN]]
    if len(differences) > SHOWN:
        lines.append(f"... and {len(differences) - SHOWN} more calls")
    return f"{len(differences)} calls not in the expected state:\n" + "\n".join(lines)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= LONGEST else text[: LONGEST - 3] + "..."
