"""Large response bodies through the kernel relay (proxy/splice.c): a body framed by
Content-Length or by the upstream's close moves upstream -> client with splice(2) and the
message then ends as if llhttp had seen it. Byte-exact bodies, keep-alive and pipelining after a
spliced body, upstream reuse, log byte counts, a client that leaves mid-body, an upstream that
closes early, switches that wait for writes still queued (a tunnel's and a body's), and
AWF_PROXY_NO_SPLICE=1 (SPEC §2, §5, §6). Real sockets on loopback only; every
process a test starts is stopped by its cleanup."""

import hashlib
import os
import resource
import socket
import struct
import threading
import time
import unittest
from unittest import mock

import awf
from awf import ALLOWED, assert_fields, pattern

MIB = 1024 * 1024


def digest(data):
    return hashlib.sha256(data).hexdigest()


class RawUpstream(awf.ThreadServer):
    """A scripted server in a thread: for each connection, reads one request head and calls
    handler(sock), which writes what it likes; the connection is closed after it (what
    tests/tools/upstream.py cannot do: a body delimited by the close, a body cut short)."""

    def __init__(self, tc, handler):
        self.handler = handler
        super().__init__(tc)

    def serve(self, c, conn_no):
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return
            buf += d
        self.handler(c)


def read_head(s, buf):
    """(raw head bytes, {lowercase name: value}, bytes read past the head)."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise AssertionError("closed inside a response head: %r" % buf)
        buf += d
    i = buf.index(b"\r\n\r\n") + 4
    head, rest = buf[:i], buf[i:]
    lines = head[:-4].decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields[k.strip().lower()] = v.strip()
    return head, fields, rest


def read_exact(s, buf, n):
    chunks, have = [buf[:n]], min(len(buf), n)
    rest = buf[n:]
    while have < n:
        d = s.recv(min(1 << 20, n - have))
        if not d:
            raise AssertionError("closed after %d of %d body bytes" % (have, n))
        chunks.append(d)
        have += len(d)
    return b"".join(chunks), rest


def proxy_pipes(px):
    """How many pipes the proxy process holds (the relay keeps emptied ones for reuse)."""
    pipes = set()  # both ends of a pipe name the same inode
    fd_dir = "/proc/%d/fd" % px.p.pid
    for name in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, name))
        except FileNotFoundError:
            continue
        if link.startswith("pipe:"):
            pipes.add(link)
    return len(pipes)


class SpliceBodyTest(awf.TestCase):
    def start(self, port, no_splice=False):
        env = {"AWF_PROXY_NO_SPLICE": "1"} if no_splice else {}
        with mock.patch.dict(os.environ, env):
            self.px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[port], opaque=[port]),
                                 logs=("firewall_detailed", "squid"))
        self.hp = "%s:%d" % (ALLOWED, port)
        return self.px

    def get(self, path, method=b"GET"):
        return b"%s http://%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: splice\r\n\r\n" % (
            method, self.hp.encode(), path.encode(), self.hp.encode())

    def download_keepalive(self, no_splice):
        """GET of a large body, HEAD of it and a small GET, pipelined on one connection."""
        up = self.upstream(tls=False)
        px = self.start(up.http, no_splice)
        n = 5 * MIB + 3
        pipes_before = proxy_pipes(px)
        s = awf.connect(px)
        self.addCleanup(s.close)
        s.sendall(self.get("/bytes/%d" % n) + self.get("/bytes/%d" % n, b"HEAD") +
                  self.get("/small"))
        head1, f1, rest = read_head(s, b"")
        self.assertEqual(int(f1["content-length"]), n)
        body, rest = read_exact(s, rest, n)
        self.assertEqual(digest(body), digest(pattern(n)))
        head2, f2, rest = read_head(s, rest)
        self.assertEqual(int(f2["content-length"]), n)  # a HEAD answer: no body follows
        head3, f3, rest = read_head(s, rest)
        small, rest = read_exact(s, rest, int(f3["content-length"]))
        self.assertEqual((small, rest), (pattern(100), b""))
        # The upstream connection went back to the pool after each answer and was reused.
        self.assertEqual({f1["x-conn"], f2["x-conn"], f3["x-conn"]}, {f1["x-conn"]})
        self.assertEqual((f1["x-req"], f2["x-req"], f3["x-req"]), ("1", "2", "3"))
        s.close()
        entries = px.entries(3)
        for e, method, path in zip(entries, ("GET", "HEAD", "GET"),
                                   ("/bytes/%d" % n, "/bytes/%d" % n, "/small")):
            assert_fields(self, e, method=method, status=200, tag="TCP_MISS", hier="HIER_DIRECT",
                          url="http://%s%s" % (self.hp, path), ua="splice")
        sq = px.entries(3, "squid")
        self.assertEqual([e["bytes"] for e in sq],
                         [len(head1) + n, len(head2), len(head3) + 100])
        # The relay keeps the emptied pipe for the next body: its mark that the body went
        # through the kernel (and none is taken with AWF_PROXY_NO_SPLICE).
        self.assertEqual(proxy_pipes(px) - pipes_before, 0 if no_splice else 1)
        return body

    def test_large_body_exact_then_keepalive(self):
        self.download_keepalive(no_splice=False)

    def test_no_splice_same_bytes(self):
        self.download_keepalive(no_splice=True)

    def test_body_delimited_by_close(self):
        n = 4 * MIB + 11

        def handler(c):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
            for off in range(0, n, 256 * 1024):
                c.sendall(pattern(min(256 * 1024, n - off), off))

        raw = RawUpstream(self, handler)
        px = self.start(raw.port)
        s = awf.connect(px)
        self.addCleanup(s.close)
        s.sendall(self.get("/eof"))
        head, fields, rest = read_head(s, b"")
        self.assertNotIn("content-length", fields)
        self.assertEqual(fields.get("connection"), "close")  # the client learns how it ends
        body = rest + awf.recv_all(s)
        self.assertEqual(len(body), n)
        self.assertEqual(digest(body), digest(pattern(n)))
        (e,) = px.entries(1)
        assert_fields(self, e, method="GET", status=200, tag="TCP_MISS")
        (q,) = px.entries(1, "squid")
        self.assertEqual(q["bytes"], len(head) + n)

    def test_upstream_closes_early(self):
        declared, sent = 8 * MIB, 3 * MIB + 5

        def handler(c):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % declared)
            for off in range(0, sent, 256 * 1024):
                c.sendall(pattern(min(256 * 1024, sent - off), off))

        raw = RawUpstream(self, handler)
        px = self.start(raw.port)
        s = awf.connect(px)
        self.addCleanup(s.close)
        s.sendall(self.get("/short"))
        head, fields, rest = read_head(s, b"")
        self.assertEqual(int(fields["content-length"]), declared)
        body = rest + awf.recv_all(s)  # the proxy closes the connection: never reused
        self.assertEqual(len(body), sent)
        self.assertEqual(digest(body), digest(pattern(sent)))
        (e,) = px.entries(1)
        assert_fields(self, e, method="GET", status=200, tag="TCP_MISS_ABORTED")
        (q,) = px.entries(1, "squid")
        self.assertEqual(q["bytes"], len(head) + sent)

    def test_client_leaves_mid_body(self):
        up = self.upstream(tls=False)
        px = self.start(up.http)
        n = 256 * MIB  # far more than the socket buffers and the pipe hold
        s = awf.connect(px)
        s.sendall(self.get("/bytes/%d" % n))
        head, fields, rest = read_head(s, b"")
        got, _ = read_exact(s, rest, MIB)
        self.assertEqual(got, pattern(MIB))
        # Closing with unread bytes resets the connection.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        s.close()
        (e,) = px.entries(1)
        assert_fields(self, e, method="GET", status=200, tag="TCP_MISS_ABORTED")
        # The proxy goes on serving others, spliced bodies included.
        r = self.curl("http://%s/bytes/%d" % (self.hp, 2 * MIB), proxy=px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        self.assertEqual(digest(r.body), digest(pattern(2 * MIB)))
        self.assertEqual(len(px.wait_log(2)), 2)

    def test_client_reading_late_through_a_small_window(self):
        # Backpressure from the first byte: the pipe fills and waits for the client's window.
        # (Writes still queued on libuv when the head comes, the switch waiting for them:
        # test_body_switch_waits_for_queued_writes.)
        up = self.upstream(tls=False)
        px = self.start(up.http)
        n = 16 * MIB + 1
        pipes_before = proxy_pipes(px)
        s = socket.socket()
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(awf.WAIT)
        s.connect(tuple(px.addrs[0]))
        s.sendall(self.get("/bytes/%d" % n))
        # Not a timing assertion: only lets the proxy's queue fill; any delay works.
        threading.Event().wait(0.5)
        head, fields, rest = read_head(s, b"")
        body, rest = read_exact(s, rest, n)
        self.assertEqual(digest(body), digest(pattern(n)))
        s.sendall(self.get("/small"))
        _, _, rest = read_head(s, rest)
        small, _ = read_exact(s, rest, 100)
        self.assertEqual(small, pattern(100))
        (q, _) = px.entries(2, "squid")
        self.assertEqual(q["bytes"], len(head) + n)
        self.assertEqual(proxy_pipes(px) - pipes_before, 1)

    def small_window_client(self, px):
        """A client whose every byte crosses in small segments through a small window: the
        proxy's socket buffer towards it stays small (the kernel sizes it by the segment size),
        so what the proxy writes beyond it waits in libuv until the client reads."""
        s = socket.socket()
        self.addCleanup(s.close)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(awf.WAIT)
        s.connect(tuple(px.addrs[0]))
        return s

    def test_tunnel_switch_waits_for_queued_writes(self):
        """Bulk crosses a tunnel while the proxy's writes to a client that does not read yet
        are still queued in libuv: the switch to the kernel relay waits for them
        (TUNNEL_SPLICE_WAIT), then runs in the next loop turn (TUNNEL_SPLICE_DUE); not a byte
        is lost or reordered on the way."""
        n = 3 * MIB + 5
        sent = threading.Event()

        def handler(c):
            data = pattern(n)
            c.sendall(data[:MIB])
            sent.set()
            c.sendall(data[MIB:])

        raw = RawUpstream(self, handler)
        px = self.start(raw.port)
        pipes_before = proxy_pipes(px)
        s = self.small_window_client(px)
        s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (
            self.hp.encode(), self.hp.encode()))
        rd = awf.Reader(s)
        self.assertEqual(rd.response(head_only=True).status, 200)
        s.sendall(b"go\r\n\r\n")  # opaque bytes (allowed for this port): the upstream starts
        self.assertTrue(sent.wait(awf.WAIT))
        # Not a timing assertion: only lets the proxy's queue fill before the client reads.
        threading.Event().wait(0.3)
        got = rd.buf + awf.recv_all(s)
        self.assertEqual(len(got), n)
        self.assertEqual(digest(got), digest(pattern(n)))
        self.assertEqual(proxy_pipes(px) - pipes_before, 1)  # the kernel relayed the rest
        s.close()
        (e,) = px.entries(1)
        assert_fields(self, e, method="CONNECT", status=200, tag="TCP_TUNNEL")

    def test_body_switch_waits_for_queued_writes(self):
        """A large body whose head comes while the previous response (pipelined, too short to
        splice) still waits in libuv for a client that does not read yet: the switch waits
        for those writes (BODY_SPLICE_WAIT), then runs in the next loop turn
        (BODY_SPLICE_DUE); both bodies arrive whole and in order, and keep-alive goes on."""
        up = self.upstream(tls=False)
        px = self.start(up.http)
        n1, n2 = 250 * 1000, 4 * MIB + 1  # under and over the 256 KiB switch point
        pipes_before = proxy_pipes(px)
        s = self.small_window_client(px)
        s.sendall(self.get("/bytes/%d" % n1) + self.get("/bytes/%d" % n2))
        # Not a timing assertion: only lets the proxy's queue fill before the client reads.
        threading.Event().wait(0.5)
        head1, _, rest = read_head(s, b"")
        body1, rest = read_exact(s, rest, n1)
        head2, _, rest = read_head(s, rest)
        body2, rest = read_exact(s, rest, n2)
        self.assertEqual((body1, rest), (pattern(n1), b""))
        self.assertEqual(digest(body2), digest(pattern(n2)))
        s.sendall(self.get("/small"))
        _, _, rest = read_head(s, b"")
        small, _ = read_exact(s, rest, 100)
        self.assertEqual(small, pattern(100))
        sq = px.entries(3, "squid")
        self.assertEqual([e["bytes"] for e in sq[:2]], [len(head1) + n1, len(head2) + n2])
        self.assertEqual(proxy_pipes(px) - pipes_before, 1)  # the second body went through it

    def test_chunked_body_stays_on_user_space(self):
        up = self.upstream(tls=False)
        px = self.start(up.http)
        pipes_before = proxy_pipes(px)
        r = self.curl("http://%s/chunked/%d" % (self.hp, 3 * MIB), proxy=px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        self.assertEqual(digest(r.body), digest(pattern(3 * MIB)))
        self.assertEqual(proxy_pipes(px), pipes_before)
        (e,) = px.entries(1)
        assert_fields(self, e, method="GET", status=200, tag="TCP_MISS")

    def test_reset_right_after_the_body_loses_nothing(self):
        """An upstream that resets its connection right after the last body bytes: the kernel
        still hands out what arrived before the reset, so the body is complete."""
        n, step = 2 * MIB, 64 * 1024

        def handler(c):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            data = pattern(n)
            for off in range(0, n - step, step):
                c.sendall(data[off:off + step])
                time.sleep(0.002)  # the relay waits on an empty pipe when the reset comes
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.sendall(data[n - step:])

        raw = RawUpstream(self, handler)
        px = self.start(raw.port)
        for _ in range(3):
            s = awf.connect(px)
            s.sendall(self.get("/rst"))
            _, _, rest = read_head(s, b"")
            body, _ = read_exact(s, rest, n)
            self.assertEqual(digest(body), digest(pattern(n)))
            s.close()
        for e in px.entries(3):
            assert_fields(self, e, method="GET", status=200, tag="TCP_MISS")

    def test_urgent_byte_is_not_an_end(self):
        """TCP urgent data stops a splice as if the stream had ended; the body must go on
        (close-delimited: a false end would look like a complete response)."""
        n, k = 3 * MIB, 2 * MIB

        def handler(c):
            data = pattern(n)
            c.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + data[:k])
            time.sleep(0.2)
            c.send(data[k:k + 1], socket.MSG_OOB)
            time.sleep(0.2)
            c.sendall(data[k + 1:])

        raw = RawUpstream(self, handler)
        px = self.start(raw.port)
        s = awf.connect(px)
        self.addCleanup(s.close)
        s.sendall(self.get("/oob"))
        _, _, rest = read_head(s, b"")
        body = rest + awf.recv_all(s)
        self.assertEqual(len(body), n)
        self.assertEqual(digest(body), digest(pattern(n)))
        (e,) = px.entries(1)
        assert_fields(self, e, method="GET", status=200, tag="TCP_MISS")

    def test_tunnel_without_pipes_stays_on_libuv(self):
        """A tunnel whose switch finds no pipe (pipe2 failing: the proxy is out of fds) keeps
        relaying through libuv instead of failing."""
        up = self.upstream(tls=False)
        px = self.start(up.echo)
        pipes_before = proxy_pipes(px)
        # Room for the client's and the upstream's sockets and one spare fd: never a pipe's two.
        n = len(os.listdir("/proc/%d/fd" % px.p.pid))
        _, hard = resource.prlimit(px.p.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(px.p.pid, resource.RLIMIT_NOFILE, (n + 3, hard))
        s = awf.connect(px)
        self.addCleanup(s.close)
        s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (
            self.hp.encode(), self.hp.encode()))
        rd = awf.Reader(s)
        self.assertEqual(rd.response(head_only=True).status, 200)
        data = pattern(4 * 1024 * 1024)  # far past the 256 KiB switch point, both ways
        t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
        t.start()
        got = rd.buf + awf.recv_all(s)
        t.join()
        self.assertEqual(hashlib.sha256(got).hexdigest(),
                         hashlib.sha256(data + b"<eof>").hexdigest())
        self.assertEqual(proxy_pipes(px), pipes_before)
        s.close()
        (e,) = px.entries(1)
        assert_fields(self, e, method="CONNECT", status=200, tag="TCP_TUNNEL")


if __name__ == "__main__":
    unittest.main()
