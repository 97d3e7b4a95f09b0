"""What the upstream sees: no Via, no X-Forwarded-For, no hop-by-hop headers, end-to-end headers
intact; a WebSocket upgrade is forwarded and then carries raw bytes (SPEC §5)."""

import json
import unittest

import awf
from awf import ALLOWED, assert_fields

HOP_BY_HOP = ["connection", "proxy-connection", "keep-alive", "te", "trailer",
              "proxy-authorization", "upgrade", "x-named-by-connection"]
ADDED_BY_PROXIES = ["via", "x-forwarded-for", "forwarded", "x-forwarded-proto",
                    "x-forwarded-host", "x-real-ip"]


class HeadersTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=False)
        self.px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http]))
        self.hp = "%s:%d" % (ALLOWED, self.up.http)

    def echo(self, headers, method=b"GET", body=b""):
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        req = b"%s http://%s/echo HTTP/1.1\r\n" % (method, self.hp.encode())
        req += b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body
        s.sendall(req)
        r = awf.Reader(s).response()
        s.close()
        self.assertEqual(r.status, 200, r)
        doc = json.loads(r.body)
        return doc, {k.lower(): v for k, v in doc["headers"]}, r

    def test_hop_by_hop_removed_end_to_end_kept(self):
        doc, got, r = self.echo([
            b"Host: " + self.hp.encode(),
            b"User-Agent: agent/1.0",
            b"Accept: text/plain",
            b"X-Custom: kept",
            b"Authorization: Bearer end-to-end",
            b"Connection: keep-alive, X-Named-By-Connection",
            b"X-Named-By-Connection: drop me",
            b"Proxy-Connection: keep-alive",
            b"Keep-Alive: timeout=5",
            b"TE: trailers",
            b"Trailer: X-Checksum",
            b"Proxy-Authorization: Basic dXNlcjpwYXNz",
        ])
        for name in HOP_BY_HOP + ADDED_BY_PROXIES:
            self.assertNotIn(name, got, "upstream received %s: %s" % (name, doc["headers"]))
        self.assertEqual(got.get("x-custom"), "kept")
        self.assertEqual(got.get("user-agent"), "agent/1.0")
        self.assertEqual(got.get("accept"), "text/plain")
        self.assertEqual(got.get("authorization"), "Bearer end-to-end")
        self.assertEqual(got.get("host"), self.hp)
        # The upstream got origin form, not the absolute URI meant for the proxy.
        self.assertEqual(doc["target"], "/echo")
        self.assertIsNone(r.header("Via"))
        (e,) = self.px.entries(1)
        assert_fields(self, e, status=200, tag="TCP_MISS", ua="agent/1.0")

    def raw_echo(self, target, headers):
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(b"GET %s HTTP/1.1\r\n%s\r\n" % (target, b"".join(h + b"\r\n" for h in headers)))
        r = awf.Reader(s).response()
        s.close()
        return r

    def test_host_sent_as_squid_sends_it(self):
        # Squid 5.7 (measured) sends the URL's host canonical: lower case, no trailing dot,
        # the default port left out; the Host the client wrote (same host) is replaced.
        port = self.up.http
        cases = [
            (b"http://ALLOWED.Test.:%d/echo" % port, b"Host: ALLOWED.Test.:%d" % port,
             self.hp),
            (b"http://allowed.test:%d/echo" % port, None, self.hp),
            (b"http://Allowed.TEST:%d/echo" % port, b"Host: allowed.test:%d" % port, self.hp),
        ]
        for target, host, want in cases:
            r = self.raw_echo(target, [host] if host else [])
            self.assertEqual(r.status, 200, r)
            got = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
            self.assertEqual(got["host"], want, target)
        self.px.entries(3)

    def test_userinfo_in_url_sent_as_authorization(self):
        # http://user:pass@host/: Squid 5.7 (measured) forwards it, logs the URL without the
        # userinfo and sends "Authorization: Basic base64(userinfo)" unless the client sent an
        # Authorization itself.
        hp = self.hp.encode()
        r = self.raw_echo(b"http://user:pa%%40ss@%s/echo" % hp, [b"Host: " + hp])
        self.assertEqual(r.status, 200, r)
        doc = json.loads(r.body)
        got = {k.lower(): v for k, v in doc["headers"]}
        self.assertEqual(got["authorization"], "Basic dXNlcjpwYSU0MHNz")  # user:pa%40ss
        self.assertEqual((doc["target"], got["host"]), ("/echo", self.hp))
        r = self.raw_echo(b"http://u@%s/echo" % hp, [b"Authorization: Bearer own"])
        got = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
        self.assertEqual(got["authorization"], "Bearer own")
        # a control byte or space in the userinfo is no URL
        self.assertEqual(self.raw_echo(b"http://u\x01@%s/echo" % hp, []).status, 400)
        e1, e2, e3 = self.px.entries(3)
        url = "http://%s/echo" % self.hp
        assert_fields(self, e1, status=200, url=url, host=self.hp, tag="TCP_MISS")
        assert_fields(self, e2, status=200, url=url, host="-", tag="TCP_MISS")
        assert_fields(self, e3, status=400, tag="NONE_NONE")

    def test_no_via_or_forwarded_for_with_curl(self):
        r = self.curl("http://%s/echo" % self.hp, proxy=self.px)
        self.assertEqual(r.code, 200, r)
        got = {k.lower() for k, _ in json.loads(r.body)["headers"]}
        for name in ADDED_BY_PROXIES + ["proxy-connection"]:
            self.assertNotIn(name, got)
        self.assertIsNone(r.header("Via"))
        (e,) = self.px.entries(1)
        assert_fields(self, e, status=200, tag="TCP_MISS")

    def test_post_body_and_headers(self):
        doc, got, _ = self.echo([b"Host: " + self.hp.encode(), b"Content-Length: 11",
                                 b"Content-Type: text/plain"], method=b"POST", body=b"hello world")
        self.assertEqual(doc["body"], "hello world")
        self.assertEqual(got.get("content-length"), "11")
        self.assertEqual(got.get("content-type"), "text/plain")
        self.px.entries(1)

    def test_websocket_upgrade_forwarded(self):
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(b"GET http://%s/upgrade HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
                  b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                  % (self.hp.encode(), self.hp.encode()))
        rd = awf.Reader(s)
        r = rd.response()
        self.assertEqual(r.status, 101, r)
        self.assertEqual((r.header("Upgrade") or "").lower(), "websocket")
        s.sendall(b"ping after upgrade")
        got = rd.buf
        while len(got) < len(b"ping after upgrade"):
            d = s.recv(65536)
            if not d:
                break
            got += d
        self.assertEqual(got, b"ping after upgrade")
        s.close()
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="GET", status=101, url="http://%s/upgrade" % self.hp,
                      tag=("TCP_MISS", "TCP_TUNNEL", "TCP_MISS_ABORTED", "TCP_TUNNEL_ABORTED"))

    def test_upgrade_answered_without_101_then_a_larger_request(self):
        # An upgrade request keeps only what its head holds (it may become a tunnel); when the
        # server answers it plainly, the next request on the connection grows the head again.
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(b"GET http://%s/echo HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
                  b"Upgrade: websocket\r\n\r\n" % (self.hp.encode(), self.hp.encode()))
        rd = awf.Reader(s)
        r = rd.response()
        self.assertEqual(r.status, 200, r)
        many = [b"X-Field-%d: %s" % (i, b"v" * 40) for i in range(40)]
        s.sendall(b"GET http://%s/echo HTTP/1.1\r\nHost: %s\r\n%s\r\n\r\n"
                  % (self.hp.encode(), self.hp.encode(), b"\r\n".join(many)))
        r = rd.response()
        self.assertEqual(r.status, 200, r)
        got = {k.lower(): v for k, v in json.loads(r.body)["headers"]}
        for i in range(40):
            self.assertEqual(got.get("x-field-%d" % i), "v" * 40)
        s.close()
        self.px.entries(2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
