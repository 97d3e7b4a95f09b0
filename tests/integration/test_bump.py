"""ssl-bump (HTTPS inspection): curl trusting the per-run CA (awf-proxy ca new) through the
proxy to local TLS upstreams whose own test CA is given with --ca-file. Allowed paths pass,
other paths of the same host get 403 over TLS, names not allowed are refused, an untrusted or
wrong-name upstream gets 503, a splice leaves the origin's certificate, each request is logged
with its full https:// URL (README "HTTPS inspection")."""

import os
import re
import signal
import socket
import ssl
import subprocess
import unittest

import awf
from awf import ALLOWED, OTHER, pattern


class BumpTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=True)
        self.upstream_ca, _ = awf.certs()  # the upstream's own (self-signed) certificate
        self.cadir = os.path.join(self.tmp, "ca")
        r = self.cli("ca", "new", "--days", "1", "--out", self.cadir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.ca = os.path.join(self.cadir, "ca.pem")
        self.ca_key = os.path.join(self.cadir, "ca-key.pem")
        self.base = "https://%s:%d" % (ALLOWED, self.up.https)

    def bump_proxy(self, *extra, names=(ALLOWED,), ca_file=True, hosts=None,
                   listen="127.0.0.1:0"):
        args = awf.allow_loopback_args(*names, ports=[self.up.https])
        args += ["--ssl-bump", "--ca-cert", self.ca, "--ca-key", self.ca_key]
        if ca_file:
            args += ["--ca-file", self.upstream_ca]
        return self.proxy(*(args + list(extra)), hosts=hosts, listen=listen)

    def get(self, px, url, *args):
        return self.curl(url, "--cacert", self.ca, *args, proxy=px)

    def test_ca_new_key_mode(self):
        self.assertEqual(os.stat(self.ca_key).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(self.ca).st_mode & 0o777, 0o644)
        r = self.cli("ca", "new", "--out", self.cadir)  # never over an existing key
        self.assertEqual(r.returncode, 1)
        self.assertIn("ca-key.pem: File exists", r.stderr)

    def test_allowed_path_and_denied_path(self):
        px = self.bump_proxy("--allow-urls", self.base + "/small*," + self.base + "/echo/*")
        r = self.get(px, self.base + "/small")
        self.assertEqual((r.rc, r.code), (0, 200), r)
        self.assertEqual(r.body, pattern(100))
        r = self.get(px, self.base + "/echo/x?q=1")
        self.assertEqual((r.rc, r.code), (0, 200), r)
        self.assertIn('"target": "/echo/x?q=1"', r.body.decode())
        r = self.get(px, self.base + "/bytes/10")
        self.assertEqual((r.rc, r.code), (0, 403), r)
        self.assertIn("ERR_ACCESS_DENIED", r.header("X-Squid-Error"))
        lines = px.wait_log(6)
        self.assertEqual(len(lines), 6, lines)
        reqs = [l for l in lines if " CONNECT " not in l]
        self.assertEqual(len(reqs), 3, lines)
        self.assertRegex(reqs[0], r" GET 200 TCP_MISS:HIER_DIRECT %s/small " % re.escape(self.base))
        self.assertRegex(reqs[1], r" GET 200 TCP_MISS:HIER_DIRECT %s/echo/x\?" % re.escape(self.base))
        self.assertRegex(reqs[2], r" GET 403 TCP_DENIED:HIER_NONE %s/bytes/10 " % re.escape(self.base))
        for l in lines:
            if " CONNECT " in l:
                self.assertRegex(l, r" CONNECT 200 TCP_TUNNEL:HIER_NONE %s:%d " % (ALLOWED, self.up.https))

    def test_keep_alive_inside_bump(self):
        px = self.bump_proxy()
        rc, res, err = awf.curl_multi(self, [self.base + "/small", self.base + "/chunked/999",
                                             self.base + "/bytes/300000"], "--cacert", self.ca,
                                      proxy=px)
        self.assertEqual(rc, 0, err)
        self.assertEqual([x[0] for x in res], [200, 200, 200])
        self.assertEqual(res[0][2], pattern(100))
        self.assertEqual(res[1][2], pattern(999))
        self.assertEqual(res[2][2], pattern(300000))
        self.assertEqual(sum(x[1] for x in res), 1, res)  # one connection for all three
        lines = px.wait_log(4)
        self.assertEqual(sum(1 for l in lines if " GET 200 " in l), 3, lines)

    def test_minted_certificate(self):
        px = self.bump_proxy()
        with socket.create_connection(("127.0.0.1", px.port), awf.WAIT) as s:
            s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: x\r\n\r\n" % (ALLOWED.encode(),
                                                                      self.up.https))
            self.assertIn(b" 200 ", s.recv(4096))
            ctx = ssl.create_default_context(cafile=self.ca)
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            with ctx.wrap_socket(s, server_hostname=ALLOWED) as t:
                self.assertEqual(t.selected_alpn_protocol(), "http/1.1")
                cert = t.getpeercert()
                self.assertEqual(cert["subjectAltName"], (("DNS", ALLOWED),))
                issuer = dict(x[0] for x in cert["issuer"])
                self.assertIn("awf-proxy per-run CA", issuer["commonName"])

    def test_domain_not_allowed(self):
        px = self.bump_proxy()
        r = self.get(px, "https://%s:%d/small" % (OTHER, self.up.https))
        self.assertNotEqual(r.rc, 0)
        self.assertEqual(r.connect_code, 403, r)
        (e,) = px.entries(1)
        self.assertEqual((e["method"], e["status"], e["tag"]), ("CONNECT", 403, "TCP_DENIED"))

    def test_intercepted_domain_not_allowed_terminated(self):
        # Intercepted TLS with bumping on: a ClientHello naming a host not allowed is closed
        # (no certificate minted for it, nothing dialled), logged TCP_DENIED.
        px = self.bump_proxy(listen="127.0.0.1:0=%d" % self.up.https)
        to = "%s:%d:127.0.0.1:%d" % (OTHER, self.up.https, px.port)
        r = self.curl("https://%s:%d/small" % (OTHER, self.up.https), "--cacert", self.ca,
                      "--connect-to", to)
        self.assertNotEqual(r.rc, 0, r)
        (e,) = px.entries(1)
        self.assertEqual((e["status"], e["tag"]), (403, "TCP_DENIED"))

    def test_untrusted_upstream(self):
        px = self.bump_proxy(ca_file=False)
        r = self.get(px, self.base + "/small")
        self.assertEqual((r.rc, r.code), (0, 503), r)
        self.assertIn("ERR_SECURE_CONNECT_FAIL", r.header("X-Squid-Error"))
        self.assertIn(b"self-signed certificate", r.body)
        lines = [l for l in px.wait_log(2) if " GET " in l]
        self.assertRegex(lines[0], r" GET 503 TCP_MISS:HIER_DIRECT %s/small " % re.escape(self.base))

    def test_wrong_name_upstream(self):
        wrong = "wrong.test"  # resolves to the upstream, whose certificate does not name it
        px = self.bump_proxy(names=(wrong,), hosts={wrong: "127.0.0.1"})
        r = self.get(px, "https://%s:%d/small" % (wrong, self.up.https))
        self.assertEqual((r.rc, r.code), (0, 503), r)
        self.assertIn(b"hostname mismatch", r.body)

    def test_intercepted_tls_bumped(self):
        # Raw TLS straight to the listener, as a DNAT delivers it; the listener's =PORT says
        # which port it was headed to.
        px = self.bump_proxy("--allow-urls", self.base + "/small",
                             listen="127.0.0.1:0=%d" % self.up.https)
        to = "%s:%d:127.0.0.1:%d" % (ALLOWED, self.up.https, px.port)
        r = self.curl(self.base + "/small", "--cacert", self.ca, "--connect-to", to)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        self.assertEqual(r.body, pattern(100))
        r = self.curl(self.base + "/bytes/1", "--cacert", self.ca, "--connect-to", to)
        self.assertEqual((r.rc, r.code), (0, 403), r)
        lines = px.wait_log(4)
        self.assertEqual(len(lines), 4, lines)
        self.assertTrue(any(" GET 200 TCP_MISS:HIER_DIRECT %s/small " % self.base in l
                            for l in lines), lines)

    def test_bump_through_parent(self):
        # A parent (cache_peer, YAML parent): each bumped request asks the parent for a tunnel
        # to the origin (CONNECT), then TLS to the origin through it, verified as direct;
        # verified connections through it are reused. The parent is a second awf-proxy.
        parent = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.https]))
        px = self.bump_proxy("--allow-urls", self.base + "/small", "--set",
                             "parent=127.0.0.1:%d" % parent.port)
        rc, res, err = awf.curl_multi(self, [self.base + "/small", self.base + "/small",
                                             self.base + "/bytes/1"], "--cacert", self.ca,
                                      proxy=px)
        self.assertEqual(rc, 0, err)
        self.assertEqual([x[0] for x in res], [200, 200, 403])
        self.assertEqual(res[0][2], pattern(100))
        lines = px.wait_log(4)
        gets = [l for l in lines if " GET 200 " in l]
        self.assertEqual(len(gets), 2, lines)
        for l in gets:
            self.assertIn(" GET 200 TCP_MISS:FIRSTUP_PARENT %s/small " % self.base, l)
        self.assertTrue(any(" GET 403 TCP_DENIED:HIER_NONE %s/bytes/1 " % self.base in l
                            for l in lines), lines)
        # One tunnel through the parent: the second request reused the verified connection,
        # and the denied one never reached it. The tunnel is logged when it closes: the child
        # holds it in its pool until it stops.
        px.stop()
        (pl,) = parent.wait_log(1)
        self.assertIn(" CONNECT 200 TCP_TUNNEL:HIER_DIRECT %s:%d " % (ALLOWED, self.up.https), pl)

    def test_bump_through_parent_untrusted_origin(self):
        # Through the parent the origin's certificate is still what is verified: 503.
        parent = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.https]))
        px = self.bump_proxy("--set", "parent=127.0.0.1:%d" % parent.port, ca_file=False)
        r = self.get(px, self.base + "/small")
        self.assertEqual((r.rc, r.code), (0, 503), r)
        self.assertIn(b"self-signed certificate", r.body)

    def test_ca_reload_on_sighup(self):
        # SIGHUP reads the CA files again: new connections get leaves of the new CA (the cache
        # of the old one's is flushed, so even a name seen before is minted again); a CA that
        # cannot be loaded is reported with its file and the running one kept.
        d = os.path.join(self.tmp, "live")
        os.makedirs(d)
        live, live_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca-key.pem")
        for src, dst in ((self.ca, live), (self.ca_key, live_key)):
            with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
        px = self.proxy(*(awf.allow_loopback_args(ALLOWED, ports=[self.up.https]) +
                          ["--ssl-bump", "--ca-cert", live, "--ca-key", live_key,
                           "--ca-file", self.upstream_ca]))
        url = self.base + "/small"
        self.assertEqual(self.curl(url, "--cacert", self.ca, proxy=px).code, 200)
        new_dir = os.path.join(self.tmp, "ca2")
        self.assertEqual(self.cli("ca", "new", "--out", new_dir).returncode, 0)
        new_ca = os.path.join(new_dir, "ca.pem")
        for src, dst in ((new_ca, live), (os.path.join(new_dir, "ca-key.pem"), live_key)):
            with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
        start = len(px.lines_err)
        px.p.send_signal(signal.SIGHUP)
        self.assertIsNotNone(px.wait_line("CA reloaded from " + re.escape(live), start=start),
                             px.stderr)
        self.assertIsNotNone(px.wait_line("policy reloaded", start=start), px.stderr)
        r = self.curl(url, "--cacert", new_ca, proxy=px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        r = self.curl(url, "--cacert", self.ca, proxy=px)  # the old CA's leaf is gone
        self.assertNotEqual(r.rc, 0, r)
        # A bad CA: reported with its path, the new CA keeps serving, the proxy too.
        with open(live, "w") as f:
            f.write("not a certificate\n")
        start = len(px.lines_err)
        px.p.send_signal(signal.SIGHUP)
        m = px.wait_line("the running CA is kept", start=start)
        self.assertIsNotNone(m, px.stderr)
        self.assertIn(live, m.string)
        r = self.curl(url, "--cacert", new_ca, proxy=px)
        self.assertEqual((r.rc, r.code), (0, 200), r)

    def test_splice_list_keeps_origin_certificate(self):
        # ssl_bump.splice (--ssl-bump-splice): a pinned client of a listed host sees the origin's
        # own certificate with bumping on; other hosts are still bumped. YAML and flag alike.
        pinned = OTHER  # the origin's certificate names it
        hosts = {ALLOWED: "127.0.0.1", pinned: "127.0.0.1"}
        pol = self.write("splice.yml", "version: 1\nssl_bump:\n  splice: [%s]\n" % pinned)
        for how in (["--ssl-bump-splice", "*.x.test," + pinned], ["--policy", pol]):
            with self.subTest(how=how[0]):
                px = self.bump_proxy(*how, names=(ALLOWED, pinned), hosts=hosts)
                url = "https://%s:%d/small" % (pinned, self.up.https)
                r = self.curl(url, "--cacert", self.upstream_ca, proxy=px)
                self.assertEqual((r.rc, r.code), (0, 200), r)
                self.assertEqual(r.body, pattern(100))
                r = self.get(px, url)  # trusting only the per-run CA: no minted leaf here
                self.assertNotEqual(r.rc, 0, r)
                r = self.get(px, self.base + "/small")  # not listed: bumped
                self.assertEqual((r.rc, r.code), (0, 200), r)
                lines = px.wait_log(5)
                self.assertTrue(any(" CONNECT 200 TCP_TUNNEL:HIER_DIRECT %s:%d " % (
                    pinned, self.up.https) in l for l in lines), lines)
                self.assertTrue(any(" GET 200 TCP_MISS:HIER_DIRECT %s/small " % self.base in l
                                    for l in lines), lines)
                px.stop()

    def test_splice_list_needs_bump(self):
        r = self.cli("check", *awf.allow_loopback_args(ALLOWED), "--ssl-bump-splice", ALLOWED)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("ssl_bump.splice", r.stderr)
        self.assertIn("needs ssl-bump", r.stderr)
        r = self.cli("check", *awf.allow_loopback_args(ALLOWED), "--ssl-bump-splice", "bad name!")
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("--ssl-bump-splice", r.stderr)

    def test_splice_without_bump_keeps_origin_certificate(self):
        # ssl-bump off: the tunnel is spliced, the client sees the origin's own certificate.
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.https]))
        r = self.curl(self.base + "/small", "--cacert", self.upstream_ca, proxy=px)
        self.assertEqual((r.rc, r.code), (0, 200), r)


    def test_awf_squid_conf(self):
        # AWF's ssl-bump squid.conf shape: peek, splice a list, stare, bump the allowed
        # domains, terminate the rest; url_regex rules for the allowed paths.
        https = self.up.https
        conf = self.write("squid.conf", SQUID_CONF % {
            "ca": self.ca, "key": self.ca_key, "port": https,
            "url": re.escape("https://%s:%d/small" % (ALLOWED, https))})
        px = self.proxy("--squid-conf", conf, "--allow-ranges", "127.0.0.0/8", "--ca-file",
                        self.upstream_ca, listen="127.0.0.1:0",
                        hosts={ALLOWED: "127.0.0.1", OTHER: "127.0.0.1",
                               "terminated.test": "127.0.0.1"})
        self.assertIn("sslcrtd_program not needed", px.stderr)
        r = self.get(px, self.base + "/small")
        self.assertEqual((r.rc, r.code), (0, 200), r)
        r = self.get(px, self.base + "/bytes/10")
        self.assertEqual((r.rc, r.code), (0, 403), r)
        # Spliced: the client sees the origin's own certificate (it trusts only that one).
        r = self.curl("https://%s:%d/small" % (OTHER, https), "--cacert", self.upstream_ca,
                      proxy=px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        # Allowed by http_access but by no bump or splice rule: terminated with an alert.
        r = self.get(px, "https://terminated.test:%d/small" % https)
        self.assertNotEqual(r.rc, 0)
        self.assertEqual(r.connect_code, 200, r)
        lines = px.wait_log(6)
        self.assertTrue(any(" CONNECT 403 TCP_DENIED:HIER_NONE terminated.test:%d " % https in l
                            for l in lines), lines)
        self.assertTrue(any(" CONNECT 200 TCP_TUNNEL:HIER_DIRECT %s:%d " % (OTHER, https) in l
                            for l in lines), lines)


SQUID_CONF = """
http_port 3128 ssl-bump cert=%(ca)s key=%(key)s generate-host-certificates=on dynamic_cert_mem_cache_size=16MB options=NO_SSLv3,NO_TLSv1,NO_TLSv1_1
sslcrtd_program /usr/lib/squid/security_file_certgen -s /var/spool/squid_ssl_db -M 16MB
sslcrtd_children 5
acl allowed_domains dstdomain .allowed.test
acl splice_domains dstdomain other.test
acl any_tls dstdomain .terminated.test .allowed.test .other.test
acl step1 at_step SslBump1
acl step2 at_step SslBump2
acl step3 at_step SslBump3
acl Safe_ports port %(port)d
acl CONNECT method CONNECT
acl allowed_url_0 url_regex ^%(url)s$
ssl_bump peek step1
ssl_bump splice splice_domains
ssl_bump stare step2
ssl_bump bump allowed_domains
ssl_bump terminate all
http_access deny !Safe_ports
http_access allow CONNECT any_tls
http_access allow allowed_url_0
http_access deny all
"""


if __name__ == "__main__":
    unittest.main()
