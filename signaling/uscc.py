"""Unified Social Credit Code (USCC) validation per GB 32100-2015.

Every Chinese market entity is identified by an 18-character code; the 18th
character is a check character over the first 17 (GB/T 17710 style, mod 31).
Kiosks and specialists type these codes by hand, so a typo must be caught with
a message that says which rule failed, before a joint action is started.

Structure (positions are 1-based, as the standard numbers them):
1 registration authority, 2 entity type, 3-8 administrative division
(GB/T 2260, digits), 9-17 entity identifier (GB 11714), 18 check character.
"""

from __future__ import annotations

#: The 31 characters of the code alphabet, in value order (no I, O, S, V, Z).
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
#: Weight of positions 1-17: 3**(i-1) mod 31, as tabulated in GB 32100-2015.
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18

_VALUES = {ch: value for value, ch in enumerate(ALPHABET)}
_EXCLUDED = "IOSVZ"


def describe_character(ch: str) -> str:
    """Quote one character so invisible or look-alike ones (full-width, spaces) show."""
    point = ord(ch)
    if 0x20 < point < 0x7F:
        return f"'{ch}'"
    if point <= 0x20 or 0x7F <= point <= 0xA0:
        return f"U+{point:04X}"
    return f"'{ch}' (U+{point:04X})"


def _character_error(code: str) -> str | None:
    """Name the first character outside the alphabet, with the likely fix."""
    for position, ch in enumerate(code, start=1):
        if ch in _VALUES:
            continue
        shown = describe_character(ch)
        if ch in _EXCLUDED:
            return (
                f"character {position} is {shown}: the letters I, O, S, V and Z "
                "are never used in a unified social credit code"
            )
        if ch.upper() in _VALUES:
            return f"character {position} is {shown}: letters must be upper case"
        return (
            f"character {position} is {shown}: only digits 0-9 and upper-case "
            "letters other than I, O, S, V, Z are allowed"
        )
    return None


def check_character(first17: str) -> str:
    """Return the check character (position 18) for the first 17 characters.

    Raises ValueError when ``first17`` is not 17 characters of the alphabet,
    because a check character over invalid input would look authoritative.
    """
    if len(first17) != LENGTH - 1:
        raise ValueError(f"expected 17 characters, got {len(first17)}")
    problem = _character_error(first17)
    if problem is not None:
        raise ValueError(problem)
    total = sum(_VALUES[ch] * weight for ch, weight in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def uscc_error(code: str) -> str | None:
    """Return a human message naming the first rule ``code`` breaks, or None if valid."""
    if len(code) != LENGTH:
        return f"a unified social credit code has 18 characters, this one has {len(code)}"
    problem = _character_error(code)
    if problem is not None:
        return problem
    if not code[2:8].isdigit():
        position = next(i for i, ch in enumerate(code[2:8], start=3) if not ch.isdigit())
        shown = describe_character(code[position - 1])
        return (
            f"character {position} is {shown}: characters 3-8 are the "
            "administrative division code and must be digits"
        )
    expected = check_character(code[:17])
    if code[17] != expected:
        shown = describe_character(code[17])
        return f"check character (18th) should be '{expected}', not {shown}"
    return None


def is_valid_uscc(code: str) -> bool:
    """True when ``code`` is a well-formed USCC with a correct check character."""
    return uscc_error(code) is None
