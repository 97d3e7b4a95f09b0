"""A CONNECT tunnel whose server speaks first and closes its side before the client has sent
anything (the proxy is still waiting for the client's first bytes to check them): the server's
bytes and FIN reach the client, and the client's bytes still reach the server afterwards."""

import socket
import threading
import unittest

import awf
from awf import ALLOWED


class ServerFirstTest(awf.TestCase):
    def test_server_closes_before_client_speaks(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        self.addCleanup(srv.close)
        port = srv.getsockname()[1]
        got = bytearray()

        def serve():
            conn, _ = srv.accept()
            with conn:
                conn.sendall(b"hello")
                conn.shutdown(socket.SHUT_WR)
                while True:
                    d = conn.recv(65536)
                    if not d:
                        break
                    got.extend(d)

        t = threading.Thread(target=serve)
        t.start()
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[port], opaque=[port]))
        s = awf.connect(px)
        self.addCleanup(s.close)
        hp = ("%s:%d" % (ALLOWED, port)).encode()
        s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hp, hp))
        rd = awf.Reader(s)
        self.assertEqual(rd.response(head_only=True).status, 200)
        s.settimeout(awf.WAIT)
        # The server's bytes (maybe read along with the 200), then its FIN.
        self.assertEqual(bytes(rd.buf) + awf.recv_all(s), b"hello")
        data = bytes(range(256)) * 800  # 200 KiB, not TLS: passes the peek
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        t.join(awf.WAIT)
        self.assertEqual(bytes(got), data)


if __name__ == "__main__":
    unittest.main()
