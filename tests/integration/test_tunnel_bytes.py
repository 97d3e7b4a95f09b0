"""What a CONNECT tunnel's first bytes may be (issue #13, README "Tunnels"): a TLS ClientHello
(with SNI), an HTTP/1.x request whose Host and absolute URI name the CONNECT host, or an h2c
preface whose first HEADERS (decoded through HPACK) name it; anything else is opaque and denied (TCP_DENIED_OPAQUE)
unless tunnels.opaque_ports / tunnels.opaque_hosts allow it. Each evasion below reached a denied
virtual host on an allowed address before: the recording upstream must receive none of its
bytes. Real sockets on loopback only."""

import socket
import threading
import unittest

import awf
from awf import ALLOWED, OTHER, assert_fields

EVIL = b"evil.test"


class Recorder(awf.ThreadServer):
    """An upstream that records every byte of every connection. A request head (up to an empty
    line) gets a 200 naming its Host; bytes ending in the client's FIN are echoed back."""

    def __init__(self, tc):
        self.got, self.lock = {}, threading.Lock()
        super().__init__(tc)

    def serve(self, c, conn_no):
        buf = b""
        c.settimeout(awf.WAIT)
        while True:
            d = c.recv(65536)
            with self.lock:
                self.got[conn_no] = self.got.get(conn_no, b"") + d
            if not d:
                c.sendall(buf)  # the opaque case: echo what came, then our FIN
                return
            buf += d
            if b"\r\n\r\n" in buf and not buf.startswith(b"PRI * HTTP/2.0"):
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                return

    def close(self):
        try:  # wakes the accepting thread at once (close alone leaves it blocked)
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        super().close()

    def received(self):
        with self.lock:
            return b"".join(self.got.values())


def h2_frame(ftype, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + \
        stream.to_bytes(4, "big") + payload


def hpack_literal(name, value):
    """A literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    return bytes([0x00, len(name)]) + name + bytes([len(value)]) + value


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2c_request(authority):
    """An h2c prior-knowledge request: preface, empty SETTINGS, HEADERS (GET / on stream 1)."""
    block = bytes([0x82, 0x86, 0x84]) + hpack_literal(b":authority", authority)
    return H2_PREFACE + h2_frame(4, 0, 0, b"") + h2_frame(1, 0x05, 1, block)


# SSLv2-format CLIENT-HELLO (version 3.1, one cipher spec, 16-byte challenge): no SNI possible.
SSL2_HELLO = bytes([0x80, 0x1f, 0x01, 0x03, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10,
                    0x00, 0x00, 0x2f]) + bytes(range(16))


class TunnelBytesTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.rec = Recorder(self)
        self.hp = "%s:%d" % (ALLOWED, self.rec.port)

    def start(self, *extra):
        self.px = self.proxy(*awf.allow_loopback_args(ALLOWED, OTHER, ports=[self.rec.port]),
                             *extra)

    def send(self, data, shut=False, hp=None):
        """Sends data as the tunnel's first bytes; returns what comes back until EOF (None on a
        reset)."""
        t = awf.tunnel(self.px, hp or self.hp)
        self.addCleanup(t.close)
        t.sendall(data)
        if shut:
            t.shutdown(socket.SHUT_WR)
        try:
            return awf.recv_all(t)
        except ConnectionResetError:
            return None
        finally:
            t.close()

    def assertDeniedTunnel(self, data, tag="TCP_DENIED", shut=False):
        self.start()
        got = self.send(data, shut=shut)
        self.assertIn(got, (b"", None), "the denied tunnel answered: %r" % got)
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", url=self.hp, tag=tag, status=403, server="-")
        self.assertEqual(self.rec.received(), b"", "bytes of a denied tunnel reached the upstream")

    # -- HTTP/1.x the way lenient servers parse it: each reached evil.test's virtual host before

    def test_leading_crlf(self):
        self.assertDeniedTunnel(b"\r\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n")

    def test_leading_bare_lf(self):
        self.assertDeniedTunnel(b"\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n")

    def test_two_spaces_after_method(self):
        self.assertDeniedTunnel(b"GET  / HTTP/1.1\r\nHost: evil.test\r\n\r\n")

    def test_two_spaces_before_version(self):
        self.assertDeniedTunnel(b"GET /  HTTP/1.1\r\nHost: evil.test\r\n\r\n")

    def test_long_method(self):
        self.assertDeniedTunnel(b"A" * 30 + b" / HTTP/1.1\r\nHost: evil.test\r\n\r\n")

    def test_lowercase_method_and_absolute_uri(self):
        self.assertDeniedTunnel(b"get http://evil.test/ HTTP/1.1\r\n\r\n")

    def test_http09_request_line(self):
        self.assertDeniedTunnel(b"GET http://evil.test/\r\n")

    def test_folded_host(self):
        self.assertDeniedTunnel(b"GET / HTTP/1.1\r\nHost: %s\r\n evil.test\r\n\r\n"
                                % ALLOWED.encode())

    def test_lenient_request_naming_the_connect_host_passes(self):
        self.start()
        got = self.send(b"\r\nGET  /  HTTP/1.1\r\nHost: %s\r\n\r\n" % self.hp.encode())
        self.assertTrue(got.endswith(b"\r\n\r\nok"), got)
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", url=self.hp, status=200,
                      tag=("TCP_TUNNEL", "TCP_TUNNEL_ABORTED"))

    # -- h2c prior knowledge

    def test_h2c_authority_of_another_host(self):
        self.assertDeniedTunnel(h2c_request(EVIL))

    def test_h2c_host_field_of_another_host(self):
        block = bytes([0x82, 0x86, 0x84]) + hpack_literal(b"host", EVIL)
        self.assertDeniedTunnel(H2_PREFACE + h2_frame(4, 0, 0, b"") + h2_frame(1, 0x05, 1, block))

    def test_h2c_authority_split_over_continuation(self):
        block = bytes([0x82, 0x86, 0x84]) + hpack_literal(b":authority", EVIL)
        self.assertDeniedTunnel(H2_PREFACE + h2_frame(4, 0, 0, b"") +
                                h2_frame(1, 0x01, 1, block[:6]) + h2_frame(9, 0x04, 1, block[6:]))

    def test_h2c_undecodable_block(self):
        self.assertDeniedTunnel(H2_PREFACE + h2_frame(1, 0x05, 1, bytes([0x80])))

    def test_h2c_naming_the_connect_host_passes(self):
        self.start()
        req = h2c_request(self.hp.encode())
        self.assertEqual(self.send(req, shut=True), req)
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", status=200, tag="TCP_TUNNEL")

    def test_h2c_passes_where_opaque_is_allowed(self):
        self.start("--set", "tunnels.opaque_ports=%d" % self.rec.port)
        req = H2_PREFACE + h2_frame(1, 0x05, 1, bytes([0x80]))  # undecodable, but opaque may pass
        self.assertEqual(self.send(req, shut=True), req)

    # -- TLS without SNI

    def test_sslv2_client_hello(self):
        self.assertDeniedTunnel(SSL2_HELLO)

    # -- opaque bytes: denied unless allowed by port or host

    def test_opaque_bytes_are_denied_by_default(self):
        self.assertDeniedTunnel(b"HELO\r\nnot http at all", tag="TCP_DENIED_OPAQUE", shut=True)

    def opaque_passes(self, *extra, hp=None):
        self.start(*extra)
        data = b"HELO\r\nnot http at all"
        self.assertEqual(self.send(data, shut=True, hp=hp), data)
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", status=200, tag="TCP_TUNNEL")

    def test_opaque_allowed_by_port(self):
        self.opaque_passes("--set", "tunnels.opaque_ports=1-1000,%d" % self.rec.port)

    def test_opaque_allowed_by_host(self):
        self.opaque_passes("--set", "tunnels.opaque_hosts=*.nowhere.test,%s" % ALLOWED)

    def test_opaque_allowed_by_host_not_for_another(self):
        self.start("--set", "tunnels.opaque_hosts=%s" % ALLOWED)
        hp = "%s:%d" % (OTHER, self.rec.port)
        self.assertIn(self.send(b"HELO\r\n", shut=True, hp=hp), (b"", None))
        (e,) = self.px.entries(1)
        assert_fields(self, e, url=hp, tag="TCP_DENIED_OPAQUE", status=403)
        self.assertEqual(self.rec.received(), b"")

    def test_opaque_allowed_still_checks_http(self):
        self.start("--set", "tunnels.opaque_ports=%d" % self.rec.port)
        self.assertIn(self.send(b"\r\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"), (b"", None))
        (e,) = self.px.entries(1)
        assert_fields(self, e, tag="TCP_DENIED", status=403)
        self.assertEqual(self.rec.received(), b"")

    def test_opaque_allowed_from_a_policy_file(self):
        path = self.write("p.yml", "version: 1\nallow: [%s]\nports: [%d]\naddresses: {allow: "
                          "[127.0.0.0/8]}\ntunnels: {opaque_ports: [%d]}\n"
                          % (ALLOWED, self.rec.port, self.rec.port))
        self.px = self.proxy("--policy", path)
        data = b"\x00\x01binary"
        self.assertEqual(self.send(data, shut=True), data)


if __name__ == "__main__":
    unittest.main(verbosity=2)
