"""Credentials out of everything a config turns into: files, MLflow params, console lines.

A tracking URI may carry a password (``postgresql+psycopg://mlflow:PASSWORD@db/mlflow``,
``https://user:token@mlflow.example``) or a token in its query (``?password=...``). The live URI
is needed to connect, so it stays in memory; every copy that is stored, logged or printed goes
through ``redact_uri`` or ``redact_config`` first. The user part is kept (it says which account),
the secret becomes ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "redact_uri", "redact_config", "redact_text", "SECRET_CONFIG_PATHS"]

REDACTED = "***"

# query parameters that carry a secret (libpq, SQLAlchemy drivers, presigned URLs, tokens)
_SECRET_QUERY = re.compile(r"pass(word)?|secret|token|key|signature|credential|auth", re.I)
# ``scheme://user:secret@`` anywhere in a line of text
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<secret>[^@/\s]+)@")

# config fields that may hold a URI with credentials (dotted paths into the resolved config)
SECRET_CONFIG_PATHS = (("tracking", "mlflow_uri"),)


def redact_uri(uri: str | None) -> str | None:
    """``uri`` with its password and secret query values replaced by ``***``.

    >>> redact_uri("postgresql+psycopg://mlflow:s3cret@db:5432/mlflow")
    'postgresql+psycopg://mlflow:***@db:5432/mlflow'
    >>> redact_uri("https://tok@mlflow.example.com/")
    'https://***@mlflow.example.com/'
    >>> redact_uri("postgresql://db/mlflow?user=m&password=x&sslmode=require")
    'postgresql://db/mlflow?user=m&password=***&sslmode=require'
    >>> redact_uri("sqlite:////tmp/mlflow.db")
    'sqlite:////tmp/mlflow.db'
    """
    if not uri or "://" not in uri:
        return uri
    try:
        parts = urlsplit(uri)
    except ValueError:  # not parseable as a URL: redact what looks like user:secret@
        return redact_text(uri)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _secret = userinfo.partition(":")
        # a bare ``token@host`` (no colon) is a secret on its own, as in https://TOKEN@host
        netloc = f"{user}:{REDACTED}@{host}" if colon else f"{REDACTED}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_QUERY.search(k) for k, _ in pairs):
            query = urlencode([(k, REDACTED if _SECRET_QUERY.search(k) else v) for k, v in pairs],
                              safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return uri  # nothing secret: the URI exactly as given (urlunsplit drops empty hosts)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Every ``scheme://user:secret@`` in free text with its secret replaced (messages, logs).

    >>> redact_text("cannot reach postgresql://mlflow:pw@db/x: timeout")
    'cannot reach postgresql://mlflow:***@db/x: timeout'
    """
    return _USERINFO.sub(lambda m: f"{m['head']}:{REDACTED}@", text)


def redact_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a resolved config (``model_dump(mode='json')``) with its URIs redacted.

    >>> redact_config({"tracking": {"mlflow_uri": "mysql://u:p@h/db"}, "x": 1})
    {'tracking': {'mlflow_uri': 'mysql://u:***@h/db'}, 'x': 1}
    """
    out = dict(config)
    for path in SECRET_CONFIG_PATHS:
        _redact_at(out, path)
    return out


def _redact_at(data: dict[str, Any], path: tuple[str, ...]) -> None:
    head, *rest = path
    value = data.get(head)
    if not rest:
        if isinstance(value, str):
            data[head] = redact_uri(value)
        return
    if isinstance(value, Mapping):
        data[head] = inner = dict(value)
        _redact_at(inner, tuple(rest))
