#!/usr/bin/env python3
"""Checks the rules of docs/ARCHITECTURE.md that a machine can check.

  python3 scripts/check-architecture.py            # exit 1 and list findings, if any
  python3 scripts/check-architecture.py --report   # also print sizes and the module graph; exit 0

(a) Handlers are thin: no Docker runtime use, no `racer_build`, no `NewDeployment` in
    crates/server/src outside the wiring files (lib.rs, main.rs).
(b) No import circles between the top-level modules of any crate (`crate::a` in module b is an
    edge b -> a, also inside nested `use crate::{a::{..}, c}` groups; a child's `super::` is not;
    `#[cfg(test)]` modules are ignored, inline or in their own file).
(c) crates/server/Cargo.toml has no racer-build dependency.
It also lists the non-test files over 600 lines (a note, not a failure).
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIRING = {"lib.rs", "main.rs"}
FORBIDDEN = [
    (re.compile(r"\bracer_runtime\b"), "uses racer_runtime"),
    (re.compile(r"\bRuntime::"), "uses the Docker runtime"),
    (re.compile(r"\.runtime\s*[.(]"), "calls the runtime"),
    (re.compile(r"\bNewDeployment\b"), "builds a NewDeployment"),
    (re.compile(r"\bracer_build\b"), "uses racer_build"),
]


def strip_tests_and_comments(text):
    """The text without `#[cfg(test)] mod ... { ... }` blocks and without // comments, keeping
    line numbers (removed lines become empty)."""
    lines = text.split("\n")
    out = []
    skip_depth = None
    pending_cfg_test = False
    depth = 0
    for line in lines:
        code = re.sub(r"//.*", "", line)
        stripped = code.strip()
        if skip_depth is not None:
            depth += code.count("{") - code.count("}")
            out.append("")
            if depth <= skip_depth:
                skip_depth = None
            continue
        if stripped.startswith("#[cfg(test)]"):
            pending_cfg_test = True
            out.append("")
            continue
        if pending_cfg_test and re.match(r"(pub(\(crate\))?\s+)?mod\s+\w+", stripped):
            pending_cfg_test = False
            if "{" in code:
                skip_depth = depth
                depth += code.count("{") - code.count("}")
                if depth <= skip_depth:
                    skip_depth = None
            out.append("")
            continue
        pending_cfg_test = False
        depth += code.count("{") - code.count("}")
        out.append(code)
    return "\n".join(out)


def test_only_files(src):
    """Files that are modules declared `#[cfg(test)] mod name;` (and everything under them)."""
    out = set()
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            text = re.sub(r"//.*", "", open(path, encoding="utf-8").read())
            base = dirpath if f in ("lib.rs", "main.rs", "mod.rs") else os.path.join(dirpath, f[:-3])
            for name in re.findall(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text):
                out.add(os.path.join(base, name + ".rs"))
                out.add(os.path.join(base, name))
    return out


def rust_files(src):
    tests = test_only_files(src)
    for dirpath, _, files in os.walk(src):
        for f in files:
            path = os.path.join(dirpath, f)
            if f.endswith(".rs") and not any(path == t or path.startswith(t + os.sep) for t in tests):
                yield path


def brace_group(text, i):
    """The text inside the `{` at `i` and its matching `}`."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return text[i + 1 :]


def group_heads(group):
    """The first segment of each item of a `use` group: `a::{x, y}, b as c, d` -> a, b, d."""
    heads, depth, item = [], 0, ""
    for ch in group + ",":
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            m = re.match(r"\s*(\w+)", item)
            if m:
                heads.append(m.group(1))
            item = ""
            continue
        if depth == 0:
            item += ch
    return heads


def crate_paths(text):
    """The top-level names a file reaches through `crate::` (plain paths and `use` groups)."""
    names = set(re.findall(r"\bcrate::(\w+)", text))
    for m in re.finditer(r"\bcrate::\s*\{", text):
        names.update(group_heads(brace_group(text, m.end() - 1)))
    return names


def check_handlers():
    findings = []
    src = os.path.join(ROOT, "crates/server/src")
    for path in sorted(rust_files(src)):
        rel = os.path.relpath(path, src)
        if rel in WIRING or rel.startswith("bin/"):
            continue
        text = strip_tests_and_comments(open(path, encoding="utf-8").read())
        for n, line in enumerate(text.split("\n"), 1):
            for pat, why in FORBIDDEN:
                if pat.search(line):
                    findings.append(
                        f"crates/server/src/{rel}:{n}: {why}: {line.strip()}"
                    )
    return findings


def top_module(src, path):
    rel = os.path.relpath(path, src).replace(os.sep, "/")
    if rel in ("lib.rs", "main.rs") or rel.startswith("bin/"):
        return None
    first = rel.split("/")[0]
    return first[:-3] if first.endswith(".rs") else first


def module_graph(crate_dir):
    src = os.path.join(crate_dir, "src")
    modules = set()
    for path in rust_files(src):
        m = top_module(src, path)
        if m:
            modules.add(m)
    edges = {m: set() for m in modules}
    for path in rust_files(src):
        m = top_module(src, path)
        if not m:
            continue
        text = strip_tests_and_comments(open(path, encoding="utf-8").read())
        for n in crate_paths(text):
            if n in modules and n != m:
                edges[m].add(n)
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
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
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    report = "--report" in sys.argv
    findings = check_handlers()
    crates = sorted(os.listdir(os.path.join(ROOT, "crates")))
    for c in crates:
        edges = module_graph(os.path.join(ROOT, "crates", c))
        for comp in cycles(edges):
            inner = {m: sorted(edges[m] & set(comp)) for m in comp}
            desc = "; ".join(f"{m} -> {', '.join(t)}" for m, t in inner.items())
            findings.append(f"{c}: import circle between {', '.join(comp)} ({desc})")
        if report:
            print(f"== {c} modules")
            for m in sorted(edges):
                print(f"  {m} -> {', '.join(sorted(edges[m])) or '-'}")
    cargo = open(os.path.join(ROOT, "crates/server/Cargo.toml"), encoding="utf-8").read()
    if re.search(r"^racer-build", cargo, re.M):
        findings.append("crates/server/Cargo.toml depends on racer-build")
    if report:
        print("== non-test files over 600 lines")
        for c in crates:
            for path in sorted(rust_files(os.path.join(ROOT, "crates", c, "src"))):
                text = open(path, encoding="utf-8").read()
                code = strip_tests_and_comments(text)
                n = len([l for l in code.split("\n") if l.strip()])
                total = text.count("\n")
                if total > 600:
                    print(f"  {os.path.relpath(path, ROOT)}: {total} lines ({n} non-blank, non-test)")
    for f in findings:
        print(f)
    if findings and not report:
        print(f"{len(findings)} finding(s); see docs/ARCHITECTURE.md", file=sys.stderr)
        return 1
    if not findings:
        print("architecture: no findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
