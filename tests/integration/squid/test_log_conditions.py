"""squid.conf `access_log PATH FORMAT [!]ACL...`: an output logs only the transactions its ACLs
all match (method, client address, destination), each output on its own; unconditional
outputs log everything. Loopback only."""

import os
import time
import unittest

import awf
from awf import ALLOWED, OTHER

CONF = """http_port 127.0.0.1:0
acl CONNECT method CONNECT
acl lo src 127.0.0.1
acl allowed dstdomain .%(allowed)s
acl ports port %(http)d %(https)d
access_log %(tmp)s/tunnels.log squid CONNECT
access_log stdio:%(tmp)s/not-lo.log squid !lo
access_log %(tmp)s/denied-other.log squid !allowed
access_log %(tmp)s/all.log squid
http_access deny !ports
http_access allow allowed
http_access deny all
"""


class LogConditionTest(awf.TestCase):
    def read(self, name, n):
        lines = []
        for _ in range(100):
            try:
                with open(os.path.join(self.tmp, name)) as f:
                    lines = [l for l in f.read().split("\n") if l]
            except FileNotFoundError:
                lines = []
            if len(lines) >= n:
                break
            time.sleep(0.05)
        return lines

    def test_each_output_has_its_condition(self):
        up = self.upstream(tls=True)
        conf = self.write("squid.conf", CONF % {"allowed": ALLOWED, "http": up.http,
                                                "https": up.https, "tmp": self.tmp})
        px = self.proxy("--squid-conf", conf, "--allow-ranges", "127.0.0.0/8", listen=(),
                        logs=())
        self.assertEqual(self.curl("http://%s:%d/small" % (ALLOWED, up.http),
                                   proxy=px.url).code, 200)
        r = self.curl("https://%s:%d/small" % (ALLOWED, up.https), "-k", proxy=px.url)
        self.assertEqual(r.code, 200)
        self.assertEqual(self.curl("http://%s:%d/small" % (OTHER, up.http),
                                   proxy=px.url).code, 403)
        self.assertEqual(px.stop(), 0)
        methods = lambda name, n: [l.split()[5] for l in self.read(name, n)]  # noqa: E731
        self.assertEqual(methods("all.log", 3), ["GET", "CONNECT", "GET"])
        self.assertEqual(methods("tunnels.log", 1), ["CONNECT"])
        self.assertEqual(self.read("not-lo.log", 0), [])
        (line,) = self.read("denied-other.log", 1)
        self.assertIn("TCP_DENIED/403", line)
        self.assertIn("http://%s:%d/small" % (OTHER, up.http), line)


if __name__ == "__main__":
    unittest.main(verbosity=2)
