"""Malformed and smuggling-shaped requests over raw sockets: 400 ERR_INVALID_REQ (NONE_NONE,
error:invalid-request), oversized headers: 431 ERR_TOO_BIG (error:request-too-large); after each
the proxy keeps serving other clients (SPEC §5)."""

import socket
import unittest

import awf
from awf import ALLOWED, assert_fields, pattern


class MalformedTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=False)
        self.px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http]))
        self.hp = ("%s:%d" % (ALLOWED, self.up.http)).encode()
        self.n_logged = 0

    def request(self, head_lines, body=b"", path=b"/echo", method=b"POST"):
        return (b"%s http://%s%s HTTP/1.1\r\n" % (method, self.hp, path)
                + b"".join(l + b"\r\n" for l in head_lines) + b"\r\n" + body)

    def send(self, data):
        """Sends raw bytes, reads the answer; a proxy closing early is fine if it answered."""
        s = awf.connect(self.px)
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                return awf.Reader(s).response()
            except ConnectionResetError:
                return None
        finally:
            s.close()

    def assertStillServes(self):
        r = self.curl("http://%s/small" % self.hp.decode(), proxy=self.px)
        self.assertEqual((r.code, r.body), (200, pattern(100)), r)

    def assertRejected(self, data, status=400, error="ERR_INVALID_REQ 0",
                       url="error:invalid-request", method="-", version="1.1", empty_row=False):
        """The answer and its row (then the row of a request that is still served); empty_row:
        a second, empty row for the rejected connection, as Squid 5.7 writes after a 505."""
        r = self.send(data)
        self.assertIsNotNone(r, "connection closed without an answer")
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("X-Squid-Error"), error)
        self.assertStillServes()
        self.n_logged += 3 if empty_row else 2
        lines = self.px.wait_log(self.n_logged)
        self.assertEqual(len(lines), self.n_logged, "\n".join(lines))
        rows = [awf.parse_fd(self, x) for x in lines[-3 if empty_row else -2:]]
        good = next(e for e in rows if e["status"] == 200)
        rows.remove(good)
        bad = next(e for e in rows if e["status"] != 0)
        assert_fields(self, bad, client="127.0.0.1", status=status, tag="NONE_NONE",
                      hier="HIER_NONE", url=url, server="-", server_port="-", method=method,
                      version=version, host="-", ua="-")
        if empty_row:
            (empty,) = [e for e in rows if e is not bad]
            assert_fields(self, empty, client_port=bad["client_port"], status=0,
                          method="-", version="0.0", url="error:transaction-end-before-headers")
        assert_fields(self, good, status=200, tag="TCP_MISS")
        return r

    def test_content_length_and_transfer_encoding(self):
        self.assertRejected(self.request([b"Host: " + self.hp, b"Content-Length: 5",
                                          b"Transfer-Encoding: chunked"], b"0\r\n\r\n"))

    def test_two_content_lengths(self):
        self.assertRejected(self.request([b"Host: " + self.hp, b"Content-Length: 5",
                                          b"Content-Length: 6"], b"hello!"))

    def test_bad_chunk_size(self):
        self.assertRejected(self.request([b"Host: " + self.hp, b"Transfer-Encoding: chunked"],
                                         b"zz\r\nhello\r\n0\r\n\r\n"))

    def test_obs_fold(self):
        self.assertRejected(self.request([b"Host: " + self.hp, b"X-Folded: one", b"  two",
                                          b"Content-Length: 0"]))

    def test_space_before_colon(self):
        self.assertRejected(self.request([b"Host : " + self.hp, b"Content-Length: 0"]))

    # Request lines as Squid 5.7 reads them (measured; README "Compatibility with Squid"): not
    # HTTP when no method (token bytes, at most 32) or no target follows, the method logged.
    def test_garbage(self):
        self.assertRejected(b"HELLO\r\n\r\n", error="ERR_PROTOCOL_UNKNOWN 0", method="HELLO")

    def test_garbage_two_words(self):
        self.assertRejected(b"HELLO THERE\r\nthis is not http\r\n\r\n",
                            error="ERR_PROTOCOL_UNKNOWN 0", method="HELLO")
        # an HTTP/0.9 line (no version) other than GET is not HTTP to Squid either
        self.assertRejected(b"HELLO world HTTX/1.1\r\n\r\n", error="ERR_PROTOCOL_UNKNOWN 0",
                            method="HELLO")

    def test_binary_garbage(self):
        self.assertRejected(b"\x00\x01\x02\xff\xfe garbage\r\n\r\n",
                            error="ERR_PROTOCOL_UNKNOWN 0")

    def test_method_over_32_bytes(self):
        self.assertRejected(b"A" * 33 + b" http://%s/small HTTP/1.1\r\nHost: %s\r\n\r\n"
                            % (self.hp, self.hp), error="ERR_PROTOCOL_UNKNOWN 0", method="A" * 32)

    def test_method_without_target(self):
        self.assertRejected(b"GET \r\n\r\n", error="ERR_PROTOCOL_UNKNOWN 0", method="GET")

    def test_unknown_method(self):
        # Squid forwards an extension method; llhttp knows a fixed list (README: stricter).
        self.assertRejected(b"FOO http://%s/small HTTP/1.1\r\nHost: %s\r\n\r\n"
                            % (self.hp, self.hp), method="FOO")

    def test_bad_target_byte(self):
        self.assertRejected(b"GET http://%s/a\x01b HTTP/1.1\r\nHost: %s\r\n\r\n"
                            % (self.hp, self.hp), method="GET")

    def test_bad_version(self):
        self.assertRejected(b"GET http://%s/small HTTP/9.9\r\nHost: %s\r\n\r\n"
                            % (self.hp, self.hp), status=505, error="ERR_UNSUP_HTTPVERSION 0",
                            method="GET", url="http://%s/small" % self.hp.decode(),
                            empty_row=True)

    def test_minor_version_over_1(self):
        self.assertRejected(b"GET http://%s/small HTTP/1.2\r\nHost: %s\r\n\r\n"
                            % (self.hp, self.hp), status=505, error="ERR_UNSUP_HTTPVERSION 0",
                            method="GET", url="http://%s/small" % self.hp.decode(),
                            empty_row=True)

    def test_head_ending_in_cr_and_another_byte(self):
        # llhttp 8 takes "\r" and any byte as the empty line that ends a head.
        self.assertRejected(b"GET http://%s/small HTTP/1.1\r\nHost: %s\r\n\rX" % (self.hp, self.hp))

    def test_bare_cr_after_an_empty_value(self):
        # llhttp 8 takes "\r1" as the end of an empty value's line; a server would not.
        self.assertRejected(b"GET http://%s/small HTTP/1.1\r\nX-A: \r1\nHost: %s\r\n\r\n"
                            % (self.hp, self.hp))

    def test_no_version_with_fields(self):
        # llhttp 8 reads a request line without a version as HTTP/0.9, fields and all.
        # Squid takes it as HTTP/0.9, which has only GET: not HTTP (a GET it would forward).
        self.assertRejected(b"POST http://%s/echo\r\nHost: %s\r\n\r\n" % (self.hp, self.hp),
                            error="ERR_PROTOCOL_UNKNOWN 0", method="POST")
        self.assertRejected(b"GET http://%s/echo\r\nHost: %s\r\n\r\n" % (self.hp, self.hp),
                            method="GET")

    def test_http2_version(self):
        self.assertRejected(b"CONNECT %s HTTP/2.0\r\nHost: %s\r\nUser-Agent: x\r\n\r\n"
                            % (self.hp, self.hp), status=505, error="ERR_UNSUP_HTTPVERSION 0",
                            method="CONNECT", url=self.hp.decode(), empty_row=True)

    def test_host_longer_than_a_dns_name(self):
        # 253 characters and a trailing dot is the longest name (common/host.h): the policy
        # decides it (not allowed here); one character more is no host at all.
        name = b".".join([b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 61])
        self.assertEqual(len(name), 253)
        r = self.send(b"GET http://%s./ HTTP/1.1\r\nHost: %s.\r\n\r\n" % (name, name))
        self.assertEqual(r.status, 403, r)
        self.n_logged += 1
        self.px.wait_log(self.n_logged)
        self.assertRejected(b"GET http://%se./ HTTP/1.1\r\nHost: %se.\r\n\r\n" % (name, name))

    def test_header_without_colon(self):
        self.assertRejected(self.request([b"Host: " + self.hp, b"NoColonHere",
                                          b"Content-Length: 0"]))

    def test_nothing_reached_upstream(self):
        r = self.send(self.request([b"Host: " + self.hp, b"Content-Length: 5",
                                    b"Transfer-Encoding: chunked"], b"0\r\n\r\n"))
        self.assertEqual(r.status if r else None, 400)
        # The smuggling-shaped request never reached the upstream: a direct request now is the
        # upstream's first connection ever.
        r = self.curl("http://127.0.0.1:%d/small" % self.up.http)
        self.assertEqual(r.header("X-Conn"), "1")
        (e,) = self.px.entries(1)
        assert_fields(self, e, status=400, tag="NONE_NONE", url="error:invalid-request")

    def test_headers_over_64k(self):
        filler = [b"X-Filler-%03d: %s" % (i, b"a" * 1000) for i in range(70)]
        self.assertRejected(self.request([b"Host: " + self.hp] + filler, method=b"GET",
                                         path=b"/small"),
                            status=431, error="ERR_TOO_BIG 0", url="error:request-too-large")

    def test_too_many_headers(self):
        filler = [b"X-H%d: v" % i for i in range(300)]
        self.assertRejected(self.request([b"Host: " + self.hp] + filler, method=b"GET",
                                         path=b"/small"),
                            status=431, error="ERR_TOO_BIG 0", url="error:request-too-large")

    def test_headers_just_under_the_limit_pass(self):
        filler = [b"X-Filler-%03d: %s" % (i, b"a" * 1000) for i in range(50)]
        r = self.send(self.request([b"Host: " + self.hp] + filler, method=b"GET", path=b"/small"))
        self.assertEqual((r.status, r.body), (200, pattern(100)))
        (e,) = self.px.entries(1)
        assert_fields(self, e, status=200, tag="TCP_MISS")

    def test_client_closes_before_headers(self):
        # A connection that sends half a request and closes: logged as a transaction that ended
        # before its headers (SPEC §6's fourth example), and the proxy keeps serving.
        s = awf.connect(self.px)
        s.sendall(b"GET http://" + self.hp)
        s.shutdown(socket.SHUT_WR)
        try:
            awf.recv_all(s)
        except ConnectionResetError:
            pass
        s.close()
        self.assertStillServes()
        lines = self.px.wait_log(2)
        entries = [awf.parse_fd(self, l) for l in lines]
        self.assertEqual(len(entries), 2, lines)
        early = [e for e in entries if e["status"] != 200]
        self.assertEqual(len(early), 1, lines)
        assert_fields(self, early[0], tag="NONE_NONE", hier="HIER_NONE",
                      url=("error:transaction-end-before-headers", "error:invalid-request"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
