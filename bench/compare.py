#!/usr/bin/env python3
"""Runs commands side by side: interleaved, the order reversed every round, so that a change of
load on the shared machine hits every command alike. Prints one line per command: median and
best wall time, median CPU (user + system of the command and its children), and the load average
before and after.

Usage: bench/compare.py ROUNDS LABEL COMMAND [LABEL COMMAND ...]
A COMMAND is run by bash (-c), so pipes work; `exec` in front keeps bash out of the CPU figure.
With --json FILE the results are also written there; with --settle SECONDS each run waits that
long first, so that what a command left running on the servers (sshd children) does not land on
the next one.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def run_once(command: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(["bash", "-c", command], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    args = sys.argv[1:]
    out = None
    settle = 0.0
    while args[:1] in (["--json"], ["--settle"]):
        if args[0] == "--json":
            out = args[1]
        else:
            settle = float(args[1])
        args = args[2:]
    rounds = int(args[0])
    pairs = list(zip(args[1::2], args[2::2]))
    walls = {label: [] for label, _ in pairs}
    cpus = {label: [] for label, _ in pairs}
    load_before = os.getloadavg()[0]
    for r in range(rounds):
        for label, command in (pairs if r % 2 == 0 else list(reversed(pairs))):
            time.sleep(settle)
            wall, cpu = run_once(command)
            walls[label].append(wall)
            cpus[label].append(cpu)
    load_after = os.getloadavg()[0]
    result = {}
    for label, _ in pairs:
        result[label] = {"median_s": statistics.median(walls[label]), "best_s": min(walls[label]),
                         "cpu_median_s": statistics.median(cpus[label])}
        print(f"{label}: median {result[label]['median_s'] * 1000:.1f} ms, best "
              f"{result[label]['best_s'] * 1000:.1f} ms, CPU {result[label]['cpu_median_s'] * 1000:.1f} ms"
              f" ({rounds} rounds)")
    print(f"load average {load_before:.2f} before, {load_after:.2f} after")
    if out:
        with open(out, "w") as f:
            json.dump({"rounds": rounds, "load": [load_before, load_after], "results": result}, f)


if __name__ == "__main__":
    main()
