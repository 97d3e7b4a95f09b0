"""Intercepted traffic (what iptables DNAT delivers, SPEC §2): origin-form HTTP decided on the
Host header, raw TLS decided on the ClientHello's SNI (also when cut into several records and
segments); the destination is always the name resolved by the proxy, on the listener's
intercept_port."""

import re
import ssl
import unittest

import awf
from awf import ALLOWED, assert_fields, pattern


class InterceptHttpTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=True)

    def test_origin_form_with_host_port(self):
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http]))
        hp = "%s:%d" % (ALLOWED, self.up.http)
        r = awf.raw_request(px, b"GET /small HTTP/1.1\r\nHost: %s\r\nUser-Agent: dnat\r\n\r\n"
                            % hp.encode())
        self.assertEqual((r.status, r.body), (200, pattern(100)))
        (e,) = px.entries(1)
        assert_fields(self, e, host=hp, server="127.0.0.1", server_port=str(self.up.http),
                      method="GET", status=200, tag="TCP_MISS",
                      hier=("ORIGINAL_DST", "HIER_DIRECT"),
                      url=("http://%s/small" % hp, "/small"), ua="dnat")

    def test_origin_form_on_intercept_port(self):
        text, _ = awf.policy_yaml(allow=[ALLOWED], extra=(
            "listen:\n  - {address: \"127.0.0.1:0\", intercept_port: %d}\n"
            "addresses:\n  allow: [\"127.0.0.0/8\"]\nports: [\"%d\"]\n"
            % (self.up.http, self.up.http)))
        px = self.proxy("-p", self.write("policy.yaml", text), listen=())
        r = awf.raw_request(px, b"GET /small HTTP/1.1\r\nHost: %s\r\n\r\n" % ALLOWED.encode())
        self.assertEqual((r.status, r.body), (200, pattern(100)))
        (e,) = px.entries(1)
        assert_fields(self, e, host=ALLOWED, server="127.0.0.1", server_port=str(self.up.http),
                      method="GET", status=200, tag="TCP_MISS", hier="ORIGINAL_DST",
                      url=re.compile(r"^(http://%s(:%d)?)?/small$" % (ALLOWED, self.up.http)))

    def test_origin_form_denied_host(self):
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http]))
        r = awf.raw_request(px, b"GET /small HTTP/1.1\r\nHost: evil.test:%d\r\n\r\n" % self.up.http)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.header("X-Squid-Error"), "ERR_ACCESS_DENIED 0")
        (e,) = px.entries(1)
        assert_fields(self, e, host="evil.test:%d" % self.up.http, server="-", server_port="-",
                      status=403, tag="TCP_DENIED", hier="HIER_NONE")

    def test_origin_form_without_host_is_400(self):
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http]))
        r = awf.raw_request(px, b"GET /small HTTP/1.1\r\n\r\n")
        self.assertEqual(r.status, 400)
        (e,) = px.entries(1)
        assert_fields(self, e, status=400, tag="NONE_NONE")


class InterceptTlsTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=True)
        text, _ = awf.policy_yaml(allow=[ALLOWED], extra=(
            "listen:\n  - {address: \"127.0.0.1:0\", intercept_port: %d}\n"
            "addresses:\n  allow: [\"127.0.0.0/8\"]\nports: [\"%d\"]\n"
            % (self.up.https, self.up.https)))
        self.px = self.proxy("-p", self.write("policy.yaml", text), listen=())
        self.hp = "%s:%d" % (ALLOWED, self.up.https)

    def get_small(self, sni, **kw):
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        try:
            tls = awf.TlsClient(s, sni, **kw)
            tls.send(b"GET /small HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                     % self.hp.encode())
            return tls.response()
        finally:
            s.close()  # the transaction ends (and is logged) when both sides are done

    def test_allowed_sni(self):
        self.assertEqual(self.get_small(ALLOWED), (200, pattern(100)))
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", status=200, tag="TCP_TUNNEL",
                      hier="ORIGINAL_DST", url=self.hp, host=self.hp, server="127.0.0.1",
                      server_port=str(self.up.https))

    def test_client_hello_in_pieces(self):
        self.assertEqual(self.get_small(ALLOWED, records=4, segments=6), (200, pattern(100)))
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", status=200, tag="TCP_TUNNEL")

    def test_denied_sni_is_closed(self):
        with self.assertRaises((ConnectionError, ssl.SSLError, OSError)):
            self.get_small("evil.test", verify=False)
        (e,) = self.px.entries(1)
        hp = "evil.test:%d" % self.up.https
        assert_fields(self, e, method="CONNECT", tag="TCP_DENIED", url=hp, host=hp, server="-")
        r = self.curl("http://127.0.0.1:%d/small" % self.up.http)
        self.assertEqual(r.header("X-Conn"), "1", "the denied connection reached the upstream")

    def test_no_sni_is_closed(self):
        with self.assertRaises((ConnectionError, ssl.SSLError, OSError)):
            self.get_small(None)
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", tag=("TCP_DENIED", "NONE_NONE"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
