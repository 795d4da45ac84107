"""`GET /metrics`: who may read it, what a scrape shows while calls run, the Grafana board."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from server.http.metrics import allowed
from server.metrics import exported_names
from tests.helpers import add_terminal, connect, connected_call, make_settings

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "configs" / "grafana" / "vwin.json"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    found = [v for (n, ls), v in samples(text).items()
             if n == name and set(labels.items()) <= set(ls)]
    assert len(found) == 1, (name, labels, found)
    return found[0]


async def scrape(client: Any, **headers: str) -> str:
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return str(await resp.text())


async def test_a_scrape_shows_queues_connections_log_and_health(
    app_client: Any, routing_backend: str
) -> None:
    call = await connected_call(app_client)
    waiting = await connect(app_client, await add_terminal(app_client.server.app, "T2"))
    await waiting.send({"type": "call.request", "queue": "tax"})  # alice is busy: it waits
    await waiting.recv("call.queued")

    text = await scrape(app_client)
    assert value(text, "vwin_queue_waiting", queue="tax", node="test") == 1
    assert value(text, "vwin_queue_waiting", queue="general") == 0
    assert value(text, "vwin_queue_longest_wait_seconds", queue="tax") >= 0
    assert value(text, "vwin_queue_agents", queue="tax", state="busy") == 1
    assert value(text, "vwin_queue_agents", queue="tax", state="available") == 0
    assert value(text, "vwin_queue_calls_today", queue="tax", outcome="answered") == 1
    assert value(text, "vwin_queue_calls_today", queue="tax", outcome="offered") == 2
    assert value(text, "vwin_queue_calls_today", queue="general", outcome="offered") == 0
    assert value(text, "vwin_queue_service_level_ratio", queue="tax") == 1.0
    assert value(text, "vwin_websocket_connections", role="terminal") == 2
    assert value(text, "vwin_websocket_connections", role="specialist") == 1
    assert value(text, "vwin_session_log_append_seconds_count") >= 3  # queued, offered, answered
    assert value(text, "vwin_up", dependency="database") == 1
    if routing_backend == "redis":
        assert value(text, "vwin_up", dependency="redis") == 1
    else:
        assert not [k for k in samples(text) if ("dependency", "redis") in k[1]]
    assert value(text, "process_resident_memory_bytes") > 10_000_000
    assert value(text, "vwin_turn_credentials_issued_total") >= 0
    assert value(text, "vwin_recorders") == 0  # recording is off in this app

    await call.kiosk.send({"type": "call.hangup", "call_id": call.call_id})
    await call.agent.recv("call.ended")
    await call.kiosk.close()
    text = await scrape(app_client)
    assert value(text, "vwin_queue_agents", queue="tax", state="busy") == 1  # wrap-up
    assert value(text, "vwin_websocket_connections", role="terminal") == 1


async def test_message_handling_time_by_type_and_the_loop_lag_are_exported(
    app_client: Any
) -> None:
    call = await connected_call(app_client)  # a request, an accept: each handled once
    await call.kiosk.send({"type": "ping"})
    await call.kiosk.recv("pong")
    text = await scrape(app_client)
    for tag in ("call.request", "call.accept", "ping"):
        assert value(text, "vwin_message_handle_seconds_count", type=tag) >= 1
        assert 0 < value(text, "vwin_message_handle_seconds_sum", type=tag) < 5
        assert value(text, "vwin_message_handle_seconds_bucket", type=tag, le="+Inf") >= 1
    assert not [k for k in samples(text) if ("type", "call.hangup") in k[1]]  # none sent
    await call.kiosk.send({"type": "rtc.candidate", "call_id": call.call_id,
                           "to": call.agent_id, "candidate": None})
    await call.agent.recv("rtc.candidate")  # relayed, and (forwarded, no step) not timed
    assert not [k for k in samples(await scrape(app_client)) if ("type", "rtc.candidate") in k[1]]
    await call.kiosk.send({"type": "call.hangup", "call_id": call.call_id})
    await call.agent.recv("call.ended")
    text = await scrape(app_client)
    assert value(text, "vwin_message_handle_seconds_count", type="call.hangup") == 1
    for _ in range(100):  # the lag is sampled every 0.1 s from the app's start
        if value(text, "vwin_event_loop_lag_seconds_count") >= 2:
            break
        await call.kiosk.send({"type": "ping"})  # a round trip, not a fixed sleep
        await call.kiosk.recv("pong")
        text = await scrape(app_client)
    assert value(text, "vwin_event_loop_lag_seconds_count") >= 2
    assert 0 <= value(text, "vwin_event_loop_lag_seconds_sum") < 60


async def test_only_allowed_addresses_or_the_token_may_read(
    aiohttp_client: Any, sqlite_url: str
) -> None:
    from server.app import create_app

    closed = await aiohttp_client(create_app(make_settings(
        sqlite_url, metrics={"allow": [], "token": "s3cret-metrics"})))
    assert (await closed.get("/metrics")).status == 403
    assert (await closed.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 403
    assert "vwin_up" in await scrape(closed, Authorization="Bearer s3cret-metrics")


def test_address_rules() -> None:
    default = make_settings("sqlite+aiosqlite:///x.db").metrics
    assert allowed(default, "", "127.0.0.1")
    assert allowed(default, "", "::1")
    assert allowed(default, "", "::ffff:127.0.0.1")
    assert not allowed(default, "", "10.1.2.3")
    assert not allowed(default, "", None)
    office = make_settings("sqlite+aiosqlite:///x.db", metrics={"allow": ["10.8.0.0/16"]}).metrics
    assert allowed(office, "", "10.8.3.4") and not allowed(office, "", "10.9.0.1")
    assert allowed(office, "Bearer anything", "10.8.3.4")  # no token configured: address rules
    both = make_settings("sqlite+aiosqlite:///x.db", metrics={"token": "t0k"}).metrics
    assert allowed(both, "Bearer t0k", "192.0.2.7")
    assert not allowed(both, "Bearer wrong", "127.0.0.1")  # a wrong token is refused anywhere


def dashboard_names() -> set[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert len(exprs) >= 12
    return {name for e in exprs for name in re.findall(r"\b((?:vwin|process)_[a-z_]+)\b", e)}


async def test_every_metric_the_grafana_board_queries_is_exported(app_client: Any) -> None:
    await connected_call(app_client)  # the append histogram has samples
    exported = exported_names(await scrape(app_client))
    missing = dashboard_names() - exported
    assert not missing, f"the dashboard queries metrics nobody exports: {sorted(missing)}"


async def test_turn_credentials_handed_out_are_counted(aiohttp_client: Any, sqlite_url: str
                                                      ) -> None:
    from server.app import create_app

    client = await aiohttp_client(create_app(make_settings(sqlite_url, turn={
        "secret": "s3cret", "urls": ["turn:127.0.0.1:3478?transport=udp"]})))
    before = value(await scrape(client), "vwin_turn_credentials_issued_total")
    kiosk = await connect(client, await add_terminal(client.server.app, "T1"))
    assert any("credential" in s for s in kiosk.welcome["ice_servers"])
    after = value(await scrape(client), "vwin_turn_credentials_issued_total")
    assert after == before + 1
