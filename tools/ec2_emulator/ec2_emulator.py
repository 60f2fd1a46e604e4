#!/usr/bin/env python3
"""EC2 Query API emulator for gpumachine's tests and demo (a test tool, not product code).

Serves EC2 (Query/XML), SSM (JSON 1.1, public AMI parameters) and STS on one loopback HTTP
port, verifies SigV4 itself, runs a real sshd per running instance on its 127.x public IP,
and offers an unsigned control API under /_emulator/ for tests. See README.md.

    python3 tools/ec2_emulator/ec2_emulator.py --state-dir DIR --port 0 [--config FILE]

Prints "READY <port>" once listening.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ec2emu.common import run_main  # noqa: E402
from ec2emu.server import EmulatorServer  # noqa: E402
from ec2emu.state import Store  # noqa: E402


if __name__ == "__main__":
    sys.exit(run_main(sys.argv[1:], __doc__.split("\n\n")[0], Store, EmulatorServer))
