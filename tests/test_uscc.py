"""USCC validation (GB 32100-2015): real codes, every typo caught, JS agrees with Python."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.uscc import ALPHABET, check_character, is_valid_uscc, uscc_error

USCC_JS = Path(__file__).resolve().parent.parent / "web" / "static" / "js" / "uscc.js"

# Published codes: the first is the one the brief cites; the next two are the
# valid vectors of dromara/hutool's CreditCodeUtilTest; the last two are the
# examples in winjs-dev/cloud-utils isUnifiedSocialCreditCode.ts (a company
# registered in Harbin and a sole proprietorship, prefix 92, in Shandong).
PUBLISHED_VALID = [
    "91110000802100433B",
    "91310115591693856A",
    "91310110666007217T",
    "91230184MA1BUFLT44",
    "92371000MA3MXH0E3W",
]

# hutool's test of an early pilot-region code that does not meet the standard.
PUBLISHED_INVALID = "91350211M00013FA1N"

alphabet_char = st.sampled_from(ALPHABET)
digit = st.sampled_from("0123456789")
prefix17 = st.tuples(
    st.text(alphabet_char, min_size=2, max_size=2),
    st.text(digit, min_size=6, max_size=6),
    st.text(alphabet_char, min_size=9, max_size=9),
).map("".join)


@pytest.mark.parametrize("code", PUBLISHED_VALID)
def test_published_codes_are_valid(code: str) -> None:
    assert uscc_error(code) is None
    assert is_valid_uscc(code)
    assert check_character(code[:17]) == code[17]


def test_pilot_code_outside_the_standard_is_rejected_naming_the_right_check_character() -> None:
    assert uscc_error(PUBLISHED_INVALID) == "check character (18th) should be '3', not 'N'"
    assert not is_valid_uscc(PUBLISHED_INVALID)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "a unified social credit code has 18 characters, this one has 0"),
        ("91110000802100433", "a unified social credit code has 18 characters, this one has 17"),
        ("91110000802100433B0", "a unified social credit code has 18 characters, this one has 19"),
        (
            "91110000802100433O",
            "character 18 is 'O': the letters I, O, S, V and Z are never used "
            "in a unified social credit code",
        ),
        ("91110000802100433b", "character 18 is 'b': letters must be upper case"),
        (
            "9111 000802100433B",
            "character 5 is U+0020: only digits 0-9 and upper-case letters other than "
            "I, O, S, V, Z are allowed",
        ),
        (
            "9111000080210043３B",
            "character 17 is '３' (U+FF13): only digits 0-9 and upper-case letters "
            "other than I, O, S, V, Z are allowed",
        ),
        (
            "9111A000802100433B",
            "character 5 is 'A': characters 3-8 are the administrative division code "
            "and must be digits",
        ),
        ("91110000802100433C", "check character (18th) should be 'B', not 'C'"),
    ],
)
def test_each_broken_rule_is_named(code: str, message: str) -> None:
    assert uscc_error(code) == message
    assert not is_valid_uscc(code)


@pytest.mark.parametrize("bad", ["9111000080210043", "91110000802100433I", "9111000080210043s"])
def test_check_character_refuses_malformed_input(bad: str) -> None:
    with pytest.raises(ValueError):
        check_character(bad)


@settings(max_examples=300, deadline=None)
@given(prefix17)
def test_any_prefix_with_its_check_character_is_valid(prefix: str) -> None:
    assert uscc_error(prefix + check_character(prefix)) is None


@settings(max_examples=300, deadline=None)
@given(prefix17, st.integers(0, 17), st.integers(1, 30))
def test_any_single_character_change_is_rejected(prefix: str, index: int, shift: int) -> None:
    code = prefix + check_character(prefix)
    replacement = ALPHABET[(ALPHABET.index(code[index]) + shift) % 31]
    typo = code[:index] + replacement + code[index + 1 :]
    assert typo != code
    assert uscc_error(typo) is not None


def _js_errors(codes: list[str]) -> list[str | None]:
    node = shutil.which("node")
    assert node is not None, "node is required to test web/static/js/uscc.js"
    script = (
        f"const m = await import({json.dumps(USCC_JS.as_uri())});"
        "let input = ''; for await (const chunk of process.stdin) input += chunk;"
        "const codes = JSON.parse(input);"
        "const out = codes.map((c) => ({ error: m.usccError(c),"
        " check: c.length >= 17 && m.usccError(c) === null ? m.checkCharacter(c.slice(0, 17))"
        " : null }));"
        "process.stdout.write(JSON.stringify(out));"
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        input=json.dumps(codes),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = json.loads(result.stdout)
    for code, row in zip(codes, out, strict=True):
        if row["check"] is not None:
            assert row["check"] == code[17]
    return [row["error"] for row in out]


def test_javascript_validator_agrees_with_python() -> None:
    generated = [p + check_character(p) for p in ("12345678ABCDEFGHJ", "Y1000000KLMNPQRTU")]
    typos = [
        c[:i] + ("0" if c[i] != "0" else "1") + c[i + 1 :] for c in generated for i in (0, 9, 17)
    ]
    codes = [
        *PUBLISHED_VALID,
        PUBLISHED_INVALID,
        *generated,
        *typos,
        "",
        "91110000802100433",
        "91110000802100433OO",
        "91110000802100433O",
        "91110000802100433b",
        "9111 000802100433B",
        "9111000080210043３B",
        "9111A000802100433B",
        "91110000802100433\u200b",
        "中国11000802100433B",
    ]
    assert _js_errors(codes) == [uscc_error(c) for c in codes]
