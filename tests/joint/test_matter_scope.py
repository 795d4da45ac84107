"""A specialist opens pending matters for their own department only, and links one only to a
session they took part in (a manager may do either for any department and session)."""

from __future__ import annotations

from typing import Any

from tests.helpers import bearer
from tests.joint.conftest import call_with, staff, uscc


def matter(**extra: Any) -> dict[str, Any]:
    return {"enterprise": {"name": "Nanxiang Dumplings", "uscc": uscc()},
            "description": "licence and tax clearance", "class": "general", **extra}


async def test_a_specialist_opens_matters_for_their_own_department_only(client: Any) -> None:
    app = client.server.app
    tom = await staff(app, "tom", "tax")
    boss = await staff(app, "boss", None, role="manager")
    resp = await client.post("/api/matters", headers=bearer(tom),
                             json=matter(department="market_regulation"))
    assert resp.status == 403
    assert (await resp.json())["error"] == "wrong_department"
    listed = await (await client.get("/api/matters", headers=bearer(boss))).json()
    assert listed["matters"] == []
    resp = await client.post("/api/matters", headers=bearer(tom), json=matter(department="tax"))
    assert resp.status == 201
    resp = await client.post("/api/matters", headers=bearer(boss),
                             json=matter(department="market_regulation"))
    assert resp.status == 201


async def test_a_matter_links_only_to_a_session_one_took_part_in(client: Any) -> None:
    app = client.server.app
    rita = await staff(app, "rita", "registration", {"registration": 1})
    tom = await staff(app, "tom", "tax", {"tax": 1})
    boss = await staff(app, "boss", None, role="manager")
    _, _, _, session_id = await call_with(client, rita)
    resp = await client.post("/api/matters", headers=bearer(tom),
                             json=matter(session_id=session_id))
    assert resp.status == 403
    assert (await resp.json())["error"] == "not_a_participant"
    for token in (rita, boss):
        resp = await client.post("/api/matters", headers=bearer(token),
                                 json=matter(session_id=session_id, department="registration"))
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["matter"]["session_id"] == session_id
