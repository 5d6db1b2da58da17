"""A TCP proxy that adds network latency (and optionally a bandwidth cap) in front of a server.

This kernel has no ``netem``, so cloud-like round trips are simulated here: every chunk of bytes
read from one side is released to the other side ``rtt / 2`` seconds after it was read, without
holding up the chunks read after it (a pipe with delay, not a stop-and-wait link), and every new
connection costs one extra round trip before its first byte (TCP's handshake). With ``rate``
(bytes per second) the server-to-client direction of all connections together is capped, as one
shared link would be.

With ``http=True`` the proxy speaks HTTP/1.1 to its clients and keeps their connections alive, as
S3 does, opening a fresh connection to the server for each request: ``moto``'s server (werkzeug)
closes every connection after one response, which through a latency proxy would cost every GET a
second round trip that real S3 does not charge. Requests are handled one after the other per
client connection (the SDKs do not pipeline).

The proxy counts what passes: client connections, HTTP requests seen from clients (request lines
``GET``/``HEAD``/``PUT``/``POST``/``DELETE``) and bytes in each direction; in HTTP mode with
``log`` set to a list, each request is appended to it as ``(method, path, range, status)``. It is used by
``benchmarks/remote.py`` and the tests (``SIGUSR2`` pauses and resumes forwarding: storage that
stops answering); run alone::

    python benchmarks/latency_proxy.py --target 127.0.0.1:9000 --rtt-ms 50 --port 9050

Only 127.0.0.1 addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time

__all__ = ["LatencyProxy", "main"]

_REQUEST_STARTS = (b"GET ", b"HEAD ", b"PUT ", b"POST ", b"DELETE ")


class _Link:
    """The shared server-to-client link: a byte budget refilled at ``rate`` bytes/s (None: unlimited)."""

    def __init__(self, rate: float | None):
        self.rate = rate
        self.free_at = 0.0  # when the link has sent everything queued so far

    def transmit_done_at(self, now: float, size: int) -> float:
        if not self.rate:
            return now
        self.free_at = max(self.free_at, now) + size / self.rate
        return self.free_at


class LatencyProxy:
    """Forward ``listen_port`` on 127.0.0.1 to ``target`` with ``rtt`` seconds of round trip."""

    def __init__(self, target_host: str, target_port: int, rtt: float, rate: float | None = None,
                 listen_port: int = 0, http: bool = False):
        self.target = (target_host, target_port)
        self.http = http
        self.paused = False  # a stalled network: nothing is forwarded while set
        self.one_way = rtt / 2
        self.link = _Link(rate)
        self.listen_port = listen_port
        self.stats = dict(connections=0, requests=0, gets=0, bytes_up=0, bytes_down=0)
        self.log: list | None = None  # HTTP mode: (method, path, range header, status) of each request
        self.log_file = None  # ... also written to this open file, one line each (``--log``)
        self._server = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.listen_port)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self.listen_port

    async def _serve(self, client_reader, client_writer):
        self.stats["connections"] += 1
        await asyncio.sleep(2 * self.one_way)  # the handshake's round trip
        if self.http:
            await self._serve_http(client_reader, client_writer)
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(self._pipe(client_reader, server_writer, up=True),
                             self._pipe(server_reader, client_writer, up=False))

    async def _pipe(self, reader, writer, up: bool):
        queue: asyncio.Queue = asyncio.Queue()
        sender = asyncio.create_task(self._send(queue, writer))
        try:
            while True:
                data = await reader.read(1 << 16)
                now = time.monotonic()
                if not data:
                    break
                if up:
                    self.stats["bytes_up"] += len(data)
                    if data.startswith(_REQUEST_STARTS):
                        self.stats["requests"] += 1
                        self.stats["gets"] += data.startswith(b"GET ")
                    release = now + self.one_way
                else:
                    self.stats["bytes_down"] += len(data)
                    release = self.link.transmit_done_at(now, len(data)) + self.one_way
                queue.put_nowait((release, data))
        except (ConnectionError, OSError):
            pass
        finally:
            queue.put_nowait((0.0, None))
            await sender

    async def _serve_http(self, client_reader, client_writer):
        queue: asyncio.Queue = asyncio.Queue()
        sender = asyncio.create_task(self._send(queue, client_writer))
        try:
            while True:
                head = await client_reader.readuntil(b"\r\n\r\n")
                body = await client_reader.readexactly(_content_length(head))
                arrived = time.monotonic()
                self.stats["requests"] += 1
                self.stats["gets"] += head.startswith(b"GET ")
                self.stats["bytes_up"] += len(head) + len(body)
                await asyncio.sleep(max(0.0, arrived + self.one_way - time.monotonic()))
                while self.paused:
                    await asyncio.sleep(0.05)
                server_reader, server_writer = await asyncio.open_connection(*self.target)
                server_writer.write(head + body)
                await server_writer.drain()
                status_and_headers = await server_reader.readuntil(b"\r\n\r\n")
                if self.log is not None:
                    self.log.append(_request_line(head, status_and_headers))
                    if self.log_file is not None:
                        self.log_file.write(" ".join(map(str, self.log[-1])) + "\n")
                        self.log_file.flush()
                if _content_length(status_and_headers, None) is None and b"chunked" not in status_and_headers.lower():
                    rest = await server_reader.read()  # a body that ends at close: give it a length
                    status_and_headers = status_and_headers[:-2] + b"Content-Length: %d\r\n\r\n" % len(rest)
                    chunks = [rest]
                else:
                    chunks = None
                out = _keep_alive(status_and_headers)
                self._release(queue, out)
                if chunks is not None:
                    for data in chunks:
                        self._release(queue, data)
                else:
                    while data := await server_reader.read(1 << 16):
                        self._release(queue, data)
                server_writer.close()
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.LimitOverrunError):
            pass
        finally:
            queue.put_nowait((0.0, None))
            await sender

    def _release(self, queue, data: bytes) -> None:
        self.stats["bytes_down"] += len(data)
        queue.put_nowait((self.link.transmit_done_at(time.monotonic(), len(data)) + self.one_way, data))

    @staticmethod
    async def _send(queue, writer):
        try:
            while True:
                release, data = await queue.get()
                if data is None:
                    break
                delay = release - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass


class ThreadedProxy:
    """The proxy run on an event loop in a thread of the calling process (tests, benchmarks):
    ``endpoint`` to give Deep Lake, ``stats`` (connections, requests, GETs, bytes), ``paused``
    (set: storage that stops answering), ``stop()``."""

    def __init__(self, endpoint: str, rtt: float = 0.0):
        import threading

        host, port = endpoint.rsplit("//", 1)[1].rsplit(":", 1)
        self.proxy = LatencyProxy(host, int(port), rtt, http=True)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.proxy.start())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(10)
        self.endpoint = f"http://127.0.0.1:{self.proxy.listen_port}"

    @property
    def stats(self) -> dict:
        return dict(self.proxy.stats)

    def record(self) -> list:
        """Log every request from now on; the list ``(method, path, range, status)`` are appended to."""
        self.proxy.log = []
        return self.proxy.log

    @property
    def paused(self) -> bool:
        return self.proxy.paused

    @paused.setter
    def paused(self, value: bool) -> None:
        self.proxy.paused = value

    def stop(self) -> None:
        async def shutdown():
            self.proxy._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.proxy.paused = False
        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _content_length(head: bytes, default=0):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return default


def _request_line(head: bytes, response: bytes) -> tuple:
    """``(method, path, range header or None, status)`` of one request and its response."""
    method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
    path = rest.rsplit(" ", 1)[0]
    ranged = next((line.split(b":", 1)[1].strip().decode("latin-1") for line in head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"range:")), None)
    status = response.split(b"\r\n", 1)[0].split(b" ")
    return method, path, ranged, int(status[1]) if len(status) > 1 and status[1].isdigit() else 0


def _keep_alive(head: bytes) -> bytes:
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join(lines[:-2] + [b"Connection: keep-alive", b"", b""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the server (127.0.0.1 only)")
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    parser.add_argument("--rate-mbit", type=float, default=0.0, help="cap server-to-client at this many Mbit/s")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--http", action="store_true", help="keep client connections alive (HTTP/1.1), as S3 does")
    parser.add_argument("--stats", help="write the counters as JSON to this file on SIGUSR1 and at exit")
    parser.add_argument("--log", help="with --http: append 'METHOD PATH RANGE STATUS' of each request to this file")
    args = parser.parse_args(argv)
    host, port = args.target.rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost"):
        parser.error("--target must be on 127.0.0.1")
    proxy = LatencyProxy(host, int(port), args.rtt_ms / 1000, args.rate_mbit * 125_000 or None, args.port, args.http)
    if args.log:
        proxy.log, proxy.log_file = [], open(args.log, "a")

    def dump(*_):
        if args.stats:
            tmp = args.stats + ".tmp"
            with open(tmp, "w") as f:
                json.dump(proxy.stats, f)
            os.replace(tmp, args.stats)

    async def run():
        listen = await proxy.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, dump)
        loop.add_signal_handler(signal.SIGUSR2, lambda: setattr(proxy, "paused", not proxy.paused))
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        print(f"listening on 127.0.0.1:{listen}", flush=True)  # ready: the signals are handled
        await stop.wait()
        dump()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
