"""Parsers for the access-log formats of SPEC §6, checking each line's shape strictly and
returning its fields, and assert_fields() to compare them with what a test did."""

import json
import re
import time

FD_RE = re.compile(
    r"^(?P<ts>\d{10}\.\d{3}) (?P<client>\S+):(?P<client_port>\d+|-) (?P<host>\S+) "
    r"(?P<server>\S+):(?P<server_port>\d+|-) (?P<version>\d\.\d) (?P<method>[A-Z_]+|-) "
    r"(?P<status>\d{1,3}) (?P<tag>[A-Z_]+):(?P<hier>[A-Z_]+) (?P<url>\S+) "
    r"\"(?P<ua>[^\"]*)\"$"
)

SQUID_RE = re.compile(
    r"^(?P<ts>\d{10}\.\d{3}) (?P<elapsed> {0,5}\d+) (?P<client>\S+) (?P<tag>[A-Z_]+)/"
    r"(?P<status>\d{3}) (?P<bytes>\d+) (?P<method>[A-Z_]+|-) (?P<url>\S+) (?P<user>\S+) "
    r"(?P<hier>[A-Z_]+)/(?P<server>\S+) (?P<mime>\S+)$"
)

JSONL_KEYS = ["_schema", "timestamp", "event", "client", "host", "dest", "method", "status",
              "decision", "url"]


def _check_ts(tc, ts, line):
    # Sanity, not timing: the stamp is today's clock, not garbage or the start of the epoch.
    tc.assertLess(abs(float(ts) - time.time()), 3600, "timestamp far from now: " + line)


def parse_fd(tc, line):
    m = FD_RE.match(line)
    tc.assertIsNotNone(m, "not a firewall_detailed line: %r" % line)
    e = m.groupdict()
    _check_ts(tc, e["ts"], line)
    e["status"] = int(e["status"])
    e["line"] = line
    return e


def parse_squid(tc, line):
    m = SQUID_RE.match(line)
    tc.assertIsNotNone(m, "not a squid native line: %r" % line)
    e = m.groupdict()
    _check_ts(tc, e["ts"], line)
    tc.assertEqual(len(e["elapsed"]), 6, "%6tr is right-aligned to 6: " + line)
    e["elapsed"] = int(e["elapsed"])
    e["status"] = int(e["status"])
    e["bytes"] = int(e["bytes"])
    e["line"] = line
    return e


def parse_jsonl(tc, line):
    try:
        doc = json.loads(line)
    except ValueError:
        tc.fail("not a JSON line: %r" % line)
    tc.assertEqual(list(doc.keys()), JSONL_KEYS, "audit_jsonl keys and order: " + line)
    tc.assertRegex(doc["_schema"], r"^audit/v\S+$")
    tc.assertRegex(doc["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    tc.assertEqual(doc["event"], "http_access")
    tc.assertIsInstance(doc["status"], int)
    doc["line"] = line
    return doc


PARSERS = {"firewall_detailed": parse_fd, "squid": parse_squid, "audit_jsonl": parse_jsonl}


def assert_fields(tc, entry, **want):
    """Each keyword is a field that must equal the value (or, for a tuple, be one of them; for a
    compiled regex, match it)."""
    for k, v in want.items():
        got = entry[k]
        if isinstance(v, tuple):
            tc.assertIn(got, v, "field %s in %s" % (k, entry["line"]))
        elif isinstance(v, re.Pattern):
            tc.assertRegex(str(got), v, "field %s in %s" % (k, entry["line"]))
        else:
            tc.assertEqual(got, v, "field %s in %s" % (k, entry["line"]))


