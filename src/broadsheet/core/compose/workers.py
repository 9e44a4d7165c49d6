"""Compose in worker processes: each makes the issue's Composer once, then answers chunks of recipients.

A worker serves lanes, each a connection and a buffer of shared memory: a request on a lane is a chunk
of recipients; the answer (pickled) is written into that lane's buffer, or sent on the connection when
it does not fit. The parent (usecases.campaign.compose_pool) owns the journal and the transports; a
worker only composes, and exits when its connections close (the parent ended, however it ended).
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
from collections.abc import Mapping, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from multiprocessing.heap import BufferWrapper
from typing import Literal

from ..audience import Subscriber
from .composer import Composer, ComposeSpec
from .headers import RecipientRejected
from .message import Message

Kind = Literal["compose", "wire", "measure"]
# compose: whole Messages; wire: Messages without html and text (for transports that send only the raw
# bytes); measure: each message's size in bytes (a dry run). A rejected recipient is its reason (a str).
Composed = Message | int | str
IN_BUFFER, INLINE, FAILED = b"B", b"I", b"F"
LENGTH = struct.Struct("<Q")


def compose_chunk(composer: Composer, kind: Kind, items: Sequence[tuple[Subscriber, int | None]]) -> list[Composed]:
    """Each recipient's message (or size), in order; a recipient compose refuses is its reason instead."""
    results: list[Composed] = []
    for subscriber, row in items:
        try:
            message = composer.compose(subscriber, row=row)
        except RecipientRejected as exc:
            results.append(exc.reason)
            continue
        if kind == "measure":
            results.append(len(message.raw))
        elif kind == "wire":
            results.append(replace(message, html="", text=""))
        else:
            results.append(message)
    return results


def serve(
    spec: ComposeSpec, env: Mapping[str, str], cwd: str, lanes: Sequence[tuple[Connection, BufferWrapper]]
) -> None:
    """A worker's life: the Composer made once (with the parent's BROADSHEET_* environment and folder),
    then every chunk answered until the parent closes the lanes. Ctrl-C and hang-ups are the parent's to
    handle: it finishes what is in flight, so the worker keeps composing until told to stop."""
    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    os.chdir(cwd)
    os.environ.update(env)
    composer: Composer | None = None
    failure: BaseException | None = None
    try:
        composer = spec.composer()
    except Exception as exc:  # answered to every request: the parent made the same Composer, so a bug
        failure = exc
    buffers = {conn: buffer.create_memoryview() for conn, buffer in lanes}
    while buffers:
        for conn in wait(list(buffers)):
            assert isinstance(conn, Connection)
            try:
                request = conn.recv()
            except (EOFError, OSError):
                request = None
            if request is None:
                conn.close()
                del buffers[conn]
                continue
            _answer(conn, buffers[conn], composer, failure, *request)


def _answer(
    conn: Connection, buffer: memoryview, composer: Composer | None, failure: BaseException | None,
    kind: Kind, items: Sequence[tuple[Subscriber, int | None]],
) -> None:  # fmt: skip
    try:
        if composer is None:
            raise failure or RuntimeError("no composer")
        data = pickle.dumps(compose_chunk(composer, kind, items), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        conn.send_bytes(FAILED + _pickled_error(exc))
        return
    if len(data) <= len(buffer):
        buffer[: len(data)] = data
        conn.send_bytes(IN_BUFFER + LENGTH.pack(len(data)))
    else:
        conn.send_bytes(INLINE + data)


def _pickled_error(exc: Exception) -> bytes:
    """The error itself when it pickles, else what it said."""
    try:
        return pickle.dumps(exc)
    except Exception:
        return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def read_answer(answer: bytes, buffer: memoryview) -> list[Composed]:
    """The parent's side of ``_answer``: the chunk's results, or the worker's error raised."""
    tag, body = answer[:1], memoryview(answer)[1:]
    if tag == IN_BUFFER:
        (length,) = LENGTH.unpack(body)
        body = buffer[:length]
    loaded = pickle.loads(body)  # noqa: S301 -- our own worker's answer, over our own connection
    if tag == FAILED:
        raise loaded
    results: list[Composed] = loaded
    return results
