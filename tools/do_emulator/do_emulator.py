#!/usr/bin/env python3
"""DigitalOcean API v2 emulator for gpumachine's tests (a test tool, not product code).

Serves droplets, actions, sizes, images, regions, SSH keys, firewalls and tags on one loopback
HTTP port, checks the bearer token, rate-limits like the real API, runs a real sshd per
powered-on droplet on its 127.x public address, and offers an unauthenticated control API under
/_emulator/ for tests. See README.md.

    python3 tools/do_emulator/do_emulator.py --state-dir DIR --port 0 [--config FILE]

Prints "READY <port>" once listening.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from doemu.server import EmulatorServer  # noqa: E402
from doemu.state import Store  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", required=True, type=Path,
                        help="directory for state.json and per-droplet sshd files")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--config", type=Path, help="JSON file merged over the defaults")
    args = parser.parse_args(argv)
    if not ipaddress.IPv4Address(args.host).is_loopback:
        parser.error("--host must be inside 127.0.0.0/8 (loopback only)")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    overrides = json.loads(args.config.read_text()) if args.config else {}
    store = Store(args.state_dir, overrides)
    server = EmulatorServer((args.host, args.port), store)
    port = server.server_address[1]
    store.control_url = f"http://{args.host}:{port}"
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.request_stop())
    store.start_ticker()
    print(f"READY {port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        store.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
