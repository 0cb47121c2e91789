"""The analytics backends a workspace may name, and how their URLs are shown safely.

A backend URL carries credentials (``postgresql://user:PASSWORD@host/db``): it is
kept as a secret in the settings, and anything shown to a person or written to a
log names the database with the password masked (``masked_url``) and scrubs the
password out of a driver's error text (``without_secret``).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit

Backend = Literal["duckdb", "postgres", "clickhouse"]
BACKENDS: tuple[Backend, ...] = ("duckdb", "postgres", "clickhouse")
# URL schemes per backend that takes a URL.
URL_SCHEMES = {"postgres": ("postgresql", "postgres"),
               # a server or cluster (clickhouse-connect), or chdb in the process (a folder)
               "clickhouse": ("clickhouse", "clickhouses", "chdb")}
MASK = "***"


def check_backend_url(url: str) -> None:
    """Refuse a URL no backend understands; the message never repeats the URL."""
    parts = urlsplit(url)
    known = {s for schemes in URL_SCHEMES.values() for s in schemes}
    if parts.scheme not in known:
        raise ValueError("backend_url must start with postgresql://, clickhouse:// or "
                         "chdb:// (e.g. postgresql://saleskpi:PASSWORD@db.example.com:5432/"
                         "sales, clickhouse://saleskpi:PASSWORD@ch.example.com:8123/sales)")
    if parts.scheme == "chdb":
        if not parts.path:
            raise ValueError("a chdb:// backend_url names a folder (e.g. chdb:///srv/sales)")
        return
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError("backend_url names no host (e.g. "
                         "postgresql://saleskpi:PASSWORD@db.example.com:5432/sales)")


def masked_url(url: str) -> str:
    """``url`` with its password (and any password= parameter) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = netloc.rpartition("@")[2]
        netloc = f"{user}:{MASK}@{host}"
    query = "&".join(
        f"{key}={MASK}" if key.lower() == "password" else item
        for item in parts.query.split("&") if item
        for key in [item.partition("=")[0]])
    masked = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{masked}?{query}" if query else masked


def secrets_of(url: str) -> list[str]:
    """The secret parts of ``url`` as they may appear in a driver's messages."""
    parts = urlsplit(url)
    found = []
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    for item in parts.query.split("&"):
        key, _sep, value = item.partition("=")
        if key.lower() == "password" and value:
            found += [value, unquote(value)]
    return [s for s in dict.fromkeys(found) if s]


def without_secret(text: str, url: str) -> str:
    """``text`` (a driver's error, say) with the URL masked and its password removed."""
    text = text.replace(url, masked_url(url))
    for secret in secrets_of(url):
        text = text.replace(secret, MASK)
    return text
