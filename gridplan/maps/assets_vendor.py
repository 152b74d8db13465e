"""The vendored Leaflet files: what is shipped in the wheel, its checksums, and how to refresh it.

The maps inline Leaflet and four plugins (:data:`gridplan.maps.assets.BUNDLES`).  Those files are
committed under ``gridplan/maps/assets/vendor/<npm package>/…`` with the package's licence, and
``vendor/MANIFEST.json`` lists every file with its package, version and SHA-256, so a wheel
publishes maps with no npm, no network and no build hook.

Refreshing (a maintainer's step, after changing the pins in ``gridplan/maps/assets/package.json``)::

    npm ci --prefix gridplan/maps/assets --ignore-scripts
    python -m gridplan.maps.assets_vendor gridplan/maps/assets/node_modules

which copies exactly the files the bundles read (JS, CSS, the images their CSS refers to and each
package's licence) and rewrites the manifest.  :func:`verify` is what the tests run.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from gridplan.maps.assets import ASSET_DIR, BUNDLES

__all__ = ["MANIFEST", "VENDOR_DIR", "needed_files", "refresh", "verify"]

#: Folder of the vendored files (one sub-folder per npm package, its layout kept).
VENDOR_DIR = ASSET_DIR / "vendor"
MANIFEST = VENDOR_DIR / "MANIFEST.json"

_LICENCE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "license.txt", "MIT-LICENCE.txt", "LICENCE")
_URL_RE = re.compile(r"url\(\s*['\"]?([^'\")]+?)['\"]?\s*\)")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def needed_files(root: Path) -> list[str]:
    """Paths (relative to *root*, a ``node_modules`` or ``vendor`` folder) the bundles read.

    The JS and CSS of every bundle, and the images their CSS's ``url()`` refer to.
    """
    out: list[str] = []
    for bundle in BUNDLES.values():
        out += list(bundle.js) + list(bundle.css)
        for css in bundle.css:
            text = (root / css).read_text(encoding="utf-8")
            for ref in _URL_RE.findall(text):
                if ref.startswith(("#", "data:")):
                    continue
                target = (root / css).parent / ref
                out.append(target.resolve().relative_to(root.resolve()).as_posix())
    return sorted(set(out))


def _package(root: Path, name: str) -> dict[str, Any]:
    meta = json.loads((root / name / "package.json").read_text(encoding="utf-8"))
    licences = [f"{name}/{n}" for n in _LICENCE_NAMES if (root / name / n).is_file()]
    if not licences:
        raise FileNotFoundError(f"{root / name}: no licence file; refusing to vendor it without one")
    return {"version": meta["version"], "license": meta.get("license", ""), "licence_files": licences}


def refresh(node_modules: Path, dest: Path = VENDOR_DIR) -> dict[str, Any]:
    """Copy the needed files (+ licences) from *node_modules* into *dest* and write the manifest."""
    files = needed_files(node_modules)
    packages = {f.split("/", 1)[0] for f in files}
    meta = {name: _package(node_modules, name) for name in sorted(packages)}
    if dest.exists():
        shutil.rmtree(dest)
    entries = []
    for rel in sorted(set(files) | {lic for m in meta.values() for lic in m["licence_files"]}):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(node_modules / rel, target)
        name = rel.split("/", 1)[0]
        entries.append(
            {"path": rel, "name": name, "version": meta[name]["version"], "sha256": _sha256(target)}
        )
    manifest = {
        "comment": "Written by python -m gridplan.maps.assets_vendor; do not edit by hand.",
        "packages": meta,
        "files": entries,
    }
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def verify(dest: Path = VENDOR_DIR) -> list[str]:
    """Problems with the vendored files: missing, changed (checksum) or unlisted; ``[]`` when sound."""
    if not (dest / "MANIFEST.json").is_file():
        return [f"{dest / 'MANIFEST.json'} is missing"]
    manifest = json.loads((dest / "MANIFEST.json").read_text(encoding="utf-8"))
    problems = []
    listed = set()
    for entry in manifest["files"]:
        path = dest / entry["path"]
        listed.add(entry["path"])
        if not path.is_file():
            problems.append(f"{entry['path']}: missing")
        elif _sha256(path) != entry["sha256"]:
            problems.append(f"{entry['path']}: checksum differs from MANIFEST.json")
    on_disk = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()} - {"MANIFEST.json"}
    problems += [f"{p}: not in MANIFEST.json" for p in sorted(on_disk - listed)]
    return problems


if __name__ == "__main__":  # pragma: no cover - maintainer's refresh step
    if len(sys.argv) != 2:
        sys.exit("usage: python -m gridplan.maps.assets_vendor NODE_MODULES_DIR")
    result = refresh(Path(sys.argv[1]))
    print(f"vendored {len(result['files'])} files of {len(result['packages'])} packages into {VENDOR_DIR}")
