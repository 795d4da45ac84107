"""Joint actions through the real server: started and signed in a call, finished over HTTP."""

from __future__ import annotations

from typing import Any

from server import keys
from tests.helpers import bearer, connect, specialist_ready
from tests.joint.conftest import call_with, staff, uscc

DEREG = "sole_proprietor_deregistration"


async def test_deregistration_started_in_call_and_completed_later_by_tax(client: Any) -> None:
    app = client.server.app
    rita = await staff(app, "rita", "market_regulation", {"registration": 1})
    tom = await staff(app, "tom", "tax", {"tax": 1})
    boss = await staff(app, "boss", None, role="manager")
    kiosk, agent, call_id, session_id = await call_with(client, rita)

    await kiosk.send({"type": "action.start", "call_id": call_id, "action": DEREG,
                      "enterprise": {"name": "Jiading Noodles", "uscc": uscc()}})
    assert (await kiosk.error("forbidden"))["refused"] == "action.start"
    await agent.send({"type": "action.start", "call_id": call_id, "action": DEREG,
                      "enterprise": {"name": "Jiading Noodles", "uscc": uscc()[:17] + "0"}})
    assert "check character" in (await agent.error("invalid_enterprise"))["message"]

    await agent.send({"type": "action.start", "call_id": call_id, "action": DEREG,
                      "enterprise": {"name": "Jiading Noodles", "uscc": uscc()}})
    started = await agent.recv("action.updated")
    assert (await kiosk.recv("action.updated")) == started
    assert started["state"] == "open" and started["session_id"] == session_id
    assert [(s["id"], s["department"], s["signed_by"]) for s in started["steps"]] == [
        ("licence_cancelled", "market_regulation", None),
        ("tax_clearance_confirmed", "tax", None)]
    action_id = started["action_id"]

    await agent.send({"type": "action.sign", "action_id": action_id,
                      "step": "tax_clearance_confirmed"})
    await agent.error("wrong_department")
    await agent.send({"type": "action.sign", "action_id": action_id, "step": "licence_cancelled"})
    signed = await kiosk.recv("action.updated")
    assert signed["steps"][0]["signed_by"] == "rita" and signed["state"] == "open"

    other = await connect(client, tom)  # a tax specialist outside the call
    await other.send({"type": "action.start", "call_id": call_id, "action": DEREG,
                      "enterprise": {"name": "X", "uscc": uscc()}})
    await other.error("not_in_call")
    resp = await client.post(f"/api/actions/{action_id}/sign", headers=bearer(tom),
                             json={"step": "licence_cancelled"})
    assert resp.status == 403 and (await resp.json())["error"] == "wrong_department"
    resp = await client.post(f"/api/actions/{action_id}/sign", headers=bearer(tom),
                             json={"step": "tax_clearance_confirmed"})
    assert resp.status == 200 and (await resp.json())["action"]["state"] == "completed"
    done = await kiosk.recv("action.updated", state="completed")
    assert done["steps"][1]["signed_by"] == "tom"
    resp = await client.post(f"/api/actions/{action_id}/reject", headers=bearer(tom),
                             json={"reason": "too late"})
    assert resp.status == 409

    resp = await client.get(f"/api/actions?action={DEREG}&state=completed", headers=bearer(boss))
    listed = (await resp.json())["actions"]
    assert [a["action_id"] for a in listed] == [action_id]
    detail = await (await client.get(f"/api/actions/{action_id}", headers=bearer(boss))).json()
    assert [e["event"] for e in detail["audit"]] == [
        "started", "step_signed", "step_signed", "completed"]
    assert (await client.get("/api/actions", headers=bearer(tom))).status == 200
    count, problem = await app[keys.DB].verify_audit()
    assert (count, problem) == (4, None)


async def test_a_department_rejects_with_a_reason(client: Any) -> None:
    app = client.server.app
    rita = await staff(app, "rita", "market_regulation", {"registration": 1})
    lee = await staff(app, "lee", "culture", {"tax": 1})
    kiosk, agent, call_id, _ = await call_with(client, rita)
    await agent.send({"type": "action.start", "call_id": call_id,
                      "action": "registered_address_change",
                      "enterprise": {"name": "Anting Parts", "uscc": uscc("91310114ANTKNG")}})
    await agent.error("missing_field")
    await agent.send({"type": "action.start", "call_id": call_id,
                      "action": "registered_address_change",
                      "enterprise": {"name": "Anting Parts", "uscc": uscc("91310114ANTKNG")},
                      "fields": {"new_address": "88 Moyu Road"}})
    action_id = (await kiosk.recv("action.updated"))["action_id"]
    resp = await client.post(f"/api/actions/{action_id}/reject", headers=bearer(lee),
                             json={"reason": "not ours"})
    assert resp.status == 403
    await agent.send({"type": "action.reject", "action_id": action_id,
                      "reason": "lease contract missing"})
    rejected = await kiosk.recv("action.updated", state="rejected")
    assert rejected["reason"] == "lease contract missing" and rejected["rejected_by"] == "rita"
    assert rejected["fields"] == {"new_address": "88 Moyu Road"}
    await specialist_ready(client, lee)
    resp = await client.get(f"/api/actions/{action_id}", headers=bearer(lee))
    assert resp.status == 404  # culture takes no part in it


async def test_two_departments_sign_in_one_call(client: Any) -> None:
    """The registration specialist invites tax; each signs their own step in the call."""
    app = client.server.app
    rita = await staff(app, "rita", "market_regulation", {"registration": 1})
    tom = await specialist_ready(client, await staff(app, "tom", "tax", {"tax": 1}))
    kiosk, agent, call_id, _ = await call_with(client, rita)
    await agent.send({"type": "call.invite", "call_id": call_id, "queue": "tax"})
    invited = await tom.recv("call.offered")
    await tom.send({"type": "call.accept", "call_id": invited["call_id"]})
    joined = await tom.recv("call.connected")
    assert joined["call_id"] == call_id and len(joined["participants"]) == 3

    await tom.send({"type": "action.start", "call_id": call_id, "action": DEREG,
                    "enterprise": {"name": "Jiading Noodles", "uscc": uscc()}})
    action_id = (await kiosk.recv("action.updated"))["action_id"]
    await agent.recv("action.updated", action_id=action_id)
    await tom.send({"type": "action.sign", "action_id": action_id, "step": "licence_cancelled"})
    await tom.error("wrong_department")
    await tom.send({"type": "action.sign", "action_id": action_id,
                    "step": "tax_clearance_confirmed"})
    await agent.send({"type": "action.sign", "action_id": action_id, "step": "licence_cancelled"})
    for peer in (kiosk, agent, tom):
        done = await peer.recv("action.updated", state="completed")
        assert {s["signed_by"] for s in done["steps"]} == {"rita", "tom"}
    assert (await app[keys.DB].verify_audit())[1] is None
