#!/usr/bin/env python3
"""The declared MSRV (the workspace's `rust-version`) against the dependency graph a user gets:
every package `telemetry-core` and `telemetry-macros` pull in with all their features (normal
and build dependencies, as Cargo.lock resolves them) must declare a `rust-version` no newer
than ours. Clippy's `incompatible_msrv` lint, on in `cargo clippy`, checks the standard-library
APIs our own code uses against the same version. Exits non-zero listing each offender."""
import json
import subprocess
import sys


def version(text):
    return tuple(int(p) for p in text.split(".")[:3]) + (0,) * (3 - len(text.split(".")[:3]))


meta = json.loads(
    subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"]
    )
)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
roots = [p["id"] for p in meta["packages"] if p["name"] in ("telemetry-core", "telemetry-macros")]
declared = packages[roots[0]]["rust_version"]
seen, stack = set(), list(roots)
while stack:
    node = stack.pop()
    if node in seen:
        continue
    seen.add(node)
    for dep in nodes[node]["deps"]:
        kinds = {k["kind"] for k in dep["dep_kinds"]}
        if kinds & {None, "build"}:
            stack.append(dep["pkg"])
newer = sorted(
    f'{packages[i]["name"]} {packages[i]["version"]} needs Rust {packages[i]["rust_version"]}'
    for i in seen
    if packages[i].get("rust_version") and version(packages[i]["rust_version"]) > version(declared)
)
print(f"msrv: {len(seen)} packages in telemetry-core's graph, declared rust-version {declared}")
if newer:
    print("msrv: dependencies newer than the declared rust-version:\n  " + "\n  ".join(newer))
    sys.exit(1)
