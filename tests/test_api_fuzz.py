"""Schemathesis against the real server (`vwin serve` on a free port): for a manager's token,
a specialist's and none, no route answers 5xx and every answer conforms to the document.

Bounded (a few examples an operation, no deadline) and deterministic (derandomized) so it
takes about a minute on a busy 2-core machine."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.storage.db import open_database
from tests.helpers import _QUICK_HASH, QUICK_PASSWORD

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = 6
# Operations that would end the identity under test, or never end (a stream).
SKIP = {("POST", "/api/logout"), ("POST", "/api/password"), ("GET", "/api/queues/stream")}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def accounts(url: str) -> None:
    async with open_database(url) as db:
        await db.add_user("boss", "manager", _QUICK_HASH, "Boss", None, {})
        await db.add_user("lin", "specialist", _QUICK_HASH, "Lin", "tax", {"tax": 1})
        await db.add_site("park1", "Park", "park")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite+aiosqlite:///{tmp / 'vwin.db'}"
    asyncio.run(accounts(url))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VWIN_")}
    env.update({"VWIN_SERVER_PORT": str(port), "VWIN_STORAGE_URL": f'"{url}"',
                "VWIN_RECORDING_ENABLED": "false", "VWIN_AUTH_MAX_FAILURES": "1000000",
                "VWIN_AUTH_MAX_FAILURES_PER_ADDRESS": "1000000"})
    log = (tmp / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("vwin serve did not start: " + (tmp / "serve.log").read_text())
    yield base
    proc.terminate()
    proc.wait(30)
    log.close()
    output = (tmp / "serve.log").read_text()
    assert "Traceback" not in output, output


def token(base: str, username: str) -> str:
    resp = requests.post(base + "/api/login", json={"username": username,
                                                    "password": QUICK_PASSWORD}, timeout=30)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["token"])


@pytest.mark.timeout(600)
@pytest.mark.parametrize("who", ["manager", "specialist", "nobody"])
def test_every_operation_answers_within_the_document(server: str, who: str) -> None:
    headers = {}
    if who != "nobody":
        headers["Authorization"] = "Bearer " + token(server, "boss" if who == "manager"
                                                     else "lin")
    schema = schemathesis.openapi.from_url(server + "/api/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server, headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert not failures, "\n\n".join(failures)
