"""Benchmark helpers run in child processes: started with SIGTERM blocked (the child waits for it with
``signal.sigwait``), ready when it prints "ready", stopped with SIGTERM; returns what it printed after."""

from __future__ import annotations

import signal
import subprocess


def start(argv: list[str]) -> subprocess.Popen:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # inherited: the child waits for it
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    return out
