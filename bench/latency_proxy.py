"""A TCP proxy on 127.0.0.1 that holds every chunk it forwards for a fixed time, each way.

Real network latency for the benchmarks: each chunk read from one side is written to the other
``latency`` seconds after it arrived, in order, without holding up the chunks behind it (a pipe with a
delay, not a slow server). Runs in its own process:

    python bench/latency_proxy.py LISTEN_PORT UPSTREAM_PORT --latency 0.01
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import child


async def _delayed_pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + latency, data))
            if not data:
                return

    async def write() -> None:
        while True:
            due, data = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _serve(listen_port: int, upstream_port: int, latency: float) -> None:
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _delayed_pipe(client_reader, server_writer, latency), _delayed_pipe(server_reader, client_writer, latency)
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("ready", flush=True)
    async with server:
        await asyncio.get_running_loop().run_in_executor(None, signal.sigwait, {signal.SIGTERM})


class LatencyProxy:
    """The proxy in a child process, forwarding ``port`` to ``upstream_port``."""

    def __init__(self, port: int, upstream_port: int, latency: float):
        self.port = port
        self.process = child.start([sys.executable, __file__, str(port), str(upstream_port), "--latency", str(latency)])

    def stop(self) -> None:
        child.stop(self.process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("listen_port", type=int)
    parser.add_argument("upstream_port", type=int)
    parser.add_argument("--latency", type=float, default=0.01, help="seconds each chunk is held, each way")
    args = parser.parse_args()
    asyncio.run(_serve(args.listen_port, args.upstream_port, args.latency))


if __name__ == "__main__":
    main()
