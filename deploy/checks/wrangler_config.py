"""What `wrangler deploy --dry-run` lets through in wrangler.toml, checked against the edge
worker's code (run by `scripts/edge check`, after the dry run):

  bindings  every binding the worker reads (`env.bucket("X")`, `.kv`, `.d1`, `.service`,
            `.durable_object`, `.queue`, `.assets`, `.var`, names read through the `var(env,
            "X")` helper, and every other "CONFAB_*" name it reads) is declared, with the fields
            that binding needs (an R2 binding without its bucket deploys, then fails at the
            first request)
  secrets   names the worker reads with `env.secret("X")` are not in [vars] (a value there is
            committed to the repository); they are set with `wrangler secret put`
  assets    the [assets] the worker reads has its directory, runs the worker first (it sets the
            web client's cache and security headers; assets served before it would have none)
            and leaves not-found handling to it (no index.html under a missing script's name)
  vars      [vars] values are strings (the worker reads them with `env.var`), the preview
            allowlist (tests only) is empty, and CONFAB_MAX_UPLOAD_BYTES is the origin's default
            (confab_shared::files::DEFAULT_MAX_UPLOAD_BYTES), as the comment there asks

wrangler itself reports syntax errors, bad dates and a missing entry point (errors) and unknown
fields (warnings, which `scripts/edge check` turns into failures).
`--self-test` breaks the real config in memory, one way per check, and fails unless each break
is caught. Usage: wrangler_config.py --repo ROOT [--self-test]
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import tomllib
from pathlib import Path

# workers-rs Env method → (wrangler.toml table, key naming the binding, fields it must have)
BINDINGS = {
    "bucket": ("r2_buckets", "binding", ["bucket_name"]),
    "kv": ("kv_namespaces", "binding", ["id"]),
    "d1": ("d1_databases", "binding", ["database_id"]),
    "service": ("services", "binding", ["service"]),
    "queue": ("queues.producers", "binding", ["queue"]),
    "durable_object": ("durable_objects.bindings", "name", ["class_name"]),
}


def used_bindings(code: str) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for method, binding in re.findall(r"\.(bucket|kv|d1|service|queue|durable_object|assets|var|secret)\(\s*\"([^\"]+)\"", code):
        used.setdefault(method, set()).add(binding)
    # Names read through the helper `var(env, "X")`, and every other CONFAB_* literal: vars.
    names = set(re.findall(r"\bvar\(\s*env\s*,\s*\"([A-Z0-9_]+)\"", code))
    names.update(re.findall(r"\"(CONFAB_[A-Z0-9_]+)\"", code))
    used.setdefault("var", set()).update(names - used.get("secret", set()))
    return used


def table(config: dict, dotted: str) -> list[dict]:
    node = config
    for part in dotted.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, list) else []


def rust_const(text: str, name: str) -> int | None:
    m = re.search(rf"const {name}: \w+ = ([0-9_ *+]+);", text)
    if not m:
        return None
    value = 1
    for factor in m.group(1).split("*"):
        value *= int(factor.strip().replace("_", ""))
    return value


def check(config: dict, code: str, origin_max_upload: int | None) -> list[str]:
    out = []
    used = used_bindings(code)
    for method, names in sorted(used.items()):
        for binding in sorted(names):
            if method == "var":
                if binding not in (config.get("vars") or {}):
                    out.append(f"the worker reads the variable {binding}, which [vars] does not declare")
            elif method == "secret":
                if binding in (config.get("vars") or {}):
                    out.append(f"the secret {binding} is in [vars]: set it with `wrangler secret put {binding}` instead")
            elif method == "assets":
                assets = config.get("assets") or {}
                if assets.get("binding") != binding:
                    out.append(f"the worker reads the assets binding {binding}, which [assets] does not declare")
                    continue
                if not assets.get("directory"):
                    out.append("[assets] has no directory")
                if assets.get("run_worker_first") is not True:
                    out.append("[assets] run_worker_first is not true: assets would be served without the worker's cache and security headers")
                if assets.get("not_found_handling", "none") != "none":
                    out.append("[assets] not_found_handling is not none: a missing script would get index.html (the worker handles client routes)")
            else:
                tab, key, needs = BINDINGS[method]
                entry = next((e for e in table(config, tab) if e.get(key) == binding), None)
                if entry is None:
                    out.append(f"the worker reads the {method} binding {binding}, which [[{tab}]] does not declare")
                    continue
                for f in needs:
                    if not entry.get(f):
                        out.append(f"[[{tab}]] {binding} has no {f}")
    for k, v in (config.get("vars") or {}).items():
        if not isinstance(v, str):
            out.append(f"[vars] {k} is a {type(v).__name__}, not a string: `env.var` reads strings only")
    if (config.get("vars") or {}).get("CONFAB_PREVIEW_ALLOWLIST"):
        out.append("[vars] CONFAB_PREVIEW_ALLOWLIST is set: it lifts the preview address policy (tests only)")
    edge_max = (config.get("vars") or {}).get("CONFAB_MAX_UPLOAD_BYTES")
    if edge_max is not None and origin_max_upload is not None and str(edge_max) != str(origin_max_upload):
        out.append(f"[vars] CONFAB_MAX_UPLOAD_BYTES is {edge_max}, the origin's default is {origin_max_upload}: tickets and the edge would disagree")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--config", type=Path, help="default: REPO/wrangler.toml")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    config_path = args.config or args.repo / "wrangler.toml"
    config = tomllib.loads(config_path.read_text())
    code = "\n".join(p.read_text() for p in sorted((args.repo / "edge-worker" / "src").rglob("*.rs")))
    origin_max = rust_const((args.repo / "shared" / "src" / "files.rs").read_text(), "DEFAULT_MAX_UPLOAD_BYTES")

    failures = check(config, code, origin_max)
    for f in failures:
        print(f"FAIL {config_path.name}: {f}")
    used = used_bindings(code)
    print(f"wrangler config: bindings read by the worker: {', '.join(f'{m} {sorted(n)}' for m, n in sorted(used.items()))}; {len(failures)} failures")
    if not args.self_test:
        return 1 if failures else 0

    def without_r2_bucket(c):
        c["r2_buckets"][0].pop("bucket_name")

    def renamed_r2(c):
        c["r2_buckets"][0]["binding"] = "FILES"

    breaks = [
        ("an R2 binding renamed", renamed_r2, code),
        ("an R2 binding without its bucket", without_r2_bucket, code),
        ("a var the worker reads removed", lambda c: c["vars"].pop("CONFAB_JWT_PUBLIC_KEY"), code),
        ("a var given as a number", lambda c: c["vars"].update(CONFAB_MAX_UPLOAD_BYTES=26214400), code),
        ("the edge's upload limit not the origin's", lambda c: c["vars"].update(CONFAB_MAX_UPLOAD_BYTES="1048576"), code),
        ("a preview allowlist in production", lambda c: c["vars"].update(CONFAB_PREVIEW_ALLOWLIST="127.0.0.1:8080"), code),
        ("code reading a KV namespace not declared", lambda c: None, code + '\nlet kv = env.kv("CACHE")?;'),
        ("code reading static assets not declared", lambda c: c.pop("assets", None), code + '\nlet a = env.assets("ASSETS")?;'),
        ("assets without their directory", lambda c: c["assets"].pop("directory"), code),
        ("assets served before the worker", lambda c: c["assets"].update(run_worker_first=False), code),
        ("assets answering misses with index.html", lambda c: c["assets"].update(not_found_handling="single-page-application"), code),
        ("a var read through the helper removed", lambda c: c["vars"].pop("ORIGIN_URL"), code),
        ("a secret committed in [vars]", lambda c: c["vars"].update(CONFAB_EDGE_SECRET="hunter2"), code),
    ]
    missed = 0
    for what, breaker, broken_code in breaks:
        broken = copy.deepcopy(config)
        breaker(broken)
        found = check(broken, broken_code, origin_max)
        if found:
            print(f"  caught: {what}: {found[0]}")
        else:
            missed += 1
            print(f"FAIL self-test: not caught: {what}")
    print(f"wrangler config self-test: {len(breaks) - missed} passed, {missed} failed")
    return 1 if failures or missed else 0


if __name__ == "__main__":
    sys.exit(main())
