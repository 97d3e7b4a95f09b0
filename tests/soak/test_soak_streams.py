"""200 concurrent streaming responses through the proxy — SSE (chunked and close-delimited) and
long-poll — with half of the clients half-closing their side after the request and POSTs in
between, on the stream's own connection and on a second one, as MCP clients do. Squid crashed
on exactly this in AWF (an assertion in its half-closed monitoring under concurrent MCP SSE).
Some half-closed clients reset mid-stream. No crash, every other stream delivered in full, every
transaction logged exactly once (the reset ones as TCP_MISS_ABORTED) (issue 13).
CI: 200 streams for 12 s; AWF_SOAK_SCALE=long: 200 streams for 60 s."""

import asyncio
import hashlib
import os
import re
import socket
import time
import unittest

import awf
import soak
from awf import ALLOWED

STREAMS = 200
ABORTS = 20  # of them, half-closing SSE clients that reset their connection mid-stream
SECONDS = soak.scale(12, 60)
EVERY_MS = 100  # one event per stream every 100 ms
EVENTS = SECONDS * 1000 // EVERY_MS


class StreamUpstream:
    """asyncio HTTP/1.1 upstream: GET /sse/ID (chunked events), GET /ssec/ID (events, then
    close: no length), GET /poll/ID/J (waits, then a small body), POST /post/... (answers the
    body's length and SHA-256). Keep-alive except /ssec."""

    async def start(self):
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0, backlog=1024)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def serve(self, r, w):
        try:
            while True:
                try:
                    head = await r.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                hdrs = {k.strip().lower(): v.strip()
                        for k, _, v in (l.partition(":") for l in lines[1:] if l)}
                body = b""
                if "content-length" in hdrs:
                    body = await r.readexactly(int(hdrs["content-length"]))
                elif "chunked" in hdrs.get("transfer-encoding", ""):
                    while True:
                        size = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
                        if size == 0:
                            await r.readuntil(b"\r\n")
                            break
                        body += await r.readexactly(size)
                        await r.readexactly(2)
                if not await self.answer(w, method, target, body):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, OSError, asyncio.CancelledError):
            pass  # cancelled: connections the proxy still pools when the test ends
        finally:
            w.close()

    @staticmethod
    def event(ident, k):
        return b"id: %d\ndata: %s %d %s\n\n" % (k, ident.encode(), k, b"x" * (k % 97))

    async def answer(self, w, method, target, body):
        path = target.split("?")[0]
        parts = path.split("/")
        if method == "POST":
            out = b"%d %s" % (len(body), hashlib.sha256(body).hexdigest().encode())
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(out), out))
            await w.drain()
            return True
        if parts[1] in ("sse", "ssec"):
            chunked = parts[1] == "sse"
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: "
                    b"no-cache\r\n%s\r\n" % (b"Transfer-Encoding: chunked\r\n" if chunked
                                             else b"Connection: close\r\n"))
            for k in range(EVENTS):
                ev = self.event(parts[2], k)
                w.write(b"%x\r\n%s\r\n" % (len(ev), ev) if chunked else ev)
                await w.drain()
                await asyncio.sleep(EVERY_MS / 1000.0)
            if chunked:
                w.write(b"0\r\n\r\n")
                await w.drain()
                return True
            w.write_eof()
            return False
        if parts[1] == "poll":
            await asyncio.sleep(1.0)
            out = b"poll %s %s" % (parts[2].encode(), parts[3].encode())
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out))
            await w.drain()
            return True
        w.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return True


async def read_response(r):
    """(status, headers dict, body) of one response; a close-delimited body reads to EOF."""
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
    if "content-length" in hdrs:
        return status, hdrs, await r.readexactly(int(hdrs["content-length"]))
    if "chunked" in hdrs.get("transfer-encoding", ""):
        body = b""
        while True:
            size = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await r.readuntil(b"\r\n")
                return status, hdrs, body
            body += await r.readexactly(size)
            await r.readexactly(2)
    return status, hdrs, await r.read()


class StreamsTest(awf.TestCase):
    def test_concurrent_streams_half_close_and_posts(self):
        soak.raise_nofile(4 * STREAMS + 500)
        asyncio.run(self.run_all())

    async def run_all(self):
        up = await StreamUpstream().start()
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[up.port]))
        self.hp = "%s:%d" % (ALLOWED, up.port)
        self.port = px.port
        self.urls = []  # every transaction made, in any order
        t0 = time.monotonic()
        self.where = {}  # worker -> what it waits for, told on a hang
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*[self.worker(i) for i in range(STREAMS)]), SECONDS + 120)
        except asyncio.TimeoutError:
            raise AssertionError("hung: %r" % sorted(self.where.items())[:20])
        took = time.monotonic() - t0
        self.assertTrue(px.running(), px.stderr)
        full = sum(1 for ok in results if ok is True)
        aborted = sum(1 for ok in results if ok == "aborted")
        posts = sum(1 for u in self.urls if "/post/" in u)
        soak.figure("streams: delivered in full / reset mid-stream by the client / started, "
                    "in s, with POSTs", "%d / %d / %d, %.1f, %d" % (full, aborted, STREAMS, took,
                                                                   posts))
        self.assertEqual((full, aborted), (STREAMS - ABORTS, ABORTS))
        up.server.close()
        self.assertEqual(px.stop(), 0, px.stderr)
        entries = [awf.parse_fd(self, l) for l in px.log_lines()]
        logged = {}
        for e in entries:
            logged[e["url"]] = logged.get(e["url"], 0) + 1
            tag = "TCP_MISS_ABORTED" if "/sse/" in e["url"] and self.aborts(
                int(e["url"].split("/")[-1].rstrip("?"))) else "TCP_MISS"
            self.assertEqual((e["status"], e["tag"]), (200, tag), e["line"])
        want = {"http://%s%s" % (self.hp, u.split("?")[0] + ("?" if "?" in u else ""))
                for u in self.urls}
        self.assertEqual(set(logged), want)
        self.assertEqual([u for u, n in logged.items() if n != 1], [], "logged once each")
        self.assertEqual(len(entries), len(self.urls))
        soak.figure("streams: transactions logged exactly once", len(entries))

    @staticmethod
    def aborts(i):
        return i % 20 in (4, 8)  # 20 of 200, and i % 4 == 0: chunked SSE, half-closing

    async def connect(self):
        return await asyncio.open_connection("127.0.0.1", self.port)

    def req(self, method, path, body=None, chunked=False):
        self.urls.append(path)
        head = b"%s http://%s%s HTTP/1.1\r\nHost: %s\r\n" % (
            method.encode(), self.hp.encode(), path.encode(), self.hp.encode())
        if body is None:
            return head + b"\r\n"
        if chunked and len(body) > 1:  # two chunks, neither empty (an empty one ends it)
            half = len(body) // 2
            return head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
                half, body[:half], len(body) - half, body[half:])
        return head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)

    async def post(self, r, w, i, k):
        body = os.urandom((i * 131 + k * 977) % 8192 + 1)
        w.write(self.req("POST", "/post/%d/%d" % (i, k), body, chunked=k % 2 == 1))
        status, _, got = await read_response(r)
        ok = status == 200 and got == b"%d %s" % (len(body), hashlib.sha256(body).hexdigest()
                                                   .encode())
        if not ok:
            print("post %d/%d: %d %r" % (i, k, status, got[:200]))
        return ok

    async def worker(self, i):
        kind = ("sse", "sse", "ssec", "poll")[i % 4]
        half_close = i % 2 == 0
        done = asyncio.Event()
        side = asyncio.ensure_future(self.side_posts(i, done))
        self.where[i] = kind
        try:
            if kind == "poll":
                ok = await self.long_poll(i, half_close)
            else:
                ok = await self.stream(i, kind, half_close)
        finally:
            done.set()
        self.where[i] = "side posts"
        ok = await side and ok
        del self.where[i]
        return ok

    async def stream(self, i, kind, half_close):
        r, w = await self.connect()
        try:
            ok = await self.post(r, w, i, 0)  # a POST first on the same connection
            w.write(self.req("GET", "/%s/%d?events=%d" % (kind, i, EVENTS)))
            if half_close:
                w.write_eof()
            if self.aborts(i):
                got = b""
                while len(got) < 1000:  # some events, then a reset
                    got += await r.read(1000)
                soak.rst(w)
                return ok and "aborted"
            status, hdrs, body = await read_response(r)
            want = b"".join(StreamUpstream.event(str(i), k) for k in range(EVENTS))
            ok = ok and status == 200 and body == want
            if not ok:
                print("stream %d (%s): %d, %d of %d bytes" % (i, kind, status, len(body),
                                                              len(want)))
            if half_close or kind == "ssec":  # the proxy closes once the answer is out
                rest = await r.read()
                if rest:
                    print("stream %d: %r after the answer" % (i, rest[:200]))
                    ok = False
            return ok
        finally:
            w.close()

    async def long_poll(self, i, half_close):
        r, w = await self.connect()
        ok, j, end = True, 0, time.monotonic() + SECONDS
        try:
            while time.monotonic() < end:
                ok = ok and await self.post(r, w, i, 1000 + j)  # POSTs in between the polls
                w.write(self.req("GET", "/poll/%d/%d" % (i, j)))
                last = time.monotonic() >= end - 1.0
                if half_close and last:
                    w.write_eof()
                _, _, body = await read_response(r)
                if body != b"poll %d %d" % (i, j):
                    print("poll %d/%d: %r" % (i, j, body[:200]))
                    ok = False
                j += 1
                if half_close and last:
                    rest = await r.read()
                    if rest:
                        print("poll %d: %r after the last answer" % (i, rest[:200]))
                        ok = False
                    break
            return ok
        finally:
            w.close()

    async def side_posts(self, i, done):
        """POSTs on a second keep-alive connection while the stream runs."""
        r, w = await self.connect()
        ok, k = True, 1
        try:
            while not done.is_set():
                ok = ok and await self.post(r, w, i, k)
                k += 1
                try:
                    await asyncio.wait_for(done.wait(), 0.5 + (i % 10) / 10.0)
                except asyncio.TimeoutError:
                    pass
            return ok
        finally:
            w.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
