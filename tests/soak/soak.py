"""Shared by the soak and fault suite (tests/soak/, CTest label soak).

Scale: the default sizes keep the whole suite to a few minutes on 2 cores (CI);
AWF_SOAK_SCALE=long (or --long on a test file's command line) runs the sizes issue 13 names.
Figures (streams delivered, fds and RSS before and after, recovery times, lost lines) are printed
as "FIGURE name: value" on stderr and appended to $AWF_SOAK_FIGURES when set; tests/README.md
has the table. Nothing asserts on speed: every wait is a liveness bound.
"""

import os
import re
import socket
import sys
import threading
import time
import warnings

import awf

# Streams the test itself abandons on purpose (a reset, the proxy gone) are no news.
warnings.simplefilter("ignore", ResourceWarning)

LONG = os.environ.get("AWF_SOAK_SCALE", "").lower() == "long"
if "--long" in sys.argv:
    sys.argv.remove("--long")
    LONG = True


def scale(ci, long):
    """The CI size or the full one."""
    return long if LONG else ci


def figure(name, value):
    line = "FIGURE %s%s: %s" % (name, " (long)" if LONG else "", value)
    print(line, file=sys.stderr, flush=True)
    path = os.environ.get("AWF_SOAK_FIGURES")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def settle(fn, want, timeout=awf.WAIT):
    """Polls fn() until want(value) holds or timeout; returns (value, seconds taken)."""
    t0 = time.monotonic()
    while True:
        v = fn()
        if want(v) or time.monotonic() - t0 > timeout:
            return v, time.monotonic() - t0
        time.sleep(0.05)


# "2026-12-05T09:01:02.123Z awf-proxy: access log PATH: 17 lines lost (why); 17 since start"
ISO = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z"
LOSS_RE = re.compile(r"^" + ISO + r" awf-proxy: access log (.+): (\d+) lines? lost \((.+)\); "
                     r"(\d+) since start$")


def iso_seconds(stamp):
    """Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS.mmm" (UTC)."""
    import calendar

    base, ms = stamp.split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(ms) / 1000.0


def loss_reports(proxy, path):
    """[(when, lost, why, total)] reported on the proxy's stderr for one output."""
    out = []
    with proxy.cond:
        lines = list(proxy.lines_err)
    for line in lines:
        m = LOSS_RE.match(line)
        if m and m.group(2) == path:
            out.append((iso_seconds(m.group(1)), int(m.group(3)), m.group(4), int(m.group(5))))
    return out


def lost_total(proxy, path):
    r = loss_reports(proxy, path)
    return r[-1][3] if r else 0


class Client:
    """A keep-alive HTTP client on a raw socket through the proxy."""

    def __init__(self, proxy, timeout=awf.WAIT):
        self.s = awf.connect(proxy, timeout)
        self.rd = awf.Reader(self.s)

    def get(self, url, host, extra=b""):
        self.s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (url.encode(), host.encode(),
                                                                    extra))
        return self.rd.response()

    def close(self):
        self.s.close()


def get_many(proxy, url, host, n, conns=4):
    """n GETs spread over conns keep-alive connections; returns the statuses in any order."""
    statuses, lock = [], threading.Lock()

    def run(k):
        c = Client(proxy)
        try:
            for _ in range(k):
                r = c.get(url, host)
                with lock:
                    statuses.append(r.status if r else 0)
        finally:
            c.close()

    per = [n // conns + (1 if i < n % conns else 0) for i in range(conns)]
    ts = [threading.Thread(target=run, args=(k,)) for k in per if k]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return statuses


# ---------------------------------------------------------------- asyncio helpers
# Thousands of connections at once are driven from one asyncio loop in the test process (a
# thread per connection would not scale); raise this process's fd limit for them.

import asyncio  # noqa: E402
import resource  # noqa: E402
import struct  # noqa: E402


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            raise unittest_skip("needs %d file descriptors, the hard limit is %d" % (want, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def unittest_skip(msg):
    import unittest

    if awf.CI:
        return AssertionError(msg + " (CI=true)")
    return unittest.SkipTest(msg)


def rst(writer):
    """Closes a stream with a TCP RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


def opaque(port):
    """Flags letting tunnels to port carry opaque bytes (the echo protocol is neither TLS nor
    HTTP: tunnels fail closed elsewhere)."""
    return ["--set", "tunnels.opaque_ports=%d" % port]


class EchoServer:
    """An asyncio TCP server on loopback: each connection's first line names it ("id=N\\n"); it
    echoes everything. .conns maps ids to writers so a test can reset or close given ones."""

    def __init__(self):
        self.conns = {}
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=4096)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader, writer):
        ident = None
        try:
            line = await reader.readline()
            if not line:
                return
            ident = line.strip().decode()
            self.conns[ident] = writer
            writer.write(line)
            while True:
                d = await reader.read(65536)
                if not d:
                    break
                writer.write(d)
                await writer.drain()
            writer.write_eof()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            if ident is not None and self.conns.get(ident) is writer:
                del self.conns[ident]
            writer.close()

    async def stop(self):
        self.server.close()
        for w in list(self.conns.values()):
            w.transport.abort()
        await self.server.wait_closed()


async def open_tunnel(proxy_port, hostport, ident, timeout=awf.WAIT):
    """A CONNECT tunnel through the proxy to an EchoServer, named ident; returns (reader,
    writer) after the echo of the name came back."""
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", proxy_port), timeout)
    w.write(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hostport.encode(), hostport.encode()))
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
    if not head.startswith(b"HTTP/1.1 200"):
        w.close()
        raise AssertionError("CONNECT %s: %r" % (hostport, head))
    w.write(b"%s\n" % ident.encode())
    echo = await asyncio.wait_for(r.readline(), timeout)
    if echo != b"%s\n" % ident.encode():
        w.close()
        raise AssertionError("tunnel %s echoed %r" % (ident, echo))
    return r, w


async def until_closed(reader, timeout=awf.WAIT):
    """Reads until EOF or a reset; returns "eof" or "reset". A hang fails (timeout)."""
    try:
        while await asyncio.wait_for(reader.read(65536), timeout):
            pass
        return "eof"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
