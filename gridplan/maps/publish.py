"""Publishing maps into a folder leaders open: atomic files, safe slugs, ``index.html``, manifest.

What this module owns
---------------------
* :func:`render_html`: a folium map (or ``DualMap``) → one self-contained HTML string (assets
  inlined by :func:`gridplan.maps.assets.make_offline`), refused if any remote reference remains
  outside the inlined libraries except the configured tile URL.
* :func:`publish_map`: writes ``<slug>.html``, ``manifest.json`` and ``index.html`` in
  ``out_dir``.  Every file is written to a temp name in the same folder, flushed and fsynced, then
  renamed over the old one (``os.replace`` is atomic on POSIX), and the whole update runs under an
  exclusive ``fcntl`` lock on ``out_dir/.publish.lock``: concurrent publishers queue, a reader
  sees either the old or the new version of each file, and a process killed mid-publish leaves the
  previous map, manifest and index intact (stale temp files are removed by the next publish).
* :func:`slugify`: file names are ``[a-z0-9-]`` only; titles with Chinese characters get a short
  hash suffix (``基础网格`` → ``map-…``), so no title can produce ``../`` or overwrite ``index``.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import logging
import os
import re
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gridplan._atomic import clean_stale, fsync_dir, staged_bytes
from gridplan._clock import iso_utc
from gridplan.errors import InputError
from gridplan.maps.assets import AssetError, make_offline
from gridplan.maps.escape import escape_html

logger = logging.getLogger(__name__)

__all__ = [
    "MANIFEST_NAME",
    "check_offline",
    "publish_map",
    "read_manifest",
    "render_html",
    "slugify",
]

MANIFEST_NAME = "manifest.json"
INDEX_NAME = "index.html"
LOCK_NAME = ".publish.lock"
_SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_RESERVED = {"index", "manifest"}
_ASSET_BLOCK_RE = re.compile(
    r"<(script|style) data-gridplan-asset=\"[a-z]+\">.*?</\1>", re.DOTALL | re.IGNORECASE
)
_URL_RE = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"'<>)]*|https?://[^\s\"'<>)]+")


def slugify(title: str, *, max_len: int = 48) -> str:
    """Return a safe file-name stem for *title*: lower-case ASCII letters, digits and ``-``.

    Non-ASCII titles (Chinese) keep their ASCII part, if any, plus an 8-hex-digit hash of the
    whole title so that different titles give different slugs.

    Examples
    --------
    >>> slugify("Base grids 2025")
    'base-grids-2025'
    >>> slugify("../../etc/passwd")
    'etc-passwd'
    >>> s = slugify("基础网格"); s.startswith("map-") and len(s) == 12
    True

    """
    norm = unicodedata.normalize("NFKD", str(title))
    ascii_part = norm.encode("ascii", "ignore").decode("ascii").lower()
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_part).strip("-")[:max_len].strip("-")
    has_other = any(ord(ch) > 127 and (ch.isalnum()) for ch in norm)
    if has_other or not stem:
        digest = hashlib.sha256(str(title).encode("utf-8")).hexdigest()[:8]
        stem = f"{stem or 'map'}-{digest}"
    if stem in _RESERVED:
        stem = f"{stem}-map"
    return stem


def _check_slug(slug: str) -> str:
    if not isinstance(slug, str) or not _SLUG_RE.match(slug) or "--" in slug or slug in _RESERVED:
        raise InputError(
            f"map name {slug!r} is not a safe slug: use 1-64 characters a-z, 0-9 and single '-', "
            "not starting or ending with '-' (and not 'index' or 'manifest')",
            field="slug",
        )
    return slug


def check_offline(html: str, *, allowed_prefixes: Sequence[str] = ()) -> list[str]:
    """Remote URLs in *html* outside the inlined library blocks that are not allowed.

    Examples
    --------
    >>> check_offline('<script src="https://cdn.example.com/x.js"></script>')
    ['https://cdn.example.com/x.js']
    >>> check_offline('<p>ok</p>')
    []

    """
    rest = _ASSET_BLOCK_RE.sub("", html)
    bad = []
    for m in _URL_RE.finditer(rest):
        url = m.group(0)
        if any(url.startswith(p) for p in allowed_prefixes if p):
            continue
        bad.append(url)
    return bad


def render_html(m: Any, *, tile_url: str | None = None) -> str:
    """Render a folium ``Map``/``DualMap``/``Figure`` to self-contained, offline HTML.

    Parameters
    ----------
    m
        The map (its root figure is changed in place to use inlined assets).
    tile_url
        The configured tile URL template, the only remote reference allowed in the page.

    Raises
    ------
    AssetError
        When the assets are not installed, or a remote reference remains in the page.

    """
    root = m.get_root()
    make_offline(root)
    html = root.render()
    allowed = [tile_url.split("{", 1)[0]] if tile_url else []
    bad = check_offline(html, allowed_prefixes=allowed)
    if bad:
        raise AssetError(f"map would load remote resources: {', '.join(sorted(set(bad))[:5])}")
    return html


@contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    with open(out_dir / LOCK_NAME, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """Read the manifest of a maps folder (``{"maps": []}`` when there is none yet).

    A manifest that cannot be parsed raises :class:`InputError` (it is only ever replaced
    atomically, so this means someone edited it by hand).
    """
    path = Path(out_dir) / MANIFEST_NAME
    if not path.exists():
        return {"version": 1, "maps": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"manifest is not valid JSON ({exc}); delete it to rebuild", file=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("maps"), list):
        raise InputError("manifest has no 'maps' list; delete it to rebuild", file=path)
    return data


def publish_map(  # noqa: PLR0913 - the index entry's fields, all keyword-only
    m: Any,
    out_dir: str | Path,
    *,
    title: str,
    slug: str | None = None,
    plan_id: str = "",
    data_date: str = "",
    summary: str = "",
    tile_url: str | None = None,
    html: str | None = None,
) -> Path:
    """Publish one map into *out_dir*: ``<slug>.html``, then ``manifest.json`` and ``index.html``.

    Parameters
    ----------
    m
        folium ``Map`` or ``DualMap`` (ignored when *html* is given).
    out_dir
        The maps folder (created if missing).
    title
        Title shown in the index (escaped).
    slug
        File-name stem (``[a-z0-9-]``); default :func:`slugify` of *title*.  Publishing again with
        the same slug replaces that map.
    plan_id, data_date, summary
        Plan version, date of the data (ISO 8601) and a one-line summary for the index.
    tile_url
        Configured tile URL template (the only remote reference allowed).
    html
        Already rendered HTML (from :func:`render_html`), to skip rendering.

    Returns
    -------
    Path
        Path of the published HTML file.

    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = _check_slug(slug) if slug is not None else slugify(title)
    body = (html if html is not None else render_html(m, tile_url=tile_url)).encode("utf-8")
    fname = f"{stem}.html"
    entry = {
        "slug": stem,
        "file": fname,
        "title": str(title),
        "plan_id": str(plan_id or ""),
        "data_date": str(data_date or ""),
        "summary": str(summary or ""),
        "published_at": iso_utc(),
        "bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    with _locked(out):
        for stale_of in (fname, MANIFEST_NAME, INDEX_NAME):  # safe: we hold the lock
            clean_stale(out / stale_of)
        manifest = read_manifest(out)
        maps = [e for e in manifest["maps"] if isinstance(e, dict) and e.get("slug") != stem]
        maps = [e for e in maps if (out / str(e.get("file", ""))).exists()]
        maps.append(entry)
        maps.sort(key=lambda e: (str(e.get("title", "")), str(e.get("slug", ""))))
        manifest = {"version": 1, "updated_at": entry["published_at"], "maps": maps}
        tmp_map = staged_bytes(body, out / fname)
        tmp_manifest = tmp_index = None
        try:
            tmp_manifest = staged_bytes(
                json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"), out / MANIFEST_NAME
            )
            tmp_index = staged_bytes(index_html(maps).encode("utf-8"), out / INDEX_NAME)
            os.replace(tmp_map, out / fname)
            os.replace(tmp_manifest, out / MANIFEST_NAME)
            os.replace(tmp_index, out / INDEX_NAME)
        finally:
            for t in (tmp_map, tmp_manifest, tmp_index):
                if t is not None:
                    t.unlink(missing_ok=True)
        fsync_dir(out)
    logger.info("published %s (%.1f MB) into %s", fname, len(body) / 1e6, out)
    return out / fname


_BEIJING = datetime.timezone(datetime.timedelta(hours=8), "北京时间")
_PLAN_ID = re.compile(r"(\d{8}T\d{6})-([0-9a-f]{8})")


def beijing_time(iso: str) -> str:
    """Return an ISO 8601 UTC time as Beijing time for people (``2026-12-07 20:10``); other text as is.

    Examples
    --------
    >>> beijing_time("2026-12-07T12:10:20Z"), beijing_time("")
    ('2026-12-07 20:10', '')

    """
    try:
        t = datetime.datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    return t.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M")


def plan_label(plan_id: str) -> str:
    """Return a plan version as a person names it: when it was made (Beijing time) and its short id.

    Examples
    --------
    >>> plan_label("20261207T121020-70a9b39d"), plan_label("my-plan")
    ('2026-12-07 20:10 版（70a9b39d）', 'my-plan')

    """
    m = _PLAN_ID.fullmatch(str(plan_id))
    if m is None:
        return str(plan_id)
    made = datetime.datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=datetime.UTC)
    return f"{beijing_time(made.isoformat())} 版（{m.group(2)}）"


def index_html(maps: Sequence[dict[str, Any]]) -> str:
    """Build the ``index.html`` listing *maps* (manifest entries); values escaped, no remote assets."""
    rows = []
    for e in maps:
        size = f"{int(e.get('bytes', 0)) / 1e6:.1f} MB"
        href = str(e.get("file", ""))
        plan_id = str(e.get("plan_id", ""))
        if not re.fullmatch(r"[a-z0-9-]+\.html", href):
            continue
        rows.append(
            "<tr>"
            f'<td><a href="{escape_html(href)}">{escape_html(e.get("title", ""))}</a></td>'
            f"<td>{escape_html(e.get('summary', ''))}</td>"
            f'<td title="{escape_html(plan_id)}">{escape_html(plan_label(plan_id))}</td>'
            f"<td>{escape_html(e.get('data_date', ''))}</td>"
            f"<td>{escape_html(beijing_time(e.get('published_at', '')))}</td>"
            f"<td>{escape_html(size)}</td>"
            "</tr>"
        )
    body = "\n".join(rows) or '<tr><td colspan="6">暂无地图</td></tr>'
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>网格地图目录</title>
<style>
body{{font:14px/1.5 'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:24px;color:#222}}
h1{{font-size:20px}} table{{border-collapse:collapse;width:100%}}
th,td{{border-bottom:1px solid #ddd;padding:6px 10px;text-align:left;vertical-align:top}}
th{{background:#f3f5f8}} a{{color:#1f4e79;font-weight:bold}} code{{font-size:12px}}
</style>
</head>
<body>
<h1>网格地图目录</h1>
<p>以下地图可离线打开（不需要互联网）。</p>
<table id="maps">
<thead><tr><th>地图</th><th>说明</th><th>方案版本</th><th>数据日期</th>
<th>发布时间（北京时间）</th><th>大小</th></tr></thead>
<tbody>
{body}
</tbody>
</table>
</body>
</html>
"""
