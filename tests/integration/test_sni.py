"""The TLS ClientHello inside CONNECT tunnels (SPEC §2): its SNI must be allowed and name the
CONNECT host; a ClientHello without SNI is denied; the check survives a ClientHello cut into
several records and segments; no byte of a denied tunnel reaches the upstream (it may have
been connected to, as the CONNECT is answered before the ClientHello arrives)."""

import ssl
import unittest

import awf
from awf import ALLOWED, OTHER, assert_fields, pattern

TLS_FAILURES = (ConnectionError, ssl.SSLError, OSError)


class SniTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=True)
        self.hp = "%s:%d" % (ALLOWED, self.up.https)

    def start(self, *extra):
        self.px = self.proxy(*awf.allow_loopback_args(ALLOWED, OTHER, ports=[self.up.https]),
                             *extra)

    def get_small(self, sni, **kw):
        s = awf.tunnel(self.px, self.hp, ua="sni-test")
        self.addCleanup(s.close)
        try:
            tls = awf.TlsClient(s, sni, **kw)
            tls.send(b"GET /small HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                     % self.hp.encode())
            return tls.response()
        finally:
            s.close()  # the transaction ends (and is logged) when both sides are done

    def assertRefused(self, sni):
        with self.assertRaises(TLS_FAILURES):
            self.get_small(sni, verify=False)  # a failure can only come from the proxy
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", url=self.hp, host=self.hp, tag="TCP_DENIED",
                      status=(403, 200))
        # The proxy may have connected (it answered the CONNECT before the ClientHello came),
        # but no byte of the ClientHello may reach the upstream.
        stats = self.up.stats()
        self.assertEqual(stats["spoke"], 0, "bytes of a denied tunnel reached the upstream: %s"
                         % stats)

    def test_matching_sni_passes(self):
        self.start()
        self.assertEqual(self.get_small(ALLOWED), (200, pattern(100)))
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", status=200, tag="TCP_TUNNEL",
                      hier="HIER_DIRECT", url=self.hp, ua="sni-test")

    def test_matching_sni_in_pieces(self):
        self.start()
        self.assertEqual(self.get_small(ALLOWED, records=3, segments=5), (200, pattern(100)))
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", status=200, tag="TCP_TUNNEL")

    def test_sni_naming_another_allowed_host_is_denied(self):
        self.start()
        self.assertRefused(OTHER)

    def test_sni_not_allowed_is_denied(self):
        self.start()
        self.assertRefused("evil.test")

    def test_no_sni_is_denied(self):
        self.start()
        self.assertRefused(None)

    def test_check_can_be_switched_off(self):
        self.start("--set", "tls.sni_in_connect=false")
        self.assertEqual(self.get_small(OTHER), (200, pattern(100)))
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", status=200, tag="TCP_TUNNEL")


if __name__ == "__main__":
    unittest.main(verbosity=2)
