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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from doemu.server import EmulatorServer  # noqa: E402
from doemu.state import Store, run_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_main(sys.argv[1:], __doc__.split("\n\n")[0], Store, EmulatorServer))
