#!/usr/bin/env python3
"""Finds call cycles between the files of a module: file A depends on file B when A's object
refers to a symbol B's object defines (a call, or data), read from `nm`. A cycle (A → B → … → A)
means no file of it can be read, tested or changed without the others; the modules keep none.

Usage: callcycles.py [--dir NAME] [--allow A.c:B.c]... [--outside A.c]... FILE...
  FILE       object files (.o) or static libraries (.a, one member per source file)
  --dir      the module's name, for the messages (policy, dns, ...)
  --allow    an edge A -> B left out of the graph (a cycle kept on purpose; say why where used)
  --outside  only these files must be in no cycle: other cycles are printed as notes and do
             not fail (a module on its way out of a cycle keeps what it got out)
  --print    also print every edge

Exit 0 without cycles; 1 with one line per cycle (each as its files, in call order, with one
symbol per step) on stderr; 2 when nm fails or FILE names no object."""
import argparse
import os
import re
import sys

from nmread import nm_symbols


def nm_members(path):
    """{member name: (defined symbols, undefined symbols)} of an object file or an archive."""
    members = {}
    for member, kind, sym in nm_symbols(path, "callcycles"):
        d, u = members.setdefault(re.sub(r"\.c$", "", member), (set(), set()))
        if kind == "U":
            u.add(sym)
        elif kind in "TDBRVWGSiu":
            d.add(sym)
    return members


def graph(members, allow):
    """{file: {file it refers to: a symbol it uses there}}."""
    owner = {}
    for name, (defined, _) in members.items():
        for s in defined:
            owner.setdefault(s, name)
    edges = {n: {} for n in members}
    for name, (_, undefined) in members.items():
        for s in sorted(undefined):
            o = owner.get(s)
            if o and o != name and (name, o) not in allow:
                edges[name].setdefault(o, s)
    return edges


def cycles(edges):
    """The strongly connected components with more than one file (Tarjan), each as one cycle
    through some of its files, found by a walk inside the component."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def one_cycle(edges, comp):
    """A shortest cycle through comp's first file, staying inside comp (breadth first)."""
    start, inside = comp[0], set(comp)
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v]):
            if w not in inside:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def main():
    ap = argparse.ArgumentParser(description="file-level call cycles from nm")
    ap.add_argument("--dir", default="", help="the module's name, for messages")
    ap.add_argument("--allow", action="append", default=[], help="A.c:B.c, an edge left out")
    ap.add_argument("--outside", action="append", default=[], help="A.c, kept out of cycles")
    ap.add_argument("--print", action="store_true", help="print every edge")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    members = {}
    for f in a.files:
        if not os.path.exists(f):
            print(f"callcycles: {f}: no such file", file=sys.stderr)
            return 2
        members.update(nm_members(f))
    if not members:
        print("callcycles: no object files given", file=sys.stderr)
        return 2
    allow = set()
    for e in a.allow:
        x, _, y = e.partition(":")
        allow.add((re.sub(r"\.c$", "", x), re.sub(r"\.c$", "", y)))
    edges = graph(members, allow)
    label = f"{a.dir}/" if a.dir else ""
    if a.print:
        for v in sorted(edges):
            for w, s in sorted(edges[v].items()):
                print(f"{label}{v}.c -> {label}{w}.c ({s})")
    found = cycles(edges)
    outside = {re.sub(r"\.c$", "", x) for x in a.outside}
    for x in sorted(outside - set(members)):
        print(f"callcycles: --outside {x}.c: no such file among the objects", file=sys.stderr)
        return 2
    if outside:
        for comp in [c for c in found if not outside & set(c)]:
            print(f"callcycles: note: a cycle among {', '.join(f'{label}{c}.c' for c in comp)}"
                  " (not checked)")
        found = [c for c in found if outside & set(c)]
    for comp in found:
        path = one_cycle(edges, comp)
        steps = " -> ".join(
            f"{label}{path[i]}.c" + (f" ({edges[path[i]][path[i + 1]]})" if i + 1 < len(path) else "")
            for i in range(len(path)))
        others = ", ".join(f"{label}{c}.c" for c in comp)
        print(f"callcycles: cycle {steps}; all of {others} depend on each other", file=sys.stderr)
    if not found:
        what = f"no cycle through {', '.join(sorted(f'{x}.c' for x in outside))}" if outside \
            else "no cycle"
        print(f"callcycles: {len(members)} files of {a.dir or 'the objects'}, {what}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
