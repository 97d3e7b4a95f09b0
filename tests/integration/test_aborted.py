"""A request that reached an upstream is logged as that request, whatever happens next (issue 13,
finding 2): method, URL, Host, the upstream's address and TCP_MISS_ABORTED when the transaction
is cut short after the request head went upstream — a bad body, a client or upstream reset, an
invalid response, a timeout, a shutdown. A request refused before any of it was sent is logged
NONE_NONE error:invalid-request, and then the upstream really got nothing.

The upstream is a scripted server in a thread that records every byte it receives."""

import socket
import struct
import threading
import time
import unittest

import awf
from awf import ALLOWED, assert_fields


class Recorder(awf.ThreadServer):
    """Reads a request head, records it (and every byte after it) and then does what
    self.mode says: "hold" (answers nothing, reads until the peer closes), "reset" (RST at
    once), "garbage" (an invalid status line), "cut" (a 200 head promising 1000 bytes, 10 of
    them, then RST)."""

    def __init__(self, tc, mode):
        self.mode, self.got, self.lock = mode, [], threading.Lock()
        self.head_seen = threading.Event()
        super().__init__(tc)

    def received(self):
        with self.lock:
            return b"".join(self.got)

    def _take(self, d):
        with self.lock:
            self.got.append(d)

    def serve(self, c, conn_no):
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return
            buf += d
            self._take(d)
        self.head_seen.set()
        if self.mode in ("reset", "cut"):
            if self.mode == "cut":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
                time.sleep(0.2)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return  # closed by ThreadServer: an RST
        if self.mode == "garbage":
            c.sendall(b"HTTP/1.1 abc nonsense\r\n\r\n")
        if self.mode == "bare-cr":  # llhttp 8 takes "\r" + any byte for the empty line
            c.sendall(b"HTTP/1.1 200 OK\rX-Injected: 1\r\nContent-Length: 2\r\n\rXok")
        while True:
            d = c.recv(65536)
            if not d:
                return
            self._take(d)


def rst(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


class AbortedTest(awf.TestCase):
    def start(self, mode, *args):
        self.up = Recorder(self, mode)
        self.px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.port]), *args)
        self.hp = "%s:%d" % (ALLOWED, self.up.port)
        self.url = "http://%s/upload" % self.hp

    def head(self, extra=b"Transfer-Encoding: chunked\r\n", origin=False):
        target = b"/upload" if origin else self.url.encode()
        return b"POST %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target, self.hp.encode(), extra)

    def wait_head_upstream(self):
        self.assertTrue(self.up.head_seen.wait(awf.WAIT), "the head never reached the upstream")

    def assertAborted(self, status, origin=False):
        """The one log line is the request as the upstream got it, cut short."""
        (e,) = self.px.entries(1)
        url = "http://%s/upload" % self.hp
        assert_fields(self, e, method="POST", url=url, host=self.hp, status=status,
                      tag="TCP_MISS_ABORTED", hier="ORIGINAL_DST" if origin else "HIER_DIRECT",
                      server="127.0.0.1", server_port=str(self.up.port))

    def test_bad_chunk_after_the_head_went_upstream(self):
        for origin in (False, True):
            with self.subTest(origin_form=origin):
                self.start("hold")
                s = awf.connect(self.px)
                self.addCleanup(s.close)
                s.sendall(self.head(origin=origin) + b"5\r\nhello\r\n")
                self.wait_head_upstream()
                s.sendall(b"zz\r\nbad chunk\r\n")
                r = awf.Reader(s).response()
                self.assertEqual((r.status, r.header("X-Squid-Error")), (400, "ERR_INVALID_REQ 0"))
                self.assertAborted(400, origin)
                self.assertIn(b"POST /upload HTTP/1.1", self.up.received())
                self.px.stop()

    def test_bad_chunk_in_the_same_read_sends_nothing(self):
        # Head and a bad body in one read: the body is checked before the head goes out, so
        # the upstream gets no byte and the NONE_NONE line tells the truth.
        self.start("hold")
        r = awf.raw_request(self.px, self.head() + b"5\r\nhello\r\nzz\r\nbad chunk\r\n")
        self.assertEqual((r.status, r.header("X-Squid-Error")), (400, "ERR_INVALID_REQ 0"))
        (e,) = self.px.entries(1)
        assert_fields(self, e, status=400, tag="NONE_NONE", url="error:invalid-request",
                      server="-", server_port="-")
        self.px.stop()
        self.assertEqual(self.up.received(), b"")

    def test_client_reset_mid_body(self):
        self.start("hold")
        s = awf.connect(self.px)
        s.sendall(self.head(b"Content-Length: 100\r\n") + b"0123456789")
        self.wait_head_upstream()
        rst(s)
        self.assertAborted(0)

    def test_client_half_close_mid_body(self):
        self.start("hold")
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(self.head() + b"5\r\nhello\r\n")
        self.wait_head_upstream()
        s.shutdown(socket.SHUT_WR)
        self.assertAborted(0)

    def test_upstream_reset_before_an_answer(self):
        self.start("reset")
        r = awf.raw_request(self.px, self.head(b"Content-Length: 5\r\n") + b"hello")
        self.assertEqual(r.status, 502, r)
        self.assertIn(r.header("X-Squid-Error"), ("ERR_READ_ERROR 104", "ERR_ZERO_SIZE_OBJECT 0"))
        self.assertAborted(502)

    def test_invalid_response(self):
        self.start("garbage")
        r = awf.raw_request(self.px, self.head(b"Content-Length: 5\r\n") + b"hello")
        self.assertEqual((r.status, r.header("X-Squid-Error")), (502, "ERR_INVALID_RESP 0"))
        self.assertAborted(502)

    def test_response_head_with_a_bare_cr(self):
        # A CR not followed by LF in a response head: llhttp 8 lets "\r" + any byte pass as a
        # line end, the head rewrite splits lines on LF; the two would disagree on what the
        # client gets, so it is refused.
        self.start("bare-cr")
        r = awf.raw_request(self.px, self.head(b"Content-Length: 5\r\n") + b"hello")
        self.assertEqual((r.status, r.header("X-Squid-Error")), (502, "ERR_INVALID_RESP 0"))
        self.assertAborted(502)

    def test_upstream_reset_mid_response(self):
        self.start("cut")
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(self.head(b"Content-Length: 5\r\n") + b"hello")
        got = awf.recv_all(s)
        self.assertTrue(got.startswith(b"HTTP/1.1 200 OK\r\n"), got)
        self.assertAborted(200)

    def test_read_timeout(self):
        self.start("hold", "--read-timeout", "1s")
        r = awf.raw_request(self.px, self.head(b"Content-Length: 5\r\n") + b"hello")
        self.assertEqual((r.status, r.header("X-Squid-Error")), (504, "ERR_READ_TIMEOUT 0"))
        self.assertAborted(504)

    def test_shutdown_mid_request(self):
        self.start("hold")
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        s.sendall(self.head(b"Content-Length: 5\r\n") + b"hello")
        self.wait_head_upstream()
        self.assertEqual(self.px.stop(), 0)
        self.assertAborted(0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
