"""`awf-proxy explain`: every row of SPEC §3's matching rules, through the real command line."""

import json
import os
import re
import unittest

import awf


class ExplainTest(awf.TestCase):
    def explain(self, target, *args):
        """Runs explain; returns (exit code, {verdict, reason, rule, why}) after checking the
        four-line shape for exit codes 0 and 1."""
        # --no-resolve: these rows are about matching names; no lookup leaves the machine.
        p = self.cli("explain", "--no-resolve", *args, target)
        if p.returncode == 2:
            return 2, {"stderr": p.stderr}
        lines = p.stdout.rstrip("\n").split("\n")
        self.assertGreaterEqual(len(lines), 4, "explain prints 4 lines first: %r %s" % (
            p.stdout, p.stderr))
        self.assertIn(lines[0], ("allow", "deny"))
        self.assertRegex(lines[1], r"^reason: [a-z_]+$")
        self.assertRegex(lines[2], r"^rule: (none|.+ \(.+\))$")
        self.assertRegex(lines[3], r"^why: \S.*$")
        self.assertEqual(p.returncode, 0 if lines[0] == "allow" else 1, p.stdout)
        return p.returncode, {
            "verdict": lines[0],
            "reason": lines[1][len("reason: "):],
            "rule": lines[2][len("rule: "):],
            "why": lines[3][len("why: "):],
        }

    def assertDecision(self, target, args, verdict, reason, rule=None):
        rc, d = self.explain(target, *args)
        self.assertNotEqual(rc, 2, "%s %s: %s" % (target, args, d))
        self.assertEqual((d["verdict"], d["reason"]), (verdict, reason),
                         "%s with %s: %s" % (target, args, d))
        if rule is not None:
            self.assertEqual(d["rule"], rule, "%s with %s" % (target, args))
        return d

    def allow(self, target, *args, reason="allowed", rule=None):
        return self.assertDecision(target, args, "allow", reason, rule)

    def deny(self, target, *args, reason, rule=None):
        return self.assertDecision(target, args, "deny", reason, rule)

    # ---- the matching table

    def test_plain_domain_matches_label_aligned_suffix(self):
        a = ["--allow-domains", "github.com"]
        for host in ("github.com", "api.github.com", "a.b.github.com"):
            for target in ("http://%s/" % host, "https://%s/x" % host, "%s:443" % host):
                self.allow(target, *a, rule="github.com (--allow-domains)")
        for host in ("mygithub.com", "github.com.evil.com", "github.co", "hub.com"):
            self.deny("http://%s/" % host, *a, reason="not_allowed", rule="none")
            self.deny("%s:443" % host, *a, reason="not_allowed")

    def test_star_label(self):
        a = ["--allow-domains", "*.github.com"]
        for host in ("api.github.com", "sub.api.github.com"):
            self.allow("https://%s/" % host, *a, rule="*.github.com (--allow-domains)")
        self.deny("https://github.com/", *a, reason="not_allowed")
        self.deny("https://evilgithub.com/", *a, reason="not_allowed")

    def test_star_inside_a_label(self):
        a = ["--allow-domains", "api-*.example.com"]
        for host in ("api-v1.example.com", "api-.example.com"):
            self.allow("http://%s/" % host, *a, rule="api-*.example.com (--allow-domains)")
        self.deny("http://api.example.com/", *a, reason="not_allowed")
        self.deny("http://xapi-v1.example.com.evil/", *a, reason="not_allowed")

    def test_ip_entry(self):
        a = ["--allow-domains", "172.30.0.1"]
        self.allow("http://172.30.0.1/", *a, reason="allowed_ip")
        self.allow("172.30.0.1:443", *a, reason="allowed_ip")
        self.deny("http://172.30.0.2/", *a, reason="raw_ip")
        self.deny("http://github.com/", *a, reason="not_allowed")

    def test_raw_ip_targets_denied_in_every_spelling(self):
        a = ["--allow-domains", "github.com"]
        for host in ("127.0.0.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1", "0x7f000001",
                     "[::1]", "[::ffff:127.0.0.1]", "140.82.114.22"):
            with self.subTest(host=host):
                self.deny("http://%s/" % host, *a, reason="raw_ip")
                self.deny("https://%s/" % host, *a, reason="raw_ip")

    def test_allowlisted_ip_in_other_spellings(self):
        a = ["--allow-domains", "127.0.0.1"]
        for host in ("127.0.0.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1"):
            with self.subTest(host=host):
                self.allow("http://%s/" % host, *a, reason="allowed_ip")
        self.deny("http://127.0.0.2/", *a, reason="raw_ip")

    def test_allowlisted_ipv6(self):
        a = ["--allow-domains", "::1"]
        self.allow("http://[::1]/", *a, reason="allowed_ip")
        self.allow("[::1]:443", *a, reason="allowed_ip")
        self.deny("http://[::2]/", *a, reason="raw_ip")

    def test_scopes(self):
        a = ["--allow-domains", "http://plain.test,https://secure.test,both.test"]
        self.allow("http://plain.test/", *a, rule="http://plain.test (--allow-domains)")
        self.allow("http://www.plain.test/", *a)
        self.deny("https://plain.test/", *a, reason="wrong_scope")
        self.deny("plain.test:443", *a, reason="wrong_scope")
        self.allow("https://secure.test/", *a, rule="https://secure.test (--allow-domains)")
        self.allow("secure.test:443", *a)
        self.deny("http://secure.test/", *a, reason="wrong_scope")
        for target in ("http://both.test/", "https://both.test/", "both.test:443"):
            self.allow(target, *a)

    def test_trailing_slash_on_entry(self):
        a = ["--allow-domains", "https://secure.test/"]
        self.allow("https://secure.test/", *a)
        self.deny("http://secure.test/", *a, reason="wrong_scope")

    def test_blocklist_wins(self):
        a = ["--allow-domains", "github.com", "--block-domains", "gist.github.com"]
        self.deny("https://gist.github.com/", *a, reason="blocked",
                  rule="gist.github.com (--block-domains)")
        self.deny("https://raw.gist.github.com/", *a, reason="blocked")
        self.allow("https://api.github.com/", *a)
        self.allow("https://github.com/", *a)

    def test_block_prefix_ignored(self):
        a = ["--allow-domains", "github.com", "--block-domains", "http://gist.github.com"]
        self.deny("http://gist.github.com/", *a, reason="blocked")
        self.deny("https://gist.github.com/", *a, reason="blocked")
        self.deny("gist.github.com:443", *a, reason="blocked")

    def test_block_wildcard(self):
        a = ["--allow-domains", "example.com", "--block-domains", "*.ads.example.com"]
        self.deny("http://x.ads.example.com/", *a, reason="blocked")
        self.allow("http://ads.example.com/", *a)

    def test_empty_allowlist_denies_everything(self):
        a = ["--block-domains", "evil.test"]
        for target in ("https://github.com/", "http://example.com/", "github.com:443"):
            self.deny(target, *a, reason="empty_allow", rule="none")

    def test_ports(self):
        a = ["--allow-domains", "github.com"]
        self.allow("http://github.com:80/", *a)
        self.allow("https://github.com:443/", *a)
        self.allow("github.com:443", *a)
        self.allow("github.com:80", *a)  # CONNECT to 80: clients do it
        self.deny("http://github.com:8080/", *a, reason="port")
        self.deny("github.com:22", *a, reason="port")
        self.deny("https://github.com:8443/", *a, reason="port")

    def test_extra_ports(self):
        a = ["--allow-domains", "github.com", "--allow-ports", "8080,9000-9100"]
        for port in (8080, 9000, 9050, 9100):
            self.allow("http://github.com:%d/" % port, *a)
            self.allow("github.com:%d" % port, *a)
        for port in (8081, 8999, 9101, 22):
            self.deny("http://github.com:%d/" % port, *a, reason="port")

    def test_port_checked_for_denied_host_too(self):
        # A host that is not allowed is denied whatever the port; both reasons are fair.
        _, d = self.explain("http://evil.test:8080/", "--allow-domains", "github.com")
        self.assertEqual(d["verdict"], "deny")
        self.assertIn(d["reason"], ("not_allowed", "port"))

    def test_case_and_trailing_dots(self):
        a = ["--allow-domains", "GitHub.COM."]
        for host in ("github.com", "GITHUB.COM", "Api.GitHub.Com", "github.com.",
                     "API.GITHUB.COM."):
            self.allow("https://%s/" % host, *a, rule="GitHub.COM. (--allow-domains)")

    def test_rule_from_list_file_has_position(self):
        path = self.write("allow.txt", "# comment\n\nexample.org,  github.com\n")
        d = self.allow("https://api.github.com/", "--allow-domains-file", path)
        self.assertEqual(d["rule"], "github.com (%s:3:15)" % path)

    def test_rule_from_yaml_has_position(self):
        text, where = awf.policy_yaml(allow=["example.org", "github.com"])
        path = self.write("policy.yaml", text)
        line, col = where["github.com"]
        rc, d = self.explain("https://api.github.com/", "-p", path)
        self.assertEqual(rc, 0, d)
        self.assertRegex(d["rule"], r"^github\.com \(%s:%d:(%d|%d)\)$" % (
            re.escape(path), line, col, col + 1))

    def test_flags_add_to_the_file(self):
        text, _ = awf.policy_yaml(allow=["example.org"])
        path = self.write("policy.yaml", text)
        a = ["-p", path, "--allow-domains", "github.com", "--block-domains", "www.example.org"]
        self.allow("https://example.org/", *a)
        self.allow("https://github.com/", *a)
        self.deny("https://www.example.org/", *a, reason="blocked")

    # ---- the embedded default policy

    def test_default_policy(self):
        self.allow("https://github.com/")
        self.allow("https://api.github.com/")
        self.allow("github.com:443")
        self.deny("http://example.com/", reason="not_allowed")
        self.deny("https://example.com/", reason="not_allowed")

    def test_default_not_used_with_list_flags(self):
        self.deny("https://github.com/", "--allow-domains", "example.com", reason="not_allowed")

    # ---- targets

    def test_bad_targets(self):
        for target in ("", "github.com", "ftp://github.com/", "http://",
                       "github.com:65536", "github.com:x", "http://github.com:99999/"):
            with self.subTest(target=target):
                rc, d = self.explain(target, "--allow-domains", "github.com")
                self.assertEqual(rc, 2, d)

    def test_invalid_host(self):
        rc, d = self.explain("http://exa_mple..com/", "--allow-domains", "github.com")
        self.assertIn(rc, (1, 2), d)
        if rc == 1:
            self.assertIn(d["reason"], ("invalid_host", "not_allowed"))

    def test_invalid_policy_is_exit_2(self):
        p = self.cli("explain", "--allow-domains", "*.*.com", "https://github.com/")
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr, r"^awf-proxy: --allow-domains: \S")



class ExplainJsonTest(awf.TestCase):
    """explain --json: one JSON object with what the text says, for scripts (README "JSON
    output"); the exit code is the text form's."""

    def explain_json(self, *args):
        p = self.cli("explain", "--json", *args)
        self.assertEqual(p.stderr, "")
        d = json.loads(p.stdout)
        self.assertEqual(p.returncode, 0 if d["decision"] == "allow" else 1, d)
        text = self.cli("explain", *args).stdout.split("\n")
        self.assertEqual([d["decision"], "reason: " + d["reason"], "why: " + d["why"]],
                         [text[0], text[1], text[3]])
        return d

    def test_allowed_by_a_file_entry_through_the_hosts_file(self):
        text, where = awf.policy_yaml(allow=["allowed.test"])
        path = self.write("policy.yml", text)
        hosts = self.write("hosts", "127.0.0.1 allowed.test\n169.254.169.254 meta.test\n")
        base = ["-p", path, "--hosts-file", hosts, "--dns-servers",
                "127.0.0.1:%d" % awf.closed_port()]
        d = self.explain_json(*base, "--allow-ranges", "127.0.0.0/8", "https://allowed.test/x")
        line, col = where["allowed.test"]
        self.assertEqual(d["rule"], {"text": "allowed.test", "file": path, "line": line,
                                     "col": col, "flag": None})
        self.assertEqual((d["host"], d["port"], d["traffic"], d["connect"]),
                         ("allowed.test", 443, "tls", False))
        self.assertEqual(d["addresses"], [{"address": "127.0.0.1", "from": "hosts_file",
                                           "dial": True, "denied": None,
                                           "note": "a range the policy opens"}])
        self.assertTrue(d["resolved"])
        self.assertEqual(len(d["stricter_than_squid"]), 1)  # the SNI inside the tunnel
        # A name the policy allows whose only address is the metadata range.
        d = self.explain_json(*base, "--allow-domains", "meta.test", "http://meta.test/")
        self.assertEqual((d["decision"], d["reason"]), ("deny", "address"))
        self.assertEqual(d["rule"]["flag"], "--allow-domains")
        self.assertFalse(d["addresses"][0]["dial"])
        self.assertIn("169.254.0.0/16", d["addresses"][0]["denied"])
        # Denied on the name: nothing resolved, a CONNECT target.
        d = self.explain_json(*base, "evil.test:443")
        self.assertEqual((d["decision"], d["reason"], d["rule"], d["connect"], d["addresses"]),
                         ("deny", "not_allowed", None, True, []))
        self.assertEqual(d["addresses_note"], "not resolved (decided on the name)")

    def test_squid_conf_rule_and_errors(self):
        conf = self.write("squid.conf", "acl ok dstdomain .allowed.test\n"
                          "http_access allow ok\nhttp_access deny all\n")
        d = self.explain_json("--squid-conf", conf, "--no-resolve", "http://a.allowed.test/")
        self.assertEqual(d["rule"], {"text": "http_access allow ok", "file": conf, "line": 2,
                                     "col": None, "flag": None})
        self.assertEqual(d["addresses_note"], "not resolved (--no-resolve)")
        # Bad input is still exit 2 with the message on stderr.
        p = self.cli("explain", "--json", "--allow-domains", "*.*.com", "http://x.test/")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, "")
        self.assertIn("--allow-domains: invalid entry", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
