#!/usr/bin/env bash
# Fails when a workspace crate depends on another workspace crate along an edge that the
# architecture (ARCHITECTURE.md, "Crates") does not allow. Reads the manifests only
# (`cargo metadata --no-deps`): no build, no network.
#
# Every kind of dependency is checked against the same list: a dev- or build-dependency may
# point only where a normal one could (downwards), so a test cannot pull a crate upwards either.
# A workspace crate missing from the list is an error too: add its line when adding a crate.
set -euo pipefail
cd "$(dirname "$0")/.."

# The allowed edges: crate, then every workspace crate it may depend on ("-": none).
ALLOWED='
confab         confab-server confab-store confab-core confab-bus confab-worker confab-cache confab-record
confab-server  confab-bus confab-cache confab-worker confab-store confab-core confab-record
confab-worker  confab-store confab-core confab-record
confab-bus     confab-record
confab-cache   confab-record
confab-store   confab-core confab-record
confab-core    -
confab-record  -
'

meta=$(cargo metadata --format-version 1 --no-deps)
printf '%s' "$meta" | ALLOWED="$ALLOWED" python3 -c '
import json, os, sys

allowed = {}
for line in os.environ["ALLOWED"].strip().splitlines():
    crate, *deps = line.split()
    allowed[crate] = {d for d in deps if d != "-"}

meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
crates = {p["name"] for p in meta["packages"] if p["id"] in members}
bad = []
for p in sorted(meta["packages"], key=lambda p: p["name"]):
    if p["id"] not in members:
        continue
    name = p["name"]
    if name not in allowed:
        bad.append(f"{name}: a workspace crate missing from the allowed list in scripts/check-deps.sh")
        continue
    for d in p["dependencies"]:
        dep = d["name"]
        if dep in crates and dep not in allowed[name]:
            kind = {None: "", "dev": " (dev-dependency)", "build": " (build-dependency)"}[d["kind"]]
            bad.append(f"{name} -> {dep}{kind}: not an allowed edge")
if bad:
    print("check-deps: dependency direction violated:", file=sys.stderr)
    for b in bad:
        print(f"  {b}", file=sys.stderr)
    print("allowed (scripts/check-deps.sh, from ARCHITECTURE.md):", file=sys.stderr)
    for c, ds in allowed.items():
        to = ", ".join(sorted(ds)) or "(nothing)"
        print(f"  {c} -> {to}", file=sys.stderr)
    sys.exit(1)
print(f"check-deps: ok ({len(crates)} workspace crates, every edge allowed)")
'
