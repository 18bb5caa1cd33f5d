"""How the fold reads the provider's CDR seconds: talk, ring, answered. One place, on purpose.

OMICall documents its CDR fields loosely; our reading, and the evidence for it, is in
docs/call-state.md ("Reading the CDR"). In short: ``answer_sec`` is the talk time, ``bill_sec``
the billed time (a first 6-second block, then per second: 5 s of talk bill 6), ``duration``
runs from the first ring to the hangup, and ``disposition`` (``answered`` / ``cancelled``), when
the CDR carries it, decides whether the call was answered. Should the provider say otherwise,
the change is here, in one line, and nowhere else.

Pure functions of one CDR; the fold (:mod:`callstream.processors.callstate`) decides between
them and the live events' timeline.
"""

from __future__ import annotations

from callstream.schemas.omicall import CallDetailRecord

# What each disposition says; any other value says nothing, and the seconds and events decide.
DISPOSITION_ANSWERED = {"answered": True, "cancelled": False}


def cdr_answered(cdr: CallDetailRecord) -> bool | None:
    """Whether the CDR says the call was answered; ``None`` when it does not say.

    Its ``disposition`` decides when it is ``answered`` or ``cancelled``, whatever the seconds
    (a call answered and billed 0 s is answered; one cancelled yet billed is not). Without it,
    talk or billed seconds (``answer_sec > 0`` or ``bill_sec > 0``) mean answered; zero of both
    says nothing, since an ``answered`` live event may still show the call was.
    """
    said = DISPOSITION_ANSWERED.get(cdr.disposition or "")
    if said is not None:
        return said
    if (cdr.answer_sec or 0) > 0 or cdr.bill_sec > 0:
        return True
    return None


def cdr_talk_sec(cdr: CallDetailRecord) -> float | None:
    """The talk time the CDR states: ``answer_sec``; ``None`` when it does not send it."""
    return None if cdr.answer_sec is None else float(cdr.answer_sec)


def cdr_billed_talk_sec(cdr: CallDetailRecord) -> float:
    """The talk time when neither ``answer_sec`` nor the live timeline gives it: ``bill_sec``.

    An over-estimate by the billing's rounding (at most the 6-second first block), which is the
    nearest figure the CDR has.
    """
    return float(cdr.bill_sec)


def cdr_ring_sec(cdr: CallDetailRecord, *, answered: bool) -> float:
    """Seconds of ringing estimated from the CDR: ``duration`` less the talk time, at least 0.

    The talk time is ``answer_sec`` (else ``bill_sec``) for an answered call; an unanswered one
    rang for its whole ``duration``.
    """
    if not answered:
        return float(cdr.duration)
    talk = cdr_talk_sec(cdr)
    return float(max(0.0, cdr.duration - (cdr_billed_talk_sec(cdr) if talk is None else talk)))
