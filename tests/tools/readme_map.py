#!/usr/bin/env python3
"""Checks the code maps in READMEs: every `file.c:function` a README names (in backticks,
optionally with "()") must be a file that exists and defines that function, so a map cannot
point at code that moved or was renamed.

A path is read relative to the README's folder first, then to the repository root
(`forwarder.c:on_query` in dns/README.md, or `proxy/conn.c:proxy_conn_close` anywhere). A .c file
must define the function (its name and parameter list at the start of a line, followed by a
body); a .h file must declare it (or define it as a macro). Several names may share one file:
`resolver.c:lookup_start/on_answer`.

Usage: readme_map.py [--root DIR] README...   (default root: two folders above this script)
Exit 0 when every reference holds; 1 with one line per broken one (README:LINE) on stderr;
2 when a README names no reference at all (a map that lost its references is a broken map)."""
import argparse
import os
import re
import sys

REF = re.compile(r"`([A-Za-z0-9_./-]+\.[ch]):([A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)(?:\(\))?`")


def strip_comments(text):
    """The C text with comments and string literals blanked (line breaks kept)."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', blank, text, flags=re.S)


def defines(text, name, header):
    code = strip_comments(text)
    if header:
        return re.search(r"\b%s\b" % re.escape(name), code) is not None
    for m in re.finditer(r"^[A-Za-z_][^;{}()\n]*?\b%s\s*\(" % re.escape(name), code, re.M):
        # the parameter list, then a body: "{" before any ";"
        depth, i = 1, m.end()
        while i < len(code) and depth:
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        rest = code[i:].lstrip()
        if rest.startswith("{"):
            return True
    return False


def check(readme, root):
    errors, count = [], 0
    here = os.path.dirname(os.path.abspath(readme))
    with open(readme, encoding="utf-8") as f:
        lines = f.read().splitlines()
    cache = {}
    for n, line in enumerate(lines, 1):
        for m in REF.finditer(line):
            path, names = m.group(1), m.group(2).split("/")
            count += 1
            full = next((p for p in (os.path.join(here, path), os.path.join(root, path))
                         if os.path.isfile(p)), None)
            if full is None:
                errors.append(f"{readme}:{n}: {path}: no such file")
                continue
            if full not in cache:
                with open(full, encoding="utf-8", errors="replace") as src:
                    cache[full] = src.read()
            for name in names:
                if not defines(cache[full], name, path.endswith(".h")):
                    what = "declares" if path.endswith(".h") else "defines"
                    errors.append(f"{readme}:{n}: {path} {what} no {name}()")
    return errors, count


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="check file:function references in READMEs")
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(here)))
    ap.add_argument("readmes", nargs="+")
    a = ap.parse_args()
    rc = 0
    for r in a.readmes:
        errors, count = check(r, a.root)
        for e in errors:
            print(e, file=sys.stderr)
        if errors:
            rc = 1
        elif count == 0:
            print(f"{r}: names no file:function (its map is missing)", file=sys.stderr)
            rc = rc or 2
        else:
            print(f"{r}: {count} references, all found")
    return rc


if __name__ == "__main__":
    sys.exit(main())
