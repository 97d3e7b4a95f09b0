"""Regression tests for the proxy review findings: chunked trailers (use-after-free), framing
(Transfer-Encoding without chunked), half-closed clients, retries of non-idempotent requests,
response hop-by-hop fields, X-Forwarded-For, Host edge cases, HTTP inside non-TLS CONNECT
tunnels, tunnel limits, and a drain that ends when the last connection does (SPEC §2, §5, §7).
Real sockets on loopback only; every process a test starts is stopped by its cleanup."""

import json
import signal
import socket
import threading
import unittest

import awf
from awf import ALLOWED, OTHER, assert_fields, pattern


class MiniUpstream(awf.ThreadServer):
    """A scripted HTTP/1.1 server in a thread, for what tests/tools/upstream.py cannot do: a
    connection that closes on its second request, hop-by-hop response fields. handler(conn_no,
    req_no, method, target, headers) returns the response bytes, or None to close at once.
    .seen lists (method, target) in arrival order."""

    def __init__(self, tc, handler):
        self.handler, self.seen, self.lock = handler, [], threading.Lock()
        super().__init__(tc)

    def serve(self, c, conn_no):
        buf, req_no = b"", 0
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:]]
            n = int(dict((k.lower(), v) for k, v in headers).get("content-length", "0"))
            while len(buf) < n:
                buf += c.recv(65536)
            buf = buf[n:]
            req_no += 1
            with self.lock:
                self.seen.append((method, target))
            out = self.handler(conn_no, req_no, method, target, headers)
            if out is None:
                return
            c.sendall(out)


def ok(body=b"ok", extra=b""):
    return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, len(body), body)


class RobustnessTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=False)

    def start(self, *extra, ports=()):
        self.px = self.proxy(*awf.allow_loopback_args(
            ALLOWED, ports=[self.up.http, self.up.echo] + list(ports), opaque=[self.up.echo]),
            *extra)
        self.hp = "%s:%d" % (ALLOWED, self.up.http)
        return self.px

    def exchange(self, data, count=1, shut=False):
        """Sends data on a new connection, optionally half-closes, reads count responses (None
        for each one the proxy closed before), then what follows until EOF."""
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        rd = awf.Reader(s)
        out = []
        for _ in range(count):
            try:
                out.append(rd.response())
            except ConnectionResetError:
                out.append(None)
        try:
            rest = rd.buf + awf.recv_all(s)
        except ConnectionResetError:
            rest = rd.buf
        return out, rest

    # -- 1: chunked trailers must not move the head the target points into

    def test_chunked_trailers_keep_the_logged_url(self):
        self.start()
        # Around the head buffer's growth steps (1 KiB, 2 KiB, 4 KiB), trailers that cross them.
        for pad in (940, 1960, 4000):
            body = b"5\r\nhello\r\n0\r\nX-Trailer: %s\r\n\r\n" % (b"t" * 200)
            req = (b"POST /echo HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n"
                   b"X-Pad: %s\r\n\r\n" % (self.hp.encode(), b"p" * pad)) + body
            req = req.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n", 1)
            (r,), _ = self.exchange(req)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(json.loads(r.body)["body"], "hello")
        for e in self.px.entries(3):
            assert_fields(self, e, method="POST", status=200, tag="TCP_MISS", hier="ORIGINAL_DST",
                          url="http://%s/echo" % self.hp, host=self.hp)

    def test_trailers_over_the_limit_are_refused(self):
        self.start("--set", "limits.header_bytes=4096")
        req = (b"POST http://%s/echo HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n" % (self.hp.encode(), self.hp.encode())
               + b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 100) for i in range(60)) + b"\r\n")
        (r,), _ = self.exchange(req)
        self.assertTrue(r is None or r.status != 200, r)

    # -- 2: framing llhttp does not check for a request paused at its head

    def test_transfer_encoding_without_chunked_is_refused(self):
        self.start()
        hp = self.hp.encode()
        (r, second), _ = self.exchange(
            b"POST http://%s/echo HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: gzip\r\n\r\n"
            b"GET http://%s/small HTTP/1.1\r\nHost: %s\r\n\r\n" % (hp, hp, hp, hp), count=2)
        self.assertEqual((r.status, r.header("X-Squid-Error")), (400, "ERR_INVALID_REQ 0"), r)
        self.assertIsNone(second, "the pipelined request must not be answered")
        (e,) = self.px.entries(1)
        assert_fields(self, e, status=400, tag="NONE_NONE", url="error:invalid-request")
        self.assertEqual(self.up.stats()["spoke"], 0, "nothing reached the upstream")

    def test_transfer_encoding_on_http10_is_refused(self):
        self.start()
        hp = self.hp.encode()
        (r,), _ = self.exchange(
            b"POST http://%s/echo HTTP/1.0\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\n" % (hp, hp))
        self.assertEqual(r.status, 400, r)

    # -- 3: half-closed clients

    def test_half_close_after_a_request_gets_the_answer(self):
        self.start()
        (r,), rest = self.exchange(b"GET http://%s/small HTTP/1.1\r\nHost: %s\r\n\r\n"
                                   % (self.hp.encode(), self.hp.encode()), shut=True)
        self.assertEqual((r.status, r.body, rest), (200, pattern(100), b""), r)
        (e,) = self.px.entries(1)
        assert_fields(self, e, status=200, tag="TCP_MISS")

    def test_half_close_after_pipelined_requests_answers_all(self):
        self.start()
        hp = self.hp.encode()
        get = b"GET http://%s/small HTTP/1.1\r\nHost: %s\r\n\r\n" % (hp, hp)
        (a, b), rest = self.exchange(get + get.replace(b"/small", b"/bytes/7"), count=2,
                                     shut=True)
        self.assertEqual((a.status, a.body), (200, pattern(100)), a)
        self.assertEqual((b.status, b.body), (200, pattern(7)), b)
        self.assertEqual(rest, b"")
        self.assertEqual([e["status"] for e in self.px.entries(2)], [200, 200])

    def test_half_close_with_a_partial_head_closes_at_once(self):
        self.start()
        hp = self.hp.encode()
        (r,), rest = self.exchange(b"GET http://%s/small HTTP/1.1\r\nHost: %s\r\n\r\n"
                                   b"GET http://%s/small HT" % (hp, hp, hp), shut=True)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(rest, b"")  # closed without waiting for request_headers (2 min)
        entries = self.px.entries(2)
        assert_fields(self, entries[1], tag="NONE_NONE",
                      url="error:transaction-end-before-headers")

    def test_half_close_inside_a_body_aborts(self):
        self.start()
        hp = self.hp.encode()
        (r,), _ = self.exchange(b"POST http://%s/echo HTTP/1.1\r\nHost: %s\r\n"
                                b"Content-Length: 10\r\n\r\nhalf" % (hp, hp), shut=True)
        self.assertTrue(r is None or r.status != 200, r)

    # -- 4: retries on a stale pooled connection

    def test_only_idempotent_requests_are_retried(self):
        # Each upstream connection answers its first request and closes on its second, as a
        # server that timed the idle connection out just as it was reused.
        mini = MiniUpstream(self, lambda cn, rn, m, t, h: ok(b"%d" % cn) if rn == 1 else None)
        self.start("--threads", "1", ports=[mini.port])  # one loop: one upstream pool
        base = "http://%s:%d" % (ALLOWED, mini.port)

        def one(method, path):
            req = b"%s %s%s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: 0\r\n\r\n" % (
                method, base.encode(), path, ALLOWED.encode(), mini.port)
            req = req.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n", 1)
            (r,), _ = self.exchange(req)
            return r

        self.assertEqual(one(b"GET", b"/a").status, 200)
        r = one(b"POST", b"/b")  # sent on the pooled connection, which closes: not sent again
        self.assertEqual((r.status, r.header("X-Squid-Error")), (502, "ERR_ZERO_SIZE_OBJECT 0"))
        self.assertEqual(one(b"GET", b"/c").status, 200)
        r = one(b"GET", b"/d")  # the same, but safe to repeat on a fresh connection
        self.assertEqual(r.status, 200, r)
        self.assertEqual(mini.seen, [("GET", "/a"), ("POST", "/b"), ("GET", "/c"),
                                     ("GET", "/d"), ("GET", "/d")])

    # -- 5: response hop-by-hop fields

    def test_response_hop_by_hop_fields_removed(self):
        hop = (b"Connection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: secret\r\n"
               b"Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTE: trailers\r\n"
               b"Trailer: X-T\r\nX-End: kept\r\n")
        mini = MiniUpstream(self, lambda cn, rn, m, t, h: ok(b"ok", hop))
        self.start(ports=[mini.port])
        hp = b"%s:%d" % (ALLOWED.encode(), mini.port)
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        rd = awf.Reader(s)
        s.sendall(b"GET http://%s/1 HTTP/1.1\r\nHost: %s\r\n\r\n" % (hp, hp))
        r = rd.response()
        names = [k.lower() for k, _ in r.headers]
        for gone in ("connection", "keep-alive", "x-hop", "proxy-connection", "upgrade", "te",
                     "trailer"):
            self.assertNotIn(gone, names, r)
        self.assertEqual((r.header("X-End"), r.body), ("kept", b"ok"))
        # The last response on the connection says so.
        s.sendall(b"GET http://%s/2 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (hp, hp))
        r = rd.response()
        self.assertEqual([v for k, v in r.headers if k.lower() == "connection"], ["close"], r)
        self.assertEqual(awf.recv_all(s), b"")
        # An HTTP/1.0 client that asked for keep-alive is told it got it.
        s2 = awf.connect(self.px)
        self.addCleanup(s2.close)
        s2.sendall(b"GET http://%s/3 HTTP/1.0\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n"
                   % (hp, hp))
        r = awf.Reader(s2).response()
        self.assertEqual([v for k, v in r.headers if k.lower() == "connection"], ["keep-alive"])

    # -- 6: X-Forwarded-For from the client is dropped, its Via kept

    def test_client_forwarded_for_dropped_via_kept(self):
        self.start()
        hp = self.hp.encode()
        (r,), _ = self.exchange(b"GET http://%s/echo HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                                b"X-Forwarded-For: 10.1.2.3\r\nVia: 1.1 agent-side\r\n\r\n"
                                % (hp, hp))
        got = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
        self.assertNotIn("x-forwarded-for", got)
        self.assertEqual(got.get("via"), "1.1 agent-side")

    # -- 7: Host edge cases

    def test_host_edge_cases(self):
        self.start()
        hp = self.hp.encode()
        cases = [
            b"GET http://%s/small HTTP/1.1\r\nHost: %s\r\nHost: %s\r\n\r\n" % (hp, hp, hp),
            b"GET /small HTTP/1.1\r\nHost: %s\r\nHost: %s:1\r\n\r\n" % (hp, OTHER.encode()),
            b"GET http://%s/small HTTP/1.1\r\nHost: bad host\r\n\r\n" % hp,
            b"GET http://[cafe]/small HTTP/1.1\r\nHost: [cafe]\r\n\r\n",
            b"CONNECT [cafe]:443 HTTP/1.1\r\n\r\n",
        ]
        for req in cases:
            (r,), _ = self.exchange(req)
            self.assertEqual((r.status, r.header("X-Squid-Error")), (400, "ERR_INVALID_REQ 0"),
                             req)
        for e in self.px.entries(len(cases)):
            assert_fields(self, e, tag="NONE_NONE", url="error:invalid-request")

    def test_fragment_not_sent_upstream(self):
        self.start()
        hp = self.hp.encode()
        for req in (b"GET http://%s/echo?q=1#frag HTTP/1.1\r\nHost: %s\r\n" % (hp, hp),
                    b"GET /echo?q=1#frag HTTP/1.1\r\nHost: %s\r\n" % hp):
            (r,), _ = self.exchange(req + b"Connection: close\r\n\r\n")
            self.assertEqual(json.loads(r.body)["target"], "/echo?q=1", r)

    # -- 8: HTTP inside a non-TLS CONNECT tunnel

    def tunnel_request(self, head, split=False):
        t = awf.tunnel(self.px, self.hp)
        self.addCleanup(t.close)
        if split:  # the head arrives in two pieces: held until complete
            t.sendall(head[:10])
            t.sendall(head[10:])
        else:
            t.sendall(head)
        try:
            return awf.Reader(t).response()
        except ConnectionResetError:
            return None
        finally:
            t.close()  # the tunnel ends: its line is logged

    def test_tunnel_http_host_must_name_the_connect_host(self):
        self.start()
        r = self.tunnel_request(b"GET /small HTTP/1.1\r\nHost: ALLOWED.test:1\r\n"
                                b"Connection: close\r\n\r\n", split=True)
        self.assertEqual((r.status, r.body), (200, pattern(100)), r)
        denied = [
            b"GET /small HTTP/1.1\r\nHost: evil.test\r\n\r\n",
            b"GET http://evil.test/small HTTP/1.1\r\nHost: %s\r\n\r\n" % self.hp.encode(),
            b"GET /small HTTP/1.1\r\nHost: %s\r\nHost: evil.test\r\n\r\n" % self.hp.encode(),
        ]
        for head in denied:
            self.assertIsNone(self.tunnel_request(head), head)
        entries = self.px.entries(1 + len(denied))
        (ok_e,) = [e for e in entries if e["tag"] != "TCP_DENIED"]
        assert_fields(self, ok_e, method="CONNECT", url=self.hp,
                      tag=("TCP_TUNNEL", "TCP_TUNNEL_ABORTED"))
        self.assertEqual(len([e for e in entries if e["tag"] == "TCP_DENIED"]), len(denied))
        for e in [e for e in entries if e["tag"] == "TCP_DENIED"]:
            assert_fields(self, e, method="CONNECT", status=403, tag="TCP_DENIED", url=self.hp,
                          server="-")
        # Nothing of a denied request reached the upstream: only the allowed one spoke.
        self.assertEqual(self.up.stats()["spoke"], 1)

    def test_tunnel_non_http_bytes_pass_where_allowed(self):
        self.start()  # the echo port is in tunnels.opaque_ports (test_tunnel_bytes: the default)
        t = awf.tunnel(self.px, "%s:%d" % (ALLOWED, self.up.echo))
        self.addCleanup(t.close)
        t.sendall(b"HELO\r\nnot http at all")
        t.shutdown(socket.SHUT_WR)
        self.assertEqual(awf.recv_all(t), b"HELO\r\nnot http at all<eof>")

    # -- 9: max_tunnels is reserved at the decision, WebSockets count

    def test_tunnel_limit_counts_tunnels_not_yet_spliced(self):
        self.start("--max-tunnels", "1", "--threads", "1")
        t1 = awf.tunnel(self.px, "%s:%d" % (ALLOWED, self.up.echo))  # held: nothing sent yet
        self.addCleanup(t1.close)
        hp = ("%s:%d" % (ALLOWED, self.up.echo)).encode()
        (r,), _ = self.exchange(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hp, hp))
        self.assertEqual((r.status, r.header("X-Squid-Error")), (503, "ERR_CANNOT_FORWARD 0"))
        self.assertIsNotNone(r.header("Retry-After"))
        (r,), _ = self.exchange(
            b"GET http://%s/upgrade HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            % (self.hp.encode(), self.hp.encode()))
        self.assertEqual(r.status, 503, r)
        t1.sendall(b"one")  # the first is unaffected
        t1.shutdown(socket.SHUT_WR)
        self.assertEqual(awf.recv_all(t1), b"one<eof>")

    # -- 10: a drain ends with the last connection

    def test_drain_ends_when_the_last_connection_does(self):
        arrived, release = threading.Event(), threading.Event()

        def slow(cn, rn, m, t, h):
            arrived.set()
            release.wait(awf.WAIT)
            return ok(b"late")

        mini = MiniUpstream(self, slow)
        self.start("--shutdown-drain", "600s", ports=[mini.port])
        hp = b"%s:%d" % (ALLOWED.encode(), mini.port)
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(b"GET http://%s/slow HTTP/1.1\r\nHost: %s\r\n\r\n" % (hp, hp))
        self.assertTrue(arrived.wait(awf.WAIT), "the request did not reach the upstream")
        self.px.p.send_signal(signal.SIGTERM)
        # Once the proxy refuses new connections the drain has begun.
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.px.port), 1).close()
            except (ConnectionRefusedError, ConnectionResetError):  # reset: a closing listener
                break
            self.assertTrue(self.px.running(), self.px.stderr)
        release.set()
        r = awf.Reader(s).response()
        self.assertEqual((r.status, r.body, r.header("Connection")), (200, b"late", "close"))
        self.assertEqual(awf.recv_all(s), b"")
        # Waits at most WAIT (20 s), far below the 600 s drain: it ended with the connection.
        self.assertEqual(self.px.stop(sig=0, timeout=awf.WAIT), 0, self.px.stderr)

if __name__ == "__main__":
    unittest.main(verbosity=2)
