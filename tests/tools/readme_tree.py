#!/usr/bin/env python3
"""Checks tests/README.md's tables against the tests/ tree, so the list cannot drift:
every test file (test_*.c, test_*.py) has a row of its own, every
other file has a row naming it or a folder above it, and every path a row names exists.

A row names paths in its first cell, in backticks, relative to tests/ (`unit/dns/test_wire.c`,
`fuzz/proxy/http/`); a bare integration file name (`test_check.py`, `squid/test_parent.py`)
is read relative to tests/integration/, as the integration table writes them. A folder row ends
with '/' and covers the data and helpers under it, never a test file. CMakeLists.txt files and
tests/README.md itself need no row.

Usage: readme_tree.py [TESTS_DIR]   (default: the tests/ folder above this script)
Exit 0 when they agree; 1 with one line per difference on stderr."""
import os
import re
import sys

SKIP_DIRS = {"__pycache__"}
TEST_FILE = re.compile(r"^test_.*\.(c|py)$")


def tree(root):
    """Every file under root, as a path relative to it with '/' separators."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS and not x.startswith("."))
        for f in files:
            if f.endswith(".pyc"):
                continue
            out.append(os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/"))
    return sorted(out)


def rows(readme):
    """The paths named in the first cell of every table row, with the row's line number."""
    named = []
    with open(readme, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.startswith("|") or re.match(r"^\|[-| :]+\|\s*$", line):
                continue
            cell = line.split("|")[1]
            # `tools/in-root.sh [--net] DIR CMD`: a command line names its first word
            for tok in (t.split()[0] for t in re.findall(r"`([^`]+)`", cell) if t.strip()):
                if "/" in tok or re.search(r"\.(c|h|py|sh|md)$", tok):
                    named.append((n, tok))
    return named


def resolve(root, tok):
    """The path tok names relative to root, or None when it names nothing there."""
    for base in ("", "integration/"):
        p = base + tok
        if os.path.exists(os.path.join(root, p.rstrip("/"))):
            return p
    return None


def check(root):
    errors = []
    readme = os.path.join(root, "README.md")
    files, folders = set(), set()
    for n, tok in rows(readme):
        p = resolve(root, tok)
        if p is None:
            errors.append(f"{readme}:{n}: `{tok}` names nothing under {root}")
        elif p.endswith("/") or os.path.isdir(os.path.join(root, p)):
            folders.add(p.rstrip("/") + "/")
        else:
            files.add(p)
    for f in tree(root):
        if f == "README.md" or os.path.basename(f) == "CMakeLists.txt" or f in files:
            continue
        if TEST_FILE.match(os.path.basename(f)):
            errors.append(f"{readme}: test file {f} has no row of its own")
        elif not any(f.startswith(d) for d in folders):
            errors.append(f"{readme}: {f} has no row (nor has a folder above it)")
    return errors


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(here)
    errors = check(root)
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
