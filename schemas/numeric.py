"""Regular expressions (in the syntax ECMA-262 and Python share) of the strings the webhook
parser reads as a number or a boolean, for the published schemas.

The parser (msgspec, ``strict=False``) reads a string as a number when it is a JSON number
(``-0``, ``12``, ``12.50``, ``1e3``; no ``+``, no leading zero, no spaces), then applies the
field's bounds; an integer field takes a fraction or an exponent only when the double they make
is integral. A pattern can hold the bounds for the plain forms but cannot follow an exponent
moving the decimal point, nor a double's rounding, so these describe what the parser accepts
except: a non-zero number with an exponent other than 0 (``"1e3"``, ``"150e-1"``), and digits
beyond a double's precision (``"0.99999999999999999"`` read as 1). The strings they match are
all accepted.
"""

from __future__ import annotations

# Zero in every form: any exponent keeps it zero, and -0.0 passes a bound of 0.
_ZERO = r"-?0(\.0+)?([eE][+-]?[0-9]+)?"
_NO_EXPONENT = r"([eE][+-]?0+)?"
# A field that may be null and holds no text (a number, a boolean, an object, a list) reads
# the string "null", in any case, as null.
_NULL = "[Nn][Uu][Ll][Ll]"
NULL_PATTERN = f"^{_NULL}$"


def _anchored(alternatives: list[str], reads_null: bool) -> str:
    return "^(" + "|".join([*alternatives, *([_NULL] if reads_null else [])]) + ")$"


def digits_up_to(high: int) -> str:
    """The decimal integers 0..``high`` as written without leading zeros."""
    if high < 0:
        raise ValueError("no integer from 0 up to a negative bound")
    text = str(high)
    width = len(text)
    if width > 1 and set(text) == {"9"}:
        return f"(0|[1-9][0-9]{{0,{width - 1}}})"
    # Fewer digits than ``high``, then as many: a smaller digit at some place, any after it.
    alternatives = [f"0|[1-9]{_repeat(0, width - 2)}"] if width > 1 else []
    for place, digit in enumerate(text):
        lowest = 1 if place == 0 and width > 1 else 0
        if int(digit) > lowest:
            smaller = f"[{lowest}-{int(digit) - 1}]" if int(digit) - 1 > lowest else str(lowest)
            alternatives.append(text[:place] + smaller + _repeat(width - place - 1))
    alternatives.append(text)
    return "(" + "|".join(alternatives) + ")"


def _repeat(low: int, high: int | None = None) -> str:
    """``[0-9]`` repeated ``low`` times, or ``low`` to ``high`` times."""
    high = low if high is None else high
    if high == 0:
        return ""
    if low == high:
        return "[0-9]" if low == 1 else f"[0-9]{{{low}}}"
    return f"[0-9]{{{low},{high}}}"


def _from_zero(low: int) -> None:
    if low != 0:
        raise ValueError(f"only fields bounded below by 0 are described, not {low}")


def integer_pattern(low: int, high: int, reads_null: bool) -> str:
    """Strings an integer field in [``low``, ``high``] accepts (``low`` must be 0); with
    ``reads_null``, "null" too."""
    _from_zero(low)
    return _anchored([_ZERO, digits_up_to(high) + r"(\.0+)?" + _NO_EXPONENT], reads_null)


def number_pattern(low: int, high: int, reads_null: bool) -> str:
    """Strings a float field in [``low``, ``high``] accepts (``low`` must be 0, ``high`` an
    integer): below ``high`` any fraction, at ``high`` only zeros."""
    _from_zero(low)
    below = digits_up_to(high - 1) + r"(\.[0-9]+)?" + _NO_EXPONENT
    top = str(high) + r"(\.0+)?" + _NO_EXPONENT
    return _anchored([_ZERO, below, top], reads_null)


def bool_pattern(reads_null: bool) -> str:
    """Strings a boolean field accepts: true/false in any case, and 0 and 1 (-0 too)."""
    return _anchored(["[Tt][Rr][Uu][Ee]", "[Ff][Aa][Ll][Ss][Ee]", "-?0", "1"], reads_null)
