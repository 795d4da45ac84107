"""configs/nginx/vwin.conf as shipped (paths and ports substituted) in front of a real
`vwin serve` with `trusted_proxies = ["127.0.0.1"]`: Debian's nginx terminates TLS with a
self-signed certificate; pages load, the login cookies are Secure, HSTS is sent once, a
WebSocket hello is welcomed through it, plain HTTP redirects to HTTPS, and the service
logs the client's address (127.0.0.2 here), not the proxy's."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.edge.serve import MANAGER, ROOT, VwinServe, client_tls, self_signed
from tests.turn.coturn import free_port

pytestmark = pytest.mark.slow
SAMPLE = ROOT / "configs" / "nginx" / "vwin.conf"
CLIENT_IP = "127.0.0.2"  # all of 127/8 is loopback: the client differs from the proxy


def site_config(upstream: int, https: int, http: int, cert: Path, key: Path) -> str:
    text = SAMPLE.read_text()
    for old, new in (("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream};"),
                     ("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;"),
                     ("listen 80;", f"listen 127.0.0.1:{http};"),
                     ("/etc/ssl/vwin/fullchain.pem", str(cert)),
                     ("/etc/ssl/vwin/privkey.pem", str(key))):
        assert old in text, old
        text = text.replace(old, new)
    return "\n".join(line for line in text.splitlines() if "listen [::]" not in line)


class Nginx:
    def __init__(self, directory: Path, site: str) -> None:
        self.directory = directory
        (directory / "vwin-site.conf").write_text(site)
        temp = " ".join(f"{kind}_temp_path {directory}/{kind};"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        self.conf = directory / "nginx.conf"
        self.conf.write_text(f"""user root;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log {directory}/nginx-access.log;
    {temp}
    include {directory}/vwin-site.conf;
}}
""")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["nginx", "-p", str(self.directory), "-c", str(self.conf)]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen([*command, "-g", "daemon off;"],
                                        stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[VwinServe, Nginx, int, int, Path]]:
    if shutil.which("nginx") is None:
        pytest.fail("nginx is missing: apt-get install -y nginx-light (make install-test)")
    cert, key = self_signed(tmp_path)
    serve = VwinServe(tmp_path, extra='trusted_proxies = ["127.0.0.1"]')
    https, http = free_port(), free_port()
    nginx = Nginx(tmp_path, site_config(serve.port, https, http, cert, key))
    try:
        yield serve, nginx, https, http, cert
    finally:
        nginx.stop()
        serve.stop()


async def test_nginx_sample_in_front_of_vwin_serve(
        served: tuple[VwinServe, Nginx, int, int, Path]) -> None:
    serve, nginx, https, http, cert = served
    nginx.start()
    base = f"https://127.0.0.1:{https}"
    tls = client_tls(cert)
    await serve.start(base, tls)
    connector = aiohttp.TCPConnector(local_addr=(CLIENT_IP, 0), ssl=tls)
    async with aiohttp.ClientSession(connector=connector) as client:
        async with client.get(base + "/login") as page:
            assert page.status == 200 and "text/html" in page.headers["Content-Type"]
            assert len(page.headers.getall("Strict-Transport-Security")) == 1
        async with client.post(base + "/api/login", json={
                "username": MANAGER[0], "password": MANAGER[1]}) as login:
            assert login.status == 200
            cookies = login.headers.getall("Set-Cookie")
            assert len(cookies) == 2 and all("Secure" in c for c in cookies), cookies
        async with client.ws_connect(f"wss://127.0.0.1:{https}/ws",
                                     origin=base) as ws:
            await ws.send_str(json.dumps({"type": "hello", "token": serve.terminal_token}))
            welcome = json.loads((await ws.receive(timeout=15)).data)
            assert welcome["type"] == "welcome" and welcome["id"] == "T1"
            await ws.send_str('{"type": "ping"}')
            seen = [json.loads((await ws.receive(timeout=15)).data)["type"] for _ in range(2)]
            assert "pong" in seen, seen
        async with client.get(f"http://127.0.0.1:{http}/kiosk",
                              allow_redirects=False) as plain:
            assert plain.status == 301
            assert plain.headers["Location"] == "https://127.0.0.1/kiosk"
    logged = [line for line in serve.output().splitlines() if " GET /login " in line]
    assert logged and all(f" {CLIENT_IP} GET /login " in line for line in logged), logged
