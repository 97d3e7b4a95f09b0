#!/usr/bin/env python3
"""Writes the hand-made seeds of corpus/ from the captures in tests/data/clienthello/: the same
ClientHellos cut into several records, one with an ECH extension, one without extensions, and
a few refusals. Run from anywhere; the captures themselves are copied as they are."""

import os
import shutil
import struct

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "..", "..", "..", "data", "clienthello")
corpus = os.path.join(here, "corpus")


def unframe(wire):
    hs, i = b"", 0
    while i + 5 <= len(wire):
        n = struct.unpack(">H", wire[i + 3:i + 5])[0]
        hs += wire[i + 5:i + 5 + n]
        i += 5 + n
    return hs


def frame(hs, size, ver=0x0301):
    return b"".join(struct.pack(">BHH", 22, ver, len(hs[i:i + size])) + hs[i:i + size]
                    for i in range(0, len(hs), size))


def hello(exts, with_exts=True):
    body = b"\x03\x03" + bytes(range(32)) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    if with_exts:
        body += struct.pack(">H", len(exts)) + exts
    return b"\x01" + struct.pack(">I", len(body))[1:] + body


def ext(t, d):
    return struct.pack(">HH", t, len(d)) + d


def sni(name):
    n = name.encode()
    return ext(0, struct.pack(">HBH", len(n) + 3, 0, len(n)) + n)


def write(name, b):
    with open(os.path.join(corpus, name), "wb") as f:
        f.write(b)


os.makedirs(corpus, exist_ok=True)
for f in sorted(os.listdir(data)):
    if f.endswith(".bin"):
        shutil.copy(os.path.join(data, f), corpus)

curl = unframe(open(os.path.join(data, "curl_http2.bin"), "rb").read())
write("split_records_7", frame(curl, 7))
write("split_records_1", frame(curl[:40], 1) + frame(curl[40:], 1000))
write("ech_outer", frame(hello(sni("public.example.test") + ext(0xfe0d, b"\x00\x00\x01\x00\x01\x07"
                                                               + b"\x00\x00\x00\x02\xaa\xbb")), 16384))
write("no_extensions", frame(hello(b"", with_exts=False), 16384))
write("zero_length_exts", frame(hello(ext(0x0a0a, b"") + ext(23, b"") + sni("z.test")), 16384))
write("alpn_psk_last", frame(hello(sni("a.test") + ext(16, b"\x00\x03\x02h2") + ext(41, b"\x00"))
                             , 16384, 0x0303))
write("dup_sni", frame(hello(sni("a.test") + sni("b.test")), 16384))
write("alert_between", frame(curl[:10], 10) + b"\x15\x03\x03\x00\x02\x02\x28" + frame(curl[10:], 16384))
write("too_big", b"\x16\x03\x01\x00\x04\x01\x00\x40\x00")
write("http", b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
write("sslv2", b"\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10")
