#!/usr/bin/env python3
"""A TCP proxy that adds a known delay to every connection, or hangs it (issue 8, measurement 4).

For each accepted client the proxy waits D before it connects upstream, then relays bytes both
ways. The client's TCP connect completes at once (the kernel accepts), and whatever it sends
waits in the socket until the delay is over, so a session through the proxy takes D longer than
the same session through the proxy with D = 0. The wait is an asyncio sleep finished by a short
spin (at most 2 ms), so it lands within microseconds of D; the delay really applied to each
connection is recorded anyway (`applied`, seconds, in accept order), and so is the proxy's own
view of each session (`conns`: `Conn.applied` and `Conn.last_reply`, the time from accepting
to relaying the server's last bytes, i.e. the session as a clock beside the client sees it).
D = inf (`--hang`) accepts and never relays: a server that hangs. Hung clients are read and
discarded until they leave.

As a module: `ProxyThread` runs any number of `LatencyProxy`s on one event loop in a daemon
thread, for synchronous benchmark scripts (see bench/pg_accuracy.py):

    with ProxyThread() as pt:
        p = pt.add("127.0.0.1", 5432, delay=0.100)    # p.port, p.applied, p.accepted

As a command (runs until Ctrl-C or SIGTERM):

    bench/latency_proxy.py --upstream 127.0.0.1:5432 --delay-ms 100 [--listen 127.0.0.1:6543]
    bench/latency_proxy.py --upstream 127.0.0.1:5432 --hang
"""
import argparse, asyncio, math, signal, sys, threading, time

SPIN = 0.002  # the last part of the delay is spun, not slept: epoll waits in whole milliseconds


class Conn:
    """One proxied connection, times in seconds from accepting it."""

    def __init__(self, accepted):
        self.accepted = accepted  # time.perf_counter() at accept
        self.applied = None  # delay really waited before connecting upstream
        self.last_reply = None  # when the server's last bytes were relayed to the client

    def replied(self):
        self.last_reply = time.perf_counter() - self.accepted


class LatencyProxy:
    """One listener on `host:port` (0: any free port) relaying to `upstream` after `delay` s."""

    def __init__(self, upstream_host, upstream_port, delay=0.0, host="127.0.0.1", port=0):
        if delay < 0 or math.isnan(delay):
            raise ValueError(f"delay must be >= 0 or inf, not {delay}")
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self.host, self.port = host, port
        self.applied = []  # seconds really waited before connecting upstream, per connection
        self.conns = []  # Conn per accepted connection, in accept order
        self.accepted = 0
        self.errors = 0
        self._server = None
        self._tasks = set()

    @property
    def hang(self):
        return math.isinf(self.delay)

    async def start(self):
        self._server = await asyncio.start_server(self._client, self.host, self.port, backlog=512)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self):
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _client(self, reader, writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        accepted = time.perf_counter()
        self.accepted += 1
        conn = Conn(accepted)
        self.conns.append(conn)
        try:
            if self.hang:
                while await reader.read(65536):
                    pass
                return
            await precise_sleep_until(accepted + self.delay)
            conn.applied = time.perf_counter() - accepted
            self.applied.append(conn.applied)
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                self.errors += 1
                return
            try:
                await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer, conn.replied))
            finally:
                up_writer.close()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


async def precise_sleep_until(deadline):
    """Sleeps until perf_counter() reaches `deadline`: asyncio sleep, then a spin of <= SPIN."""
    left = deadline - time.perf_counter()
    if left > SPIN:
        await asyncio.sleep(left - SPIN)
    while time.perf_counter() < deadline:
        pass


async def pump(reader, writer, on_data=None):
    """Copies reader to writer until EOF, then half-closes the writer; calls on_data() after
    each chunk is handed to the socket."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            if on_data is not None:
                on_data()
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class ProxyThread:
    """An event loop in a daemon thread hosting proxies; a context manager that closes them."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.proxies = []
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def add(self, upstream_host, upstream_port, delay=0.0, host="127.0.0.1", port=0):
        p = LatencyProxy(upstream_host, upstream_port, delay, host, port)
        asyncio.run_coroutine_threadsafe(p.start(), self.loop).result(10)
        self.proxies.append(p)
        return p

    def close(self):
        if not self.loop.is_running():
            return
        for p in self.proxies:
            asyncio.run_coroutine_threadsafe(p.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def host_port(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


async def serve(args):
    up_host, up_port = host_port(args.upstream)
    host, port = host_port(args.listen)
    delay = math.inf if args.hang else args.delay_ms / 1000.0
    proxy = await LatencyProxy(up_host, up_port, delay, host, port).start()
    what = "hangs every connection" if proxy.hang else f"delay {args.delay_ms:g} ms"
    print(f"listening on {host}:{proxy.port} -> {up_host}:{up_port}, {what}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.close()
    if proxy.applied:
        worst = max(abs(a - delay) for a in proxy.applied) * 1000
        print(f"{proxy.accepted} connections; applied delay off by at most {worst:.3f} ms", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description="TCP proxy adding a fixed delay before relaying, or hanging.")
    ap.add_argument("--upstream", required=True, help="HOST:PORT to relay to")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to listen on (port 0: any free one)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--delay-ms", type=float, default=0.0, help="delay before connecting upstream ('inf' hangs)")
    g.add_argument("--hang", action="store_true", help="accept and never relay (a hung server)")
    args = ap.parse_args()
    if math.isinf(args.delay_ms):
        args.hang = True
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
