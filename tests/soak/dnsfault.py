"""A scripted DNS server on loopback (UDP and TCP, one port) for the DNS fault tests. What it
answers depends on the query name's first label:

    ok*        A 127.0.0.1, TTL 60 (AAAA: no records)
    servfail*  SERVFAIL          refused*   REFUSED          nx*   NXDOMAIN
    silent*    nothing (the resolver times out)
    slow*      the ok answer after .slow seconds
    trunc*     over UDP an empty answer with TC set; over TCP the ok answer
    tcpfail*   over UDP TC set; over TCP the connection is closed
    garbage*   bytes that are not a DNS message (with the query's ID)
    wrongid*   the ok answer with another ID (a spoof attempt), then nothing
    private*   A 10.0.0.1 (the proxy must refuse to dial it)
.fixed makes every name answer as ok* (a resolver that recovered). .queries counts queries by
name. stop() closes both sockets (the resolver is down); start() on the same port again.
"""

import socket
import struct
import threading
import time


KINDS = ("ok", "servfail", "refused", "nx", "silent", "slow", "trunc", "tcpfail", "garbage",
         "wrongid", "private")


def qname_of(msg):
    labels, i = [], 12
    while msg[i]:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace").lower())
        i += 1 + n
    return ".".join(labels), i + 1


class DnsFault:
    def __init__(self, port=0):
        self.fixed, self.slow = False, 1.5
        self.queries, self.lock = {}, threading.Lock()
        self.port = port
        self.start()

    def start(self):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.port == 0:  # one port free for both
            for _ in range(100):
                self.udp.bind(("127.0.0.1", 0))
                try:
                    self.tcp.bind(("127.0.0.1", self.udp.getsockname()[1]))
                    break
                except OSError:
                    self.udp.close()
                    self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.port = self.udp.getsockname()[1]
        else:
            self.udp.bind(("127.0.0.1", self.port))
            self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(64)
        self.threads = [threading.Thread(target=self._udp_loop, args=(self.udp,), daemon=True),
                        threading.Thread(target=self._tcp_loop, args=(self.tcp,), daemon=True)]
        for t in self.threads:
            t.start()

    def stop(self):
        for s in (self.udp, self.tcp):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self.threads:
            t.join(5)

    def count(self, name):
        with self.lock:
            return self.queries.get(name, 0)

    def answer(self, q, tcp):
        """The reply bytes for query q, or None for no reply."""
        name, end = qname_of(q)
        qtype = struct.unpack(">H", q[end:end + 2])[0]
        with self.lock:
            self.queries[name] = self.queries.get(name, 0) + 1
        label = name.split(".")[0]
        kind = "ok" if self.fixed else next((k for k in KINDS if label.startswith(k)), "nx")
        qid, question = q[:2], q[12:end + 4]

        def reply(rcode, answers=(), tc=False, ident=qid):
            flags = 0x8180 | rcode | (0x0200 if tc else 0)
            out = ident + struct.pack(">HHHHH", flags, 1, len(answers), 0, 0) + question
            for addr in answers:
                out += struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(addr)
            return out

        ok = reply(0, ["127.0.0.1"] if qtype == 1 else [])
        if kind == "ok":
            return ok
        if kind == "private":
            return reply(0, ["10.0.0.1"] if qtype == 1 else [])
        if kind in ("servfail", "refused", "nx"):
            return reply({"servfail": 2, "refused": 5, "nx": 3}[kind])
        if kind == "silent":
            return None
        if kind == "slow":
            time.sleep(self.slow)
            return ok
        if kind in ("trunc", "tcpfail"):
            if not tcp:
                return reply(0, tc=True)
            return ok if kind == "trunc" else b"close"
        if kind == "garbage":
            return qid + b"\xff" * 7
        if kind == "wrongid":
            return reply(0, ["127.0.0.2"] if qtype == 1 else [],
                         ident=struct.pack(">H", (struct.unpack(">H", qid)[0] + 1) & 0xFFFF))
        return reply(3)

    def _udp_loop(self, s):
        while True:
            try:
                q, peer = s.recvfrom(4096)
            except OSError:
                return
            threading.Thread(target=self._udp_one, args=(s, q, peer), daemon=True).start()

    def _udp_one(self, s, q, peer):
        try:
            out = self.answer(q, False)
            if out is not None:
                s.sendto(out, peer)
        except (OSError, IndexError, struct.error):
            pass

    def _tcp_loop(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=self._tcp_one, args=(c,), daemon=True).start()

    def _tcp_one(self, c):
        with c:
            try:
                while True:
                    hdr = c.recv(2, socket.MSG_WAITALL)
                    if len(hdr) < 2:
                        return
                    q = c.recv(struct.unpack(">H", hdr)[0], socket.MSG_WAITALL)
                    out = self.answer(q, True)
                    if out == b"close":
                        return
                    if out is not None:
                        c.sendall(struct.pack(">H", len(out)) + out)
            except (OSError, IndexError, struct.error):
                return
