#!/usr/bin/env python3
"""The import graph of a crate's `src/`, file by file, and its circles.

    python3 .ci/imports.py src emulator/src          # check: exit 1 on a circle
    python3 .ci/imports.py --report src              # also list every edge

An edge `a.rs -> b.rs` means a path in `a.rs` (`use crate::…`, `super::…`,
`self::…`, or `crate::…` written inline) names an item defined in `b.rs`.
Paths are followed through re-exports (`pub use x::Y` in a `mod.rs`) to the
file that defines the item, so a module's `mod.rs` re-exporting its
children is not a circle with them. A `mod.rs` that only declares and
re-exports its children has no edges of its own beyond those re-exports.
Items of `#[cfg(test)]` modules count too: tests import downward as well.

An import through the crate root (`crate::Thing` where `Thing` is a
re-export in `lib.rs`) fails too: modules name items by their home.

A circle is a strongly connected component of two or more files. The layer
rule (no arrow running up) is the same test at the level of the crate's
top-level modules: their graph must have no circle either; `--layers`
prints it in order, lowest first.

Written for this repository's code (rustfmt'd, no macros that make
modules); it reads Rust with regular expressions, not a parser.
"""

import os
import re
import sys
from collections import defaultdict

MOD_DECL = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;", re.M)
USE = re.compile(r"^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M | re.S)
INLINE = re.compile(r"(?<![A-Za-z0-9_:])((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'b?r#*"(?:[^"\\]|\\.)*"#*', '""', text)
    text = re.sub(r'b?"(?:[^"\\]|\\.)*"', '""', text)
    return text


INLINE_MOD = re.compile(r"\bmod\s+[A-Za-z_][A-Za-z0-9_]*\s*\{")


def inline_spans(text):
    """Where each inline `mod name { … }` starts and ends."""
    spans = []
    for m in INLINE_MOD.finditer(text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        spans.append((m.start(), i))
    return spans


def expand(tree):
    """`a::{b, c::{d, e as f}, self}` -> [[a,b], [a,c,d], [a,c,e], [a]]"""
    tree = re.sub(r"\s+", " ", tree).strip()
    out = []

    def go(prefix, t):
        t = t.strip()
        i = t.find("{")
        if i < 0:
            t = t.split(" as ")[0].strip()
            parts = [p.strip() for p in t.split("::") if p.strip()]
            if parts and parts[-1] == "self":
                parts = parts[:-1]
            out.append(prefix + parts)
            return
        head = [p.strip() for p in t[:i].split("::") if p.strip()]
        body = t[i + 1 : t.rfind("}")]
        depth, start, items = 0, 0, []
        for j, ch in enumerate(body):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(body[start:j])
                start = j + 1
        items.append(body[start:])
        for item in items:
            if item.strip():
                go(prefix + head, item)

    go([], tree)
    return out


class Crate:
    def __init__(self, root):
        self.root = root
        self.files = {}  # module path tuple -> file
        self.text = {}
        for dirpath, _, names in os.walk(root):
            for name in names:
                if not name.endswith(".rs"):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root)
                if rel.startswith("bin" + os.sep):
                    continue
                parts = rel[:-3].split(os.sep)
                if parts[-1] in ("mod", "lib", "main"):
                    parts = parts[:-1]
                self.files[tuple(parts)] = rel
                with open(full, encoding="utf-8") as f:
                    self.text[rel] = strip(f.read())
        self.by_file = {v: k for k, v in self.files.items()}
        self.mods = {rel: set(MOD_DECL.findall(t)) for rel, t in self.text.items()}
        self.spans = {rel: inline_spans(t) for rel, t in self.text.items()}
        # re-exports: name -> the absolute module path it stands for
        self.reexports = defaultdict(dict)
        for rel, t in self.text.items():
            for m in USE.finditer(t):
                if self.depth(rel, m.start()):
                    continue
                for path in expand(m.group(2)):
                    absolute = self.absolute(rel, path)
                    if absolute is None:
                        continue
                    name = path[-1] if path else None
                    if name and name != "*" and m.group(1):
                        self.reexports[rel][name] = absolute

    def depth(self, rel, pos):
        """How many inline modules of `rel` enclose `pos`."""
        return sum(1 for a, b in self.spans[rel] if a < pos < b)

    def absolute(self, rel, path, depth=0):
        """A path as written in `rel` (inside `depth` inline modules), as an
        absolute module path, or None (extern)."""
        here = list(self.by_file[rel])
        if not path:
            return None
        if path[0] == "crate":
            return path[1:]
        if path[0] == "self":
            return here + path[1:] if depth == 0 else None
        if path[0] == "super":
            base = here
            while path and path[0] == "super" and depth > 0:
                depth -= 1
                path = path[1:]
            if not path:
                return base
            while path and path[0] == "super":
                base = base[:-1]
                path = path[1:]
            return base + path
        # `use child::X` in a module file: a child module of this one
        if path[0] in self.mods.get(rel, ()):
            return here + path
        return None

    def resolve(self, path, seen=None):
        """The file that defines the item named by an absolute path."""
        seen = seen or set()
        key = tuple(path)
        if key in seen:
            return None
        seen.add(key)
        # longest module prefix that is a file
        for cut in range(len(path), -1, -1):
            mod = tuple(path[:cut])
            if mod in self.files:
                rel = self.files[mod]
                rest = path[cut:]
                if not rest:
                    return rel
                name = rest[0]
                if name in self.reexports[rel]:
                    target = self.reexports[rel][name] + list(rest[1:])
                    return self.resolve(target, seen) or rel
                return rel
        return None

    def paths(self, rel):
        """Every path written in `rel` (in `use` lines and inline), with
        how many inline modules enclose it."""
        t = self.text[rel]
        found = []
        for m in USE.finditer(t):
            d = self.depth(rel, m.start())
            found += [(p, d) for p in expand(m.group(2))]
        for m in INLINE.finditer(t):
            found.append((m.group(1).split("::"), self.depth(rel, m.start())))
        return found

    def through_root(self):
        """Paths in other files that name an item by its re-export at the
        crate root (`crate::Thing`) instead of its home module."""
        root = next((r for r in self.text if self.by_file[r] == ()), None)
        found = []
        for rel in self.text:
            if rel == root:
                continue
            for path, d in self.paths(rel):
                absolute = self.absolute(rel, path, d)
                if absolute and absolute[0] in self.reexports.get(root, {}):
                    found.append(f"{rel}: crate::{absolute[0]}")
        return sorted(set(found))

    def edges(self):
        out = defaultdict(set)
        for rel in self.text:
            for path, d in self.paths(rel):
                absolute = self.absolute(rel, path, d)
                if absolute is None:
                    continue
                if path and path[-1] == "*":
                    absolute = absolute[:-1]
                target = self.resolve(absolute)
                if target and target != rel:
                    out[rel].add(target)
        return out


def sccs(nodes, edges):
    index, low, stack, on, result, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
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
            result.append(comp)

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return result


def top(rel):
    part = rel.split(os.sep)[0]
    return part[:-3] if part.endswith(".rs") else part


def main(argv):
    report = "--report" in argv
    layers = "--layers" in argv
    roots = [a for a in argv if not a.startswith("--")]
    failed = False
    for root in roots:
        crate = Crate(root)
        edges = crate.edges()
        nodes = set(crate.text)
        circles = [sorted(c) for c in sccs(nodes, edges) if len(c) > 1]
        # the top-level modules' graph (lib.rs is the root: it may name anything)
        top_edges = defaultdict(set)
        for a, bs in edges.items():
            for b in bs:
                ta, tb = top(a), top(b)
                if ta != tb and ta != "lib":
                    top_edges[ta].add(tb)
        top_nodes = {top(r) for r in nodes} - {"lib"}
        top_circles = [sorted(c) for c in sccs(top_nodes, top_edges) if len(c) > 1]
        n_edges = sum(len(v) for v in edges.values())
        # arrows that tie a circle of modules, and arrows into lib.rs: the
        # ones that run up (no layer order can put both ends right)
        tied = {m: i for i, c in enumerate(top_circles) for m in c}
        up = sorted(
            f"{a} -> {b}" for a, bs in edges.items() for b in bs
            if b == "lib.rs" or (top(a) != top(b) and top(a) in tied and tied.get(top(b)) == tied[top(a)])
        )
        rooted = crate.through_root()
        print(f"{root}: {len(nodes)} files, {n_edges} file edges, "
              f"{len(circles)} file circle(s), {len(top_circles)} module circle(s), "
              f"{len(up)} file edge(s) tying module circles or into lib.rs, "
              f"{len(rooted)} import(s) through the crate root")
        for r in rooted:
            print(f"  through the crate root: {r}")
        for c in circles:
            print(f"  file circle ({len(c)}): {', '.join(c)}")
        for c in top_circles:
            print(f"  module circle ({len(c)}): {', '.join(c)}")
            for a in c:
                for b in sorted(top_edges[a]):
                    if b in c:
                        why = sorted(
                            f"{x} -> {y}" for x, ys in edges.items() for y in ys
                            if top(x) == a and top(y) == b
                        )
                        print(f"    {a} -> {b}: {'; '.join(why[:4])}{' …' if len(why) > 4 else ''}")
        if report:
            for a in sorted(edges):
                for b in sorted(edges[a]):
                    print(f"  {a} -> {b}")
        if layers and not top_circles:
            order, done = [], set()

            def place(n):
                if n in done:
                    return
                done.add(n)
                for m in sorted(top_edges.get(n, ())):
                    place(m)
                order.append(n)

            for n in sorted(top_nodes):
                place(n)
            print("  layers, lowest first: " + " < ".join(order))
        failed |= bool(circles or top_circles or rooted)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
