"""CONNECT tunnels: TLS through --proxytunnel and HTTPS_PROXY, HTTP/2 inside a tunnel, an IPv6
listener, TCP half-close through a raw tunnel, urllib over HTTPS, and the TCP_TUNNEL log lines
(SPEC §2, §6, §7)."""

import re
import socket
import ssl
import threading
import time
import unittest
import urllib.request

import awf
from awf import ALLOWED, assert_fields, pattern


class ConnectTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=True)
        self.cert, _ = awf.certs()
        self.px = self.proxy(*awf.allow_loopback_args(
            ALLOWED, ports=[self.up.http, self.up.https, self.up.echo], opaque=[self.up.echo]))

    def assertTunnel(self, e, port, ua=re.compile(r"^curl/\d"), version="1.1", host=None):
        hp = "%s:%d" % (ALLOWED, port)
        assert_fields(self, e, client="127.0.0.1", host=host or hp, server="127.0.0.1",
                      server_port=str(port), version=version, method="CONNECT", status=200,
                      tag="TCP_TUNNEL", hier="HIER_DIRECT", url=hp, ua=ua)

    def test_https_through_tunnel(self):
        url = "https://%s:%d/bytes/1000000" % (ALLOWED, self.up.https)
        r = self.curl(url, "--proxytunnel", "--cacert", self.cert, proxy=self.px)
        self.assertEqual((r.rc, r.code, r.connect_code), (0, 200, 200), r)
        self.assertEqual(r.body, pattern(1000000))
        (e,) = self.px.entries(1)
        self.assertTunnel(e, self.up.https)

    def test_https_proxy_environment(self):
        url = "https://%s:%d/small" % (ALLOWED, self.up.https)
        r = self.curl(url, "--cacert", self.cert, env={"HTTPS_PROXY": self.px.url})
        self.assertEqual((r.rc, r.code, r.connect_code), (0, 200, 200), r)
        self.assertEqual(r.body, pattern(100))
        (e,) = self.px.entries(1)
        self.assertTunnel(e, self.up.https)

    def test_plain_http_through_tunnel(self):
        url = "http://%s:%d/small" % (ALLOWED, self.up.http)
        r = self.curl(url, "--proxytunnel", proxy=self.px)
        self.assertEqual((r.rc, r.code, r.connect_code), (0, 200, 200), r)
        self.assertEqual(r.body, pattern(100))
        (e,) = self.px.entries(1)
        self.assertTunnel(e, self.up.http)

    def test_keep_alive_inside_tunnel(self):
        base = "https://%s:%d" % (ALLOWED, self.up.https)
        rc, res, err = awf.curl_multi(self, [base + "/small", base + "/chunked/999"],
                                      "--cacert", self.cert, proxy=self.px)
        self.assertEqual(rc, 0, err)
        self.assertEqual(res[0][::2], (200, pattern(100)))
        self.assertEqual(res[1][::2], (200, pattern(999)))
        self.assertEqual(res[1][1], 0, "second request reused the tunnel")
        (e,) = self.px.entries(1)
        self.assertTunnel(e, self.up.https)

    def test_urllib_https(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"https": self.px.url}),
            urllib.request.HTTPSHandler(context=ctx))
        url = "https://%s:%d/bytes/4321" % (ALLOWED, self.up.https)
        with opener.open(url, timeout=awf.WAIT) as resp:
            self.assertEqual(resp.read(), pattern(4321))
        (e,) = self.px.entries(1)
        # urllib's CONNECT is HTTP/1.0, without a User-Agent unless told to, and without a
        # Host header: Squid logs "-" for it (AWF's readers take the domain from the URL).
        self.assertTunnel(e, self.up.https, ua=("-", re.compile(r"^Python-urllib/")),
                          version="1.0", host="-")

    def echo_tunnel(self, extra=b""):
        """A raw socket with a CONNECT tunnel to the echo server open; (socket, its Reader)."""
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        hp = ("%s:%d" % (ALLOWED, self.up.echo)).encode()
        s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (hp, hp, extra))
        rd = awf.Reader(s)
        self.assertEqual(rd.response(head_only=True).status, 200)
        return s, rd

    def test_half_close_is_forwarded(self):
        s, rd = self.echo_tunnel(b"User-Agent: raw\r\n")
        s.sendall(b"hello through the tunnel")
        s.shutdown(socket.SHUT_WR)  # our FIN must reach the echo server...
        # ...which then answers "<eof>" and closes: the other direction kept working.
        got = rd.buf + awf.recv_all(s)
        self.assertEqual(got, b"hello through the tunnel<eof>")
        s.close()
        (e,) = self.px.entries(1)
        self.assertTunnel(e, self.up.echo, ua="raw")

    def test_client_closing_right_after_200_is_a_tunnel(self):
        # CONNECT, the 200, then the client's FIN before any byte (a client that checks the
        # route and leaves): Squid 5.7 logs it TCP_TUNNEL/200 with the 39 bytes of its 200
        # (measured), not an abort; the FIN reaches the upstream, which ends the tunnel.
        for how in ("fin", "close"):
            s = awf.tunnel(self.px, "%s:%d" % (ALLOWED, self.up.https), ua="c-" + how)
            if how == "fin":
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(awf.recv_all(s), b"")
            s.close()
            self.px.wait_log(1 if how == "fin" else 2)
        for e, ua in zip(self.px.entries(2), ("c-fin", "c-close")):
            self.assertTunnel(e, self.up.https, ua=ua)

    def test_large_bidirectional_raw_tunnel(self):
        s, rd = self.echo_tunnel()
        data = pattern(2 * 1024 * 1024)
        t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
        t.start()
        got = rd.buf + awf.recv_all(s)
        t.join()
        self.assertEqual(got, data + b"<eof>")
        s.close()
        (e,) = self.px.entries(1)
        self.assertTunnel(e, self.up.echo, ua="-")

    def test_urgent_byte_passes_inline(self):
        # TCP urgent data is a byte of the stream like any other: relayed in order, not dropped
        # (sockets read without SO_OOBINLINE skip it).
        s, rd = self.echo_tunnel()
        s.sendall(b"abc")
        time.sleep(0.1)
        s.send(b"X", socket.MSG_OOB)
        time.sleep(0.1)
        s.sendall(b"def")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(rd.buf + awf.recv_all(s), b"abcXdef<eof>")

    def test_connect_to_port_80_is_allowed(self):
        # The policy allows CONNECT to 80; the upstream is elsewhere, so route through a name
        # the hosts file maps to a closed loopback port: we only check the proxy did not deny.
        r = self.curl("http://%s:80/small" % ALLOWED, "--proxytunnel", proxy=self.px)
        self.assertNotEqual(r.connect_code, 403, r)
        (e,) = self.px.entries(1)
        self.assertNotEqual(e["tag"], "TCP_DENIED", e["line"])
        assert_fields(self, e, method="CONNECT", url="%s:80" % ALLOWED)


class Http2Test(awf.TestCase):
    def test_http2_inside_tunnel(self):
        ng = awf.Nginx(self)
        cert, _ = awf.certs()
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[ng.port]))
        r = self.curl("https://%s:%d/" % (ALLOWED, ng.port), "--http2", "--cacert", cert,
                      proxy=px)
        self.assertEqual((r.rc, r.code, r.connect_code), (0, 200, 200), r)
        self.assertEqual(r.http_version, "2", r.out)
        self.assertEqual(r.body, b"h2ok\n")
        (e,) = px.entries(1)
        hp = "%s:%d" % (ALLOWED, ng.port)
        assert_fields(self, e, method="CONNECT", status=200, tag="TCP_TUNNEL",
                      hier="HIER_DIRECT", url=hp, host=hp, server="127.0.0.1")


class LimitsTest(awf.TestCase):
    def test_max_tunnels(self):
        up = self.upstream(tls=False)
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[up.echo], opaque=[up.echo]),
                        "--max-tunnels", "1")
        hp = "%s:%d" % (ALLOWED, up.echo)
        t1 = awf.tunnel(px, hp)
        self.addCleanup(t1.close)
        t1.sendall(b"one")
        self.assertEqual(t1.recv(10), b"one")
        # The second tunnel is over the cap: 503 with Retry-After.
        r = awf.raw_request(px, b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n"
                            % (hp.encode(), hp.encode()))
        self.assertEqual(r.status, 503, r)
        self.assertIsNotNone(r.header("Retry-After"), r)
        # The first is unaffected; once it ends a new tunnel is accepted again.
        t1.sendall(b"still")
        t1.shutdown(socket.SHUT_WR)
        self.assertEqual(awf.recv_all(t1), b"still<eof>")
        t1.close()
        deadline = time.monotonic() + awf.WAIT
        while True:
            try:
                t2 = awf.tunnel(px, hp)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # the proxy frees the slot when it sees the close
        t2.close()
        entries = [awf.parse_fd(self, l) for l in px.wait_log(3)]
        statuses = sorted(e["status"] for e in entries)
        self.assertIn(503, statuses)
        self.assertGreaterEqual(statuses.count(200), 1)


class ConnectionCapTest(awf.TestCase):
    def test_max_connections(self):
        up = self.upstream(tls=False)
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[up.http]),
                        "--max-connections", "2")
        req = b"GET http://%s:%d/small HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (
            ALLOWED.encode(), up.http, ALLOWED.encode(), up.http)
        held = []
        for _ in range(2):  # two keep-alive clients, each known to be served
            s = awf.connect(px)
            self.addCleanup(s.close)
            s.sendall(req)
            self.assertEqual(awf.Reader(s).response().status, 200)
            held.append(s)
        r = awf.raw_request(px, req)
        self.assertIsNotNone(r, "the third connection was closed without an answer")
        self.assertEqual(r.status, 503, r)
        self.assertIsNotNone(r.header("Retry-After"), r)
        for s in held:
            s.close()
        # Once they are gone, a new client is served again.
        deadline = time.monotonic() + awf.WAIT
        while True:
            r = awf.raw_request(px, req)
            if r is not None and r.status == 200:
                break
            self.assertLess(time.monotonic(), deadline, "never served again: %r" % r)
            time.sleep(0.1)
        statuses = [awf.parse_fd(self, l)["status"] for l in px.wait_log(4)]
        self.assertIn(503, statuses)


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Ipv6Test(awf.TestCase):
    def setUp(self):
        super().setUp()
        if not have_ipv6_loopback():
            self.skipTest("no IPv6 loopback (::1) on this machine")

    def test_ipv6_listener_and_upstream(self):
        up = self.upstream(tls=False, host="::1")
        px = self.proxy("--allow-domains", "v6.test", "--allow-ranges", "::1/128",
                        "--allow-ports", str(up.http), listen="[::1]:0",
                        hosts={"v6.test": "::1"})
        self.assertEqual(px.addrs[0][0], "::1")
        url = "http://v6.test:%d/small" % up.http
        r = self.curl(url, "-6", proxy=px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        self.assertEqual(r.body, pattern(100))
        (e,) = px.entries(1)
        assert_fields(self, e, client="::1", method="GET", status=200, tag="TCP_MISS",
                      hier="HIER_DIRECT", url=url, server=("::1", "[::1]"),
                      server_port=str(up.http))

    def test_ipv6_listener_connect(self):
        up = self.upstream(tls=True)
        cert, _ = awf.certs()
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[up.https]), listen="[::1]:0")
        r = self.curl("https://%s:%d/small" % (ALLOWED, up.https), "-6", "--cacert", cert,
                      proxy=px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        (e,) = px.entries(1)
        assert_fields(self, e, client="::1", method="CONNECT", status=200, tag="TCP_TUNNEL")


if __name__ == "__main__":
    unittest.main(verbosity=2)
