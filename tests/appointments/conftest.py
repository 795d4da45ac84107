"""Fixtures of the appointment tests: queues that take bookings, a valid USCC, slots."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from tests.joint.conftest import uscc

SHANGHAI = ZoneInfo("Asia/Shanghai")
ENTERPRISE = {"name": "上海嘉定测试有限公司", "uscc": uscc()}


def queues(**tax: Any) -> list[dict[str, Any]]:
    """`tax` takes appointments (two a 15-minute slot unless told); `general` does not."""
    return [{"id": "tax", "name": "税务咨询", "name_en": "Tax", "ring_timeout_s": 20, **tax},
            {"id": "general", "name": "综合咨询", "name_en": "General",
             "appointments_per_slot": 0}]


def tomorrow_at(hour: int, minute: int = 0) -> dt.datetime:
    today = dt.datetime.now(SHANGHAI).date()
    return dt.datetime.combine(today + dt.timedelta(days=1), dt.time(hour, minute), SHANGHAI)


def booking(start: dt.datetime, queue: str = "tax", **extra: Any) -> dict[str, Any]:
    return {"queue": queue, "start": start.isoformat(), "enterprise": ENTERPRISE, **extra}
