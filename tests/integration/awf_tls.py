"""A TLS client pumped by hand over a connected socket, so a test controls how the ClientHello
is cut into TLS records and TCP segments (SPEC §2: the proxy must reassemble it)."""

import re
import socket
import ssl
import struct
import time


class TlsClient:
    """TLS over an already connected socket (e.g. inside a CONNECT tunnel, or straight to the
    proxy as intercepted TLS), pumped by hand so the ClientHello can be cut into several TLS
    records (records=N) and TCP segments (segments=N)."""

    def __init__(self, sock, server_hostname, cafile=None, records=1, segments=1,
                 alpn=("http/1.1",), verify=True):
        ctx = ssl.create_default_context(cafile=cafile)
        if server_hostname is None or not verify:  # then only the peer can make it fail
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        self.sock, self.inc, self.out = sock, ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=server_hostname)
        first = True
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                data = self.out.read()
                if first:
                    self._send_hello(data, records, segments)
                    first = False
                elif data:
                    sock.sendall(data)
                self._feed()

    def _send_hello(self, data, records, segments):
        if records > 1:  # re-frame the one handshake record as several
            hdr, body = data[:5], data[5:]
            step = -(-len(body) // records)
            data = b"".join(hdr[:3] + struct.pack(">H", len(body[i:i + step])) + body[i:i + step]
                            for i in range(0, len(body), step))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        step = -(-len(data) // segments)
        for i in range(0, len(data), step):
            self.sock.sendall(data[i:i + step])
            if segments > 1:
                time.sleep(0.05)  # let each piece leave as its own segment; not an assertion

    def _feed(self):
        d = self.sock.recv(65536)
        if not d:
            raise ConnectionError("closed by peer during TLS")
        self.inc.write(d)

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def send(self, data):
        self.obj.write(data)
        self._flush()

    def response(self):
        """Reads one HTTP response (the upstream answers with Content-Length)."""
        buf = b""
        while True:
            try:
                buf += self.obj.read(65536)
            except ssl.SSLWantReadError:
                self._feed()
                continue
            except ssl.SSLZeroReturnError:
                break
            if b"\r\n\r\n" in buf:
                head, _, body = buf.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
        head, _, body = buf.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), body
