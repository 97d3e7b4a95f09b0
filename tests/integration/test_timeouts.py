"""Client-side timeouts with short configured values and generous waits (SPEC §7): the request
header deadline (slowloris), the idle keep-alive client, the connection lifetime. Only what
happens is asserted, never how fast."""

import unittest

import awf
from awf import ALLOWED, assert_fields, pattern


class TimeoutsTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=False)
        self.base = "http://%s:%d" % (ALLOWED, self.up.http)

    def start(self, *extra):
        self.px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http, self.up.echo],
                                                      opaque=[self.up.echo]),
                             *extra)

    def assertStillServes(self):
        r = self.curl(self.base + "/small", proxy=self.px)
        self.assertEqual((r.code, r.body), (200, pattern(100)), r)

    def test_request_header_deadline(self):
        self.start("--request-timeout", "1s")
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(b"GET %s/small HTTP/1.1\r\nHost: %s:%d\r\nX-Slow: "
                  % (self.base.encode(), ALLOWED.encode(), self.up.http))
        # The rest never comes: the proxy gives up (maybe with a 4xx) and closes.
        data = awf.recv_all(s)
        self.assertTrue(data == b"" or data.startswith(b"HTTP/1.1 4"), data[:200])
        s.close()
        self.assertStillServes()
        entries = [awf.parse_fd(self, l) for l in self.px.wait_log(2)]
        assert_fields(self, entries[-1], status=200, tag="TCP_MISS")
        for e in entries[:-1]:
            assert_fields(self, e, tag=("NONE_NONE", "TCP_MISS_ABORTED", "NONE_NONE_ABORTED"),
                          hier="HIER_NONE", server="-")

    def test_idle_keep_alive_client_is_closed(self):
        self.start("--client-idle-timeout", "1s")
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(b"GET %s/small HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                  % (self.base.encode(), ALLOWED.encode(), self.up.http))
        rd = awf.Reader(s)
        self.assertEqual(rd.response().body, pattern(100))
        self.assertEqual(awf.recv_all(s), b"")  # closed by the proxy once idle
        s.close()
        (e,) = self.px.entries(1)
        assert_fields(self, e, status=200, tag="TCP_MISS", ua="-")

    def test_idle_client_without_request(self):
        self.start("--client-idle-timeout", "1s", "--request-timeout", "1s")
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        self.assertEqual(awf.recv_all(s), b"")
        s.close()
        self.assertStillServes()

    def test_tunnel_lifetime(self):
        self.start("--lifetime", "2s")
        hp = "%s:%d" % (ALLOWED, self.up.echo)
        t = awf.tunnel(self.px, hp)
        self.addCleanup(t.close)
        t.sendall(b"ping")
        self.assertEqual(t.recv(10), b"ping")
        # Nothing more is sent; the lifetime ends the tunnel.
        try:
            rest = awf.recv_all(t)
        except ConnectionResetError:
            rest = b""
        self.assertIn(rest, (b"", b"<eof>"))
        t.close()
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", status=200, url=hp,
                      tag=("TCP_TUNNEL", "TCP_TUNNEL_ABORTED"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
