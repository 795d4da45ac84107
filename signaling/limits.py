"""One set of input limits for the WebSocket protocol and the HTTP API alike.

Every field a client can send is one of these types, so a name, a note or a
reason has the same maximum length wherever it arrives, and every id an
operator chooses (site, terminal, unit/department, username) matches one
pattern (`SLUG_PATTERN`, documented in docs/security.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

NAME_MAX = 200  # a person's, site's or enterprise's name; a queue or terminal label
TEXT_MAX = 2000  # a chat line, a rating comment, a rejection reason, a matter's note
NOTES_MAX = 10_000  # a wrap-up's notes, a pending matter's description
FIELD_MAX = 500  # one field of a joint action's form
ID_MAX = 128  # protocol ids (call, session, participant ids are server-made)
SLUG_MAX = 64
PASSWORD_MIN = 8  # a new password (`POST /api/password`)
PASSWORD_MAX = 256  # argon2 hashes any length; a bound keeps a login cheap to refuse
TOKEN_MAX = 512
CURSOR_MAX = 512
JSON_BODY_MAX = 64 * 1024  # an HTTP API request body (the largest real one is a few KiB)

# Ids chosen by operators: ASCII letters and digits, then also `.`, `_`, `-`; 1..64 long.
SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

# Dates in queries and bodies: a period outside these years is a typo or a probe.
YEAR_MIN = 2000
YEAR_MAX = 2100
EARLIEST = dt.datetime(YEAR_MIN, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(YEAR_MAX, 12, 31, tzinfo=dt.UTC)

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX)]
Slug = Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN, max_length=SLUG_MAX,
                                   description="letters, digits, `.`, `_`, `-`; 1-64")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
OptionalName = Annotated[str, msgspec.Meta(max_length=NAME_MAX)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=TEXT_MAX)]
OptionalText = Annotated[str, msgspec.Meta(max_length=TEXT_MAX)]
Notes = Annotated[str, msgspec.Meta(max_length=NOTES_MAX)]
Description = Annotated[str, msgspec.Meta(min_length=1, max_length=NOTES_MAX)]
FieldValue = Annotated[str, msgspec.Meta(max_length=FIELD_MAX)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=PASSWORD_MAX)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=TOKEN_MAX)]
Uscc = Annotated[str, msgspec.Meta(max_length=64)]  # the domain checks the 18 characters

# A visitor's signature (`form.sign`): a finger on a pad of at most 4096 x 4096 CSS pixels.
# 64 strokes and 4000 points in all are far more than a name written in Chinese needs; a
# frame of that many points still fits the 64 KiB frame limit.
SIGNATURE_SIZE_MAX = 4096
SIGNATURE_STROKES_MAX = 64
SIGNATURE_POINTS_MAX = 4000  # in all strokes together (the step checks the sum)
Coordinate = Annotated[float, msgspec.Meta(ge=0, le=SIGNATURE_SIZE_MAX)]
PadSide = Annotated[int, msgspec.Meta(ge=1, le=SIGNATURE_SIZE_MAX)]
