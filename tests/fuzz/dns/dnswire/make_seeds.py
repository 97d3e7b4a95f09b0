#!/usr/bin/env python3
"""Writes the seeds of corpus/ for fuzz_dnswire.c: DNS queries as stub resolvers send them
(dig, glibc, with and without EDNS), answers as recursive servers send them (compressed against
the question, CNAME chains, NXDOMAIN with an SOA, EDNS OPT in the additional section), and the
malformed messages the parsers must refuse. With --capture, also the answers of a real server:
dnsmasq on 127.0.0.1 (an ephemeral port, stopped at the end) to the queries written here.
Run from anywhere: python3 make_seeds.py [--capture]"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, "corpus")

A, NS, CNAME, SOA, TXT, AAAA, OPT, HTTPS = 1, 2, 5, 6, 16, 28, 41, 65


def name(n):
    if n in ("", "."):
        return b"\x00"
    return b"".join(bytes([len(l)]) + l for l in (x.encode() for x in n.rstrip(".").split("."))) \
        + b"\x00"


def header(qid, flags, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", qid, flags, qd, an, ns, ar)


def opt(size=1232):
    return b"\x00" + struct.pack(">HHIH", OPT, size, 0, 0)


def query(n, qtype=A, qid=0x1a2b, rd=True, edns=False):
    return header(qid, 0x0100 if rd else 0, ar=1 if edns else 0) + name(n) \
        + struct.pack(">HH", qtype, 1) + (opt() if edns else b"")


def rr(owner, rtype, ttl, rdata, cls=1):
    return owner + struct.pack(">HHIH", rtype, cls, ttl, len(rdata)) + rdata


Q = b"\xc0\x0c"  # a pointer to the question name, as every server writes


def answer(n, qtype, records, rcode=0, an=None, ns=0, ar=0, extra=b"", flags=0x8180):
    return header(0x1a2b, flags | rcode, an=len(records) if an is None else an, ns=ns, ar=ar) \
        + name(n) + struct.pack(">HH", qtype, 1) + b"".join(records) + extra


def ip4(s):
    return socket.inet_pton(socket.AF_INET, s)


def ip6(s):
    return socket.inet_pton(socket.AF_INET6, s)


def write(fname, b):
    with open(os.path.join(corpus, fname), "wb") as f:
        f.write(b)


def hand_made():
    long_name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
    write("q_a", query("api.github.com"))
    write("q_aaaa_edns", query("github.com", AAAA, edns=True))
    write("q_https_mixed_case", query("WwW.ExAmPlE.CoM", HTTPS, rd=False))
    write("q_txt_underscore", query("_acme-challenge.example.com", TXT))
    write("q_long_name", query(long_name, A))
    write("q_root_ns", query(".", NS))
    write("q_odd_bytes", header(7, 0x0100) + b"\x05a.b c\x00" + struct.pack(">HH", A, 1))
    write("q_chaos", query("version.bind", TXT)[:-2] + b"\x00\x03")
    write("q_bad_pointer", header(7, 0x0100) + b"\xc0\x0c" + struct.pack(">HH", A, 1))
    write("q_bad_two_questions", header(7, 0x0100, qd=2) + name("a.test") + b"\x00\x01\x00\x01")
    write("q_bad_trailing", query("a.test") + b"\x00")
    write("q_bad_short", query("a.test")[:15])

    write("a_a", answer("api.github.com", A, [rr(Q, A, 60, ip4("140.82.112.6"))]))
    write("a_aaaa", answer("github.com", AAAA, [rr(Q, AAAA, 300, ip6("2606:50c0:8000::153"))]))
    # www.example.com CNAME a.example.net CNAME b.example.net A x2, compressed both ways
    chain = [rr(Q, CNAME, 3600, b"\x01a\x07example\x03net\x00"),
             rr(b"\xc0\x2d", CNAME, 60, b"\x01b\xc0\x2f"),
             rr(b"\xc0\x48", A, 20, ip4("192.0.2.1")),
             rr(b"\xc0\x48", A, 20, ip4("192.0.2.2"))]
    write("a_cname_chain", answer("www.example.com", A, chain))
    write("a_cname_query", answer("www.example.com", CNAME, chain[:1]))
    soa = rr(b"\xc0\x11", SOA, 900, b"\x02ns\xc0\x11\x04root\xc0\x11" + struct.pack(">IIIII", 1, 2, 3, 4, 5))
    write("a_nxdomain_soa", answer("nope.example.com", A, [], rcode=3, ns=1, extra=soa))
    write("a_edns_additional", answer("github.com", A, [rr(Q, A, 60, ip4("140.82.121.4"))], ar=1,
                                      extra=opt(1232)))
    write("a_other_records", answer("example.com", A, [rr(Q, TXT, 60, b"\x05hello"),
                                                       rr(b"\x03foo\x00", A, 60, ip4("198.51.100.7")),
                                                       rr(Q, A, 60, ip4("203.0.113.9"), cls=3),
                                                       rr(Q, A, 0x80000001, ip4("203.0.113.10"))]))
    loop = [rr(Q, CNAME, 5, b"\x01b\xc0\x0c"), rr(b"\xc0\x24", CNAME, 5, b"\xc0\x0c")]
    write("a_cname_loop", answer("a.test", A, loop))
    many = [rr(Q, A, 1, ip4("10.0.0.%d" % i)) for i in range(40)]
    write("a_many_records", answer("big.test", A, many))
    write("a_truncated_tc", answer("big.test", A, [], flags=0x8380))
    write("a_bad_forward_pointer", answer("a.test", A, [rr(b"\xc0\x40", A, 1, ip4("10.0.0.1"))]))
    write("a_bad_self_pointer", answer("a.test", A, [rr(b"\xc0\x18", A, 1, ip4("10.0.0.1"))]))
    write("a_bad_rdlength", answer("a.test", A, [rr(Q, A, 1, b"\x0a\x00\x00")]))
    write("a_bad_count", answer("a.test", A, [rr(Q, A, 1, ip4("10.0.0.1"))], an=2))
    write("a_bad_cname_rdata", answer("a.test", A, [rr(Q, CNAME, 1, b"\x01b\x00junk")]))
    write("a_bad_not_response", answer("a.test", A, [], flags=0x0100))


def capture():
    """Answers of a real server: dnsmasq on 127.0.0.1, asked the queries below."""
    exe = shutil.which("dnsmasq")
    if not exe:
        sys.exit("--capture needs dnsmasq (Debian: dnsmasq-base)")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    tmp = tempfile.mkdtemp()
    hosts = os.path.join(tmp, "hosts")
    with open(hosts, "w") as f:
        f.write("192.0.2.10 web.awf.test\n2001:db8::10 web.awf.test\n")
    p = subprocess.Popen([exe, "--keep-in-foreground", "--no-resolv", "--no-hosts",
                          "--addn-hosts=" + hosts, "--listen-address=127.0.0.1",
                          "--bind-interfaces", "--port=%d" % port, "--user=" + os.environ.get("USER", "root"),
                          "--pid-file=", "--cname=www.awf.test,web.awf.test",
                          "--cname=alias.awf.test,www.awf.test",
                          "--txt-record=txt.awf.test,hello", "--local=/awf.test/"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(2)
        asks = [("real_a", "web.awf.test", A, False), ("real_aaaa", "web.awf.test", AAAA, True),
                ("real_cname_chain", "alias.awf.test", A, False),
                ("real_cname_aaaa", "www.awf.test", AAAA, True),
                ("real_nxdomain", "missing.awf.test", A, False),
                ("real_nodata", "web.awf.test", HTTPS, False)]
        for fname, n, t, edns in asks:
            q = query(n, t, qid=0x4242, edns=edns)
            for _ in range(50):  # until dnsmasq listens
                try:
                    c.sendto(q, ("127.0.0.1", port))
                    write(fname, c.recvfrom(4096)[0])
                    break
                except (ConnectionRefusedError, socket.timeout):
                    time.sleep(0.1)
            else:
                sys.exit("dnsmasq did not answer " + n)
    finally:
        p.terminate()
        p.wait()
        shutil.rmtree(tmp)


os.makedirs(corpus, exist_ok=True)
hand_made()
if "--capture" in sys.argv:
    capture()
