"""The thin command line: declares commands, hands off to broadsheet.faces.commands.*, turns errors into one line."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn, TypeAlias

from broadsheet import __version__
from broadsheet.core.errors import BroadsheetError, one_line

# What signal.getsignal answers: a handler, SIG_IGN/SIG_DFL, or None (set from outside Python).
SignalHandler: TypeAlias = "Callable[[int, FrameType | None], Any] | int | signal.Handlers | None"

# Each module in broadsheet.faces.commands has register(subparsers) and run(args) -> int.
COMMANDS = (
    "init", "new", "build", "preview", "lint", "send", "status", "report", "subscribers", "sequences", "publish",
    "serve", "sync", "inbox", "doctor", "db",
)  # fmt: skip


class UsageError(Exception):
    """A command line argparse cannot read (main prints it as one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is one line, as every other bad input is (argparse
    prints its whole usage block first); ``--help`` shows the usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``only``) just that command's, so a run imports only that command's modules."""
    parser = _Parser(
        prog="broadsheet", description="Write a newsletter in Markdown, deliver it to every subscriber's inbox."
    )
    parser.add_argument("--version", action="version", version=f"broadsheet {__version__}")
    parser.add_argument("--config", metavar="FILE", help="broadsheet.toml to use (default: found upward from here)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.commands.{name}":
                raise
            continue
        command = module.register(sub)
        command.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="broadsheet.toml to use")
        command.set_defaults(handler=module.run)
    return parser


# what stops a command like Ctrl-C (Windows has no SIGHUP)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _requested_command(argv)
    parser = build_parser(command)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        where = f"broadsheet {command}" if command else "broadsheet"
        print(f"broadsheet: error: {one_line(str(exc))} (see {where} --help)", file=sys.stderr)
        return 2
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = _stop_on_signals() if in_main_thread else None
    try:
        return args.handler(args) or 0
    except BrokenPipeError:  # `broadsheet status … | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except BroadsheetError as exc:
        if os.environ.get("BROADSHEET_DEBUG"):
            raise
        print(f"broadsheet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("broadsheet: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            for signum, handler in zip(STOP_SIGNALS, previous, strict=True):
                if handler is not None:
                    signal.signal(signum, handler)


def _requested_command(argv: list[str]) -> str | None:
    """The command named on the line, when it is a known one (else the full parser explains)."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def _stop_on_signals() -> tuple[SignalHandler, ...]:
    """Ctrl-C, SIGTERM and SIGHUP stop every command cleanly, from its first line on; returns the old
    handlers (in STOP_SIGNALS' order).

    Handled whatever the process inherited: a script's ``broadsheet … &`` starts with SIGINT ignored.
    SIGHUP (terminal closed) stops like Ctrl-C rather than leaving a batch ``unknown``, unless ignored
    on purpose (``nohup``).
    """
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, _as_interrupt)
    if not hasattr(signal, "SIGHUP"):  # Windows
        return previous_int, previous_term
    previous_hup = signal.getsignal(signal.SIGHUP)
    if previous_hup == signal.SIG_DFL:
        # which outputs are the terminal: asked now, as a hung-up terminal may no longer say so
        signal.signal(signal.SIGHUP, _HangUp([fd for fd in (1, 2) if os.isatty(fd)]))
    return previous_int, previous_term, previous_hup


class _HangUp:
    """SIGHUP: the terminal closed. Output that went to it goes nowhere from now on (a write to a closed
    terminal fails, and would abort the stop half-way), the hangups that follow are ignored (a shell sends
    one to each job, and a second stop would quit at once, leaving messages in flight), then the command
    stops like Ctrl-C."""

    def __init__(self, terminals: list[int]):
        self.terminals = terminals
        self.seen = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if self.seen:  # one that arrived before the line above
            return
        self.seen = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in self.terminals:
                os.dup2(devnull, fd)
        finally:
            os.close(devnull)
        _as_interrupt(signum, frame)


def _as_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (systemd, docker stop, kill) and SIGHUP stop like Ctrl-C: in-flight work is finished and
    recorded.

    Calls whatever handles Ctrl-C now (the send runner's, or Python's KeyboardInterrupt).
    """
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
