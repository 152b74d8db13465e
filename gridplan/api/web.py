"""The service's own pages (Chinese first, English second): sign-in and the published maps' home.

Pages are whole HTML strings with inline CSS and no script or remote asset, so they work offline
under the service's Content-Security-Policy.  Every value is escaped with
:func:`gridplan.maps.escape.escape_html`.  :func:`safe_next` keeps a sign-in's ``next`` target on
this server (a path, never ``//host`` or a scheme).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from gridplan.maps.escape import escape_html

__all__ = ["maps_home_page", "newest_first", "safe_next", "signin_page"]

_BEIJING = dt.timezone(dt.timedelta(hours=8))
_ROLE_ZH = {"leader": "领导", "planner": "规划员", "analyst": "分析员", "admin": "管理员"}

_STYLE = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif; margin:0}
body{background:#f4f6f8; color:#1b2733}
header{background:#1f4e79; color:#fff; padding:12px 24px}
header{display:flex; justify-content:space-between; align-items:center}
header h1{font-size:20px; margin:0}
header form{margin:0}
main{max-width:820px; margin:24px auto; padding:0 16px}
.card{background:#fff; border-radius:8px; box-shadow:0 1px 3px rgba(0,0,0,.15)}
.card{padding:20px 24px; margin-bottom:16px}
label{display:block; margin:10px 0 4px}
input[type=text],input[type=password]{width:100%; padding:8px; box-sizing:border-box}
button{background:#1f4e79; color:#fff; border:0; border-radius:4px}
button{padding:8px 18px; font-size:15px; cursor:pointer}
header button{background:#fff; color:#1f4e79}
.en{color:#5b6b7b; font-size:.85em}
.err{color:#b00020; font-weight:bold}
ul.maps{list-style:none; padding:0}
ul.maps li{padding:10px 0; border-bottom:1px solid #e3e8ee}
ul.maps a{font-size:17px; color:#1f4e79; text-decoration:none}
.meta{color:#5b6b7b; font-size:13px}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape_html(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def safe_next(target: str | None, default: str = "/maps/") -> str:
    """Return *target* if it is a path on this server, else *default*.

    >>> safe_next("/maps/base.html"), safe_next("//evil.example/x"), safe_next("https://e.x/")
    ('/maps/base.html', '/maps/', '/maps/')
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def signin_page(*, next_url: str = "/maps/", message: str | None = None) -> str:
    """Build the sign-in page: user name + password, or an API token."""
    err = f'<p class="err" role="alert">{escape_html(message)}</p>' if message else ""
    nxt = escape_html(safe_next(next_url))
    body = f"""<header><h1>网格治理平台 <span class="en">gridplan</span></h1></header>
<main><div class="card"><h2>登录 <span class="en">Sign in</span></h2>{err}
<form method="post" action="/signin" autocomplete="on">
<input type="hidden" name="next" value="{nxt}">
<label for="username">用户名 <span class="en">User name</span></label>
<input type="text" id="username" name="username" autocomplete="username" maxlength="64">
<label for="password">密码 <span class="en">Password</span></label>
<input type="password" id="password" name="password" autocomplete="current-password" maxlength="256">
<p>或 <span class="en">or</span></p>
<label for="token">访问令牌 <span class="en">Access token</span></label>
<input type="password" id="token" name="token" autocomplete="off" maxlength="256">
<p><button type="submit" id="signin">登录 <span class="en">Sign in</span></button></p>
</form></div></main>"""
    return _page("登录 · Sign in — gridplan", body)


def _beijing(iso: str) -> str:
    try:
        when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M") + " 北京时间"


def newest_first(entries: Sequence[Any]) -> list[dict[str, Any]]:
    """Manifest entries that name a file, newest ``published_at`` first.

    >>> [e["slug"] for e in newest_first([{"slug": "a", "file": "a.html", "published_at": "2026-01-01"},
    ...                                   {"slug": "b", "file": "b.html", "published_at": "2026-02-01"}])]
    ['b', 'a']
    """
    good = [e for e in entries if isinstance(e, dict) and str(e.get("file", "")).endswith(".html")]
    return sorted(good, key=lambda e: (str(e.get("published_at", "")), str(e.get("slug", ""))), reverse=True)


def maps_home_page(entries: Sequence[dict[str, Any]], *, user: str, role: str) -> str:
    """Build the maps home page: the published maps, newest first, and a sign-out button."""
    items = []
    for e in newest_first(entries):
        href = "/maps/" + escape_html(str(e["file"]))
        bits = [
            _beijing(str(e.get("published_at", ""))),
            f"方案 plan {escape_html(str(e['plan_id']))}" if e.get("plan_id") else "",
            f"数据日期 data {escape_html(str(e['data_date']))}" if e.get("data_date") else "",
        ]
        summary = f"<div>{escape_html(str(e['summary']))}</div>" if e.get("summary") else ""
        items.append(
            f'<li><a class="map" href="{href}">{escape_html(str(e.get("title") or e["file"]))}</a>'
            f'<div class="meta">{" · ".join(b for b in bits if b)}</div>{summary}</li>'
        )
    listing = (
        f'<ul class="maps">{"".join(items)}</ul>'
        if items
        else '<p id="empty">还没有发布的地图。<span class="en">No maps have been published yet.</span></p>'
    )
    who = f"{escape_html(user)} · {_ROLE_ZH.get(role, escape_html(role))}"
    body = f"""<header><h1>已发布地图 <span class="en">Published maps</span></h1>
<form method="post" action="/signout"><span>{who}</span>
<button type="submit" id="signout">退出登录 <span class="en">Sign out</span></button></form></header>
<main><div class="card">{listing}</div></main>"""
    return _page("已发布地图 · Published maps — gridplan", body)
