#!/usr/bin/env python3
"""Writes the seed corpus of the HTTP head fuzz target (corpus/, one head per file). Run from
this directory; the files are checked in, so run it only to change the seeds."""

import os

H = "allowed.test"
SEEDS = {
    "get_absolute": "GET http://%s/small?q=1 HTTP/1.1\r\nHost: %s\r\nUser-Agent: curl/8.5.0\r\n"
                    "Accept: */*\r\n\r\n" % (H, H),
    "get_port_fragment": "GET http://%s:8080/a/b#frag HTTP/1.1\r\nHost: %s:8080\r\n\r\n" % (H, H),
    "get_origin": "GET /index.html HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n" % H,
    "get_ipv6": "GET http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
    "get_http10": "GET http://%s/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % H,
    "head": "HEAD http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\n" % (H, H),
    "post_cl": "POST http://%s/echo HTTP/1.1\r\nHost: %s\r\nContent-Length: 5\r\n"
               "Content-Type: text/plain\r\n\r\nhello" % (H, H),
    "post_chunked": "POST http://%s/echo HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n"
                    "\r\n5\r\nhello\r\n0\r\n\r\n" % (H, H),
    "expect": "PUT http://%s/up HTTP/1.1\r\nHost: %s\r\nContent-Length: 3\r\n"
              "Expect: 100-continue\r\n\r\n" % (H, H),
    "hop_by_hop": "GET http://%s/ HTTP/1.1\r\nHost: %s\r\nConnection: close, X-Hop, Content-Length\r\n"
                  "X-Hop: 1\r\nProxy-Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
                  "TE: trailers\r\nTrailer: X-T\r\nProxy-Authorization: Basic eDp5\r\n"
                  "X-Forwarded-For: 10.0.0.1\r\nVia: 1.1 other\r\nUpgrade: h2c\r\n\r\n" % (H, H),
    "websocket": "GET http://%s/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n" % (H, H),
    "connect": "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\nUser-Agent: curl/8.5.0\r\n\r\n" % (H, H),
    "cl_te": "POST http://%s/ HTTP/1.1\r\nHost: %s\r\nContent-Length: 5\r\n"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (H, H),
    "te_gzip": "POST http://%s/ HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: gzip\r\n\r\n" % (H, H),
    "two_hosts": "GET / HTTP/1.1\r\nHost: %s\r\nHost: evil.test\r\n\r\n" % H,
    "host_mismatch": "GET http://%s/ HTTP/1.1\r\nHost: evil.test\r\n\r\n" % H,
    "obs_fold": "GET http://%s/ HTTP/1.1\r\nHost: %s\r\nX-Folded: a\r\n  b\r\n\r\n" % (H, H),
    "userinfo": "GET http://user:pw@%s/ HTTP/1.1\r\nHost: %s\r\n\r\n" % (H, H),
    "bad_host": "GET / HTTP/1.1\r\nHost: bad host\r\n\r\n",
    "many_fields": "GET http://%s/ HTTP/1.1\r\nHost: %s\r\n" % (H, H)
                   + "".join("X-F%d: %d\r\n" % (i, i) for i in range(40)) + "\r\n",
    "options_star": "OPTIONS * HTTP/1.1\r\nHost: %s\r\n\r\n" % H,
    "lf_only": "GET http://%s/ HTTP/1.1\nHost: %s\n\n" % (H, H),
    "leading_crlf": "\r\nGET http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\n" % (H, H),
    "resp_200": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\nok",
    "resp_chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n"
                    "Proxy-Connection: close\r\nUpgrade: h2c\r\n\r\n",
    "resp_100": "HTTP/1.1 100 Continue\r\n\r\n",
    "resp_204": "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    "resp_http10": "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    # llhttp 8 takes "\r" + any byte as a line end; the proxy refuses such heads.
    "resp_bare_cr": "HTTP/1.1 200 OK\rX-Injected: 1\r\nContent-Length: 2\r\n\rXok",
    "req_bare_cr_end": "GET http://%s/ HTTP/1.1\r\nHost: %s\r\n\rX" % (H, H),
}

os.makedirs("corpus", exist_ok=True)
for name, text in SEEDS.items():
    with open(os.path.join("corpus", name), "wb") as f:
        f.write(text.encode())
