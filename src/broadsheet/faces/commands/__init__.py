"""One module per command: register(subparsers) declares it, run(args) does it."""

from __future__ import annotations

import argparse
import signal
import socket
import threading
from pathlib import Path
from typing import NoReturn, TypeAlias

from broadsheet.core.config import Config, load_config

# What register() receives: argparse's sub-command action (generic only to the type checker).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def project_config(args: argparse.Namespace) -> Config:
    """The config named by --config, or the one found upward from the current folder."""
    return load_config(getattr(args, "config", None))


def issue_folder(argument: str | Path, config: Config) -> Path:
    """ISSUE_DIR as given, or the folder of that name under the config's issues_dir.

    When neither exists the argument comes back as given, for the content package to report.
    """
    for candidate in (Path(argument), config.resolve(config.issues_dir) / argument):
        if candidate.is_dir():
            return candidate
    return Path(argument)


def wait_until_stopped() -> NoReturn:
    """Block until Ctrl-C, SIGTERM or SIGHUP stops the command (KeyboardInterrupt).

    Waits on the signal wake-up socket, not on a lock: a signal taken by another thread, or arriving just
    before the wait begins, only marks Python's handler as due, and a lock wait never wakes to run it.
    Python writes each signal to the socket whatever thread it lands on, so the wait always ends.
    """
    if threading.current_thread() is not threading.main_thread():  # no signal reaches this thread
        threading.Event().wait()
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno())
    try:
        while True:  # the handler, due once a byte arrives, raises at the next turn
            reader.recv(64)
    finally:
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()
