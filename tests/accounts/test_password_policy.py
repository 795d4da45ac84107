"""The password policy, and the units' subtree and roll-up buckets, without a server."""

from __future__ import annotations

import datetime as dt

import pytest

from server.passwordpolicy import WeakPassword, check_password, common_passwords
from server.passwords import one_time_password
from server.storage.records import Unit
from server.storage.units import buckets, subtree


@pytest.mark.parametrize("password,code", [
    ("", "password_too_short"),
    ("nine-char", "password_too_short"),
    ("x" * 257, "password_too_long"),
    ("my-zhou-password", "password_contains_username"),
    ("MY-ZHOU-PASSWORD", "password_contains_username"),
    ("1234567890", "password_common"),
    ("qwertyuiop", "password_common"),
    ("Password2024", "password_common"),
    ("Jiading-window-7", None),
    ("iloveyou123", "password_common"),
    ("correct horse battery", None),
    ("七个汉字也不够长", "password_too_short"),
    ("这是一个足够长的中文密码啊", None),
])
def test_the_policy(password: str, code: str | None) -> None:
    if code is None:
        check_password(password, "zhou")
        return
    with pytest.raises(WeakPassword) as refused:
        check_password(password, "zhou")
    assert refused.value.code == code


def test_the_shipped_list_is_thousands_of_lower_case_passwords() -> None:
    common = common_passwords()
    assert len(common) > 3000
    assert {"password", "123456", "qwerty", "woaini1314", "1qaz2wsx"} <= common
    assert all(p == p.lower() and p.strip() == p for p in common)


def test_one_time_passwords_pass_the_policy_and_differ() -> None:
    made = {one_time_password("lin") for _ in range(50)}
    assert len(made) == 50
    for password in made:
        check_password(password, "lin")


def _units(*rows: tuple[str, str | None]) -> list[Unit]:
    now = dt.datetime.now(dt.UTC)
    return [Unit(id=u, name=u, level="district", parent_id=p, created_at=now) for u, p in rows]


def test_subtrees_and_roll_up_buckets() -> None:
    units = _units(("sh", None), ("jd", "sh"), ("hp", "sh"), ("jd-xc", "jd"), ("xc-1", "jd-xc"),
                   ("hp-wt", "hp"))
    parents = {u.id: u.parent_id for u in units}
    assert subtree(parents, "jd") == {"jd", "jd-xc", "xc-1"}
    assert subtree(parents, "xc-1") == {"xc-1"}
    assert buckets(units, "sh") == {"sh": "sh", "jd": "jd", "jd-xc": "jd", "xc-1": "jd",
                                    "hp": "hp", "hp-wt": "hp"}
    assert buckets(units, "jd") == {"jd": "jd", "jd-xc": "jd-xc", "xc-1": "jd-xc"}
    assert set(buckets(units, None).values()) == {"sh"}
    looped = _units(("a", "b"), ("b", "a"))  # a broken table never loops forever
    assert set(buckets(looped, "a")) == {"a", "b"}
