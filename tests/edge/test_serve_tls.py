"""`vwin serve` with `[server] tls_cert/tls_key` serves HTTPS and WSS itself (its local
recorder joins over WSS), and with `[turn] local = true` runs Debian's coturn beside
itself, restarts it when it dies and stops it with itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest

from server.config import TurnSettings
from server.turn import check_allocation
from tests.edge.serve import MANAGER, VwinServe, client_tls, self_signed
from tests.turn.coturn import SECRET, free_port

pytestmark = pytest.mark.slow


async def test_https_wss_and_the_local_turnserver(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    turn_port, low = free_port(), random.randrange(20000, 29000)
    turn_url = f"turn:127.0.0.1:{turn_port}?transport=tcp"
    serve = VwinServe(tmp_path, extra=f"""tls_cert = "{cert}"
tls_key = "{key}"

[turn]
secret = "{SECRET}"
urls = ["{turn_url}"]
local = true
listen_ip = "127.0.0.1"
port = {turn_port}
min_port = {low}
max_port = {low + 20}
""", recording=True)
    tls = client_tls(cert)
    base = f"https://127.0.0.1:{serve.port}"
    try:
        await serve.start(base, tls)
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/login", ssl=tls) as page:
                assert page.status == 200 and "text/html" in page.headers["Content-Type"]
                assert page.headers["Strict-Transport-Security"].startswith("max-age=")
            async with http.post(base + "/api/login", ssl=tls, json={
                    "username": MANAGER[0], "password": MANAGER[1]}) as login:
                assert login.status == 200
                cookies = login.headers.getall("Set-Cookie")
                assert cookies and all("Secure" in c for c in cookies), cookies
                auth = {"Authorization": f"Bearer {(await login.json())['token']}"}
            for _ in range(300):  # the local recorder joins over WSS to 127.0.0.1
                async with http.get(base + "/api/recorders", ssl=tls, headers=auth) as r:
                    if (await r.json())["recorders"]:
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"no local recorder: {serve.output()[-2000:]}")
            async with http.ws_connect(f"wss://127.0.0.1:{serve.port}/ws", ssl=tls) as ws:
                await ws.send_str(json.dumps({"type": "hello", "token": serve.terminal_token}))
                welcome = json.loads((await ws.receive(timeout=15)).data)
            assert welcome["type"] == "welcome" and welcome["id"] == "T1"
            [turn] = welcome["ice_servers"]
            assert turn["urls"] == [turn_url] and turn["username"].endswith(":terminal:T1")
        async with aiohttp.ClientSession() as http:  # plain HTTP is not served
            with pytest.raises(aiohttp.ClientError):
                await http.get(f"http://127.0.0.1:{serve.port}/login")
        settings = TurnSettings(secret=SECRET, urls=[turn_url])
        assert (await check_allocation(settings)).startswith("127.0.0.1:")
        assert serve.process is not None
        [child] = subprocess.run(["pgrep", "-P", str(serve.process.pid), "-x", "turnserver"],
                                 capture_output=True, text=True, check=True).stdout.split()
        os.kill(int(child), signal.SIGKILL)  # a dying turnserver is restarted
        for _ in range(100):
            with contextlib.suppress(ConnectionError):
                await check_allocation(settings, timeout=1)
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"turnserver not restarted: {serve.output()[-2000:]}")
    finally:
        code = serve.stop()
    assert code == 0, serve.output()[-3000:]
    with pytest.raises(ConnectionError):  # the turnserver stopped with `vwin serve`
        await check_allocation(settings, timeout=2)
