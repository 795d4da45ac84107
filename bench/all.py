"""Every benchmark in one run: small, CI-friendly sizes by default, `--full` for the real ones.

    python -m bench.all          # a couple of minutes: smoke-sized figures
    python -m bench.all --full   # the sizes of the goals (docs/benchmarks.md)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
from dataclasses import dataclass

from bench import idle, reconnect, relay, routing, setup


@dataclass(frozen=True)
class Sizes:
    routing: tuple[int, int]  # waiting calls, specialists
    relay: tuple[int, float, int]  # pairs, seconds per phase, window
    idle: tuple[int, float]  # terminals, seconds at rest
    setup: int  # calls per path
    reconnect: int  # terminals brought back after a restart


SMALL = Sizes(routing=(2_000, 200), relay=(10, 2.0, 8), idle=(500, 5.0), setup=5,
              reconnect=500)
FULL = Sizes(routing=(10_000, 1_000), relay=(100, 5.0, 8), idle=(10_000, 30.0), setup=20,
             reconnect=10_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="run at the sizes of the goals")
    parser.add_argument("--only", choices=["routing", "relay", "idle", "setup", "reconnect"],
                        action="append", help="run only these (repeatable)")
    args = parser.parse_args()
    sizes = FULL if args.full else SMALL
    chosen = args.only or ["routing", "relay", "idle", "setup", "reconnect"]
    print(f"# Virtual Window benchmarks, {dt.datetime.now().isoformat(timespec='seconds')}, "
          f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{'full' if args.full else 'small'} sizes\n", flush=True)
    for name in chosen:
        if name == "routing":
            print(routing.report(*sizes.routing), flush=True)
        elif name == "relay":
            print(relay.report(*sizes.relay), flush=True)
        elif name == "idle":
            print(idle.report(*sizes.idle), flush=True)
        elif name == "reconnect":
            print(reconnect.report(sizes.reconnect, [False, True]), flush=True)
        else:
            print(setup.report(sizes.setup), flush=True)


if __name__ == "__main__":
    main()
