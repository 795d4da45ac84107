"""A kiosk host in a network namespace of its own, joined to this host by a veth pair,
whose nftables firewall drops every UDP packet and lets out only TCP to the server's
HTTP and TURN ports: what a kiosk behind a strict corporate firewall sees."""

from __future__ import annotations

import random
import secrets
import subprocess


def _run(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class KioskHost:
    """`ip netns` + veth; `server_ip` is this host's end, `kiosk_ip` the namespace's."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.netns, self.outside, self.inside = f"vwk{tag}", f"vwa{tag}", f"vwb{tag}"
        a, b = random.randrange(200, 250), random.randrange(0, 64) * 4
        self.server_ip, self.kiosk_ip = f"10.{a}.{b}.1", f"10.{a}.{b}.2"
        self.created = False

    def up(self) -> None:
        _run("ip", "netns", "add", self.netns)
        self.created = True
        _run("ip", "link", "add", self.outside, "type", "veth", "peer", "name", self.inside)
        _run("ip", "link", "set", self.inside, "netns", self.netns)
        _run("ip", "addr", "add", f"{self.server_ip}/30", "dev", self.outside)
        _run("ip", "link", "set", self.outside, "up")
        self.exec("ip", "addr", "add", f"{self.kiosk_ip}/30", "dev", self.inside)
        self.exec("ip", "link", "set", self.inside, "up")
        self.exec("ip", "link", "set", "lo", "up")

    def firewall(self, tcp_ports: list[int]) -> None:
        """Drop all UDP; out only TCP to `tcp_ports` on the server (and loopback)."""
        ports = ", ".join(str(p) for p in tcp_ports)
        rules = f"""
table inet kiosk {{
  counter udp_dropped {{}}
  chain out {{
    type filter hook output priority 0; policy drop;
    oif lo accept
    meta l4proto udp counter name udp_dropped drop
    ip daddr {self.server_ip} tcp dport {{ {ports} }} accept
    ct state established,related accept
  }}
  chain in {{
    type filter hook input priority 0; policy drop;
    iif lo accept
    meta l4proto udp counter name udp_dropped drop
    ct state established,related accept
  }}
}}
"""
        self.exec("nft", "-f", "-", stdin=rules)

    def udp_dropped(self) -> int:
        out = self.exec("nft", "list", "counter", "inet", "kiosk", "udp_dropped")
        return int(out.split("packets")[1].split()[0])

    def exec(self, *args: str, stdin: str | None = None) -> str:
        return _run("ip", "netns", "exec", self.netns, *args, stdin=stdin)

    def down(self) -> None:
        """Deleting the namespace deletes its veth end, and with it this host's end."""
        if self.created:
            subprocess.run(["ip", "netns", "del", self.netns], check=False)
            subprocess.run(["ip", "link", "del", self.outside], check=False,
                           capture_output=True)
            self.created = False
