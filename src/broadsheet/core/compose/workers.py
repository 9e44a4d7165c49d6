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
from array import array
from collections.abc import Iterator, Mapping, Sequence
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


def compose_chunk(composer: Composer, kind: Kind, items: Sequence[tuple[Subscriber, int | None]]) -> Iterator[Composed]:
    """Each recipient's message (or size), in order; a recipient compose refuses is its reason instead."""
    for subscriber, row in items:
        try:
            message = composer.compose(subscriber, row=row)
        except RecipientRejected as exc:
            yield exc.reason
            continue
        if kind == "measure":
            yield len(message.raw)
        elif kind == "wire":
            yield replace(message, html="", text="")
        else:
            yield message


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
    for key in [key for key in os.environ if key.startswith("BROADSHEET_") and key not in env]:
        del os.environ[key]  # the fork server's environment is the one it started with
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
    """Each result pickled into the lane's buffer as soon as it is made (one message alive at a time, so
    the memory it used is used again by the next), and where each ends; the lot through the connection
    when the buffer is too small."""
    writer, ends = _Writer(buffer), array("Q")
    try:
        if composer is None:
            raise failure or RuntimeError("no composer")
        results = compose_chunk(composer, kind, items)
        try:
            for result in results:
                pickle.Pickler(writer, protocol=pickle.HIGHEST_PROTOCOL).dump(result)
                ends.append(writer.size)
        except _Full:
            rest = compose_chunk(composer, kind, items[len(ends) :])  # the one that did not fit made again
            whole = pickle.dumps([*_unpickled(buffer, ends), *rest], pickle.HIGHEST_PROTOCOL)
            conn.send_bytes(INLINE + whole)
            return
    except Exception as exc:
        conn.send_bytes(FAILED + _pickled_error(exc))
        return
    conn.send_bytes(IN_BUFFER + ends.tobytes())


class _Full(Exception):
    """The answer does not fit in the lane's buffer."""


class _Writer:
    """A file that writes into a buffer, from its start."""

    def __init__(self, buffer: memoryview):
        self.buffer, self.size = buffer, 0

    def write(self, data: bytes) -> int:
        end = self.size + len(data)
        if end > len(self.buffer):
            raise _Full
        self.buffer[self.size : end] = data
        self.size = end
        return len(data)


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
        ends = array("Q")
        ends.frombytes(body)
        return _unpickled(buffer, ends)
    loaded = pickle.loads(body)  # noqa: S301 -- our own worker's answer, over our own connection
    if tag == FAILED:
        raise loaded
    results: list[Composed] = loaded
    return results


def _unpickled(buffer: memoryview, ends: array[int]) -> list[Composed]:
    """The results pickled one after the other into ``buffer``, each ending where ``ends`` says."""
    starts = [0, *ends][:-1]
    return [pickle.loads(buffer[start:end]) for start, end in zip(starts, ends, strict=True)]  # noqa: S301 -- ours
