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

__all__ = ["REDACTED", "redact_uri", "redact_config", "redact_text", "SECRET_CONFIG_PATHS",
           "has_secret", "live_tracking_uri", "SecretNotStored"]

REDACTED = "***"

# query parameters that carry a secret (libpq, SQLAlchemy drivers, presigned URLs, tokens)
_SECRET_QUERY = re.compile(r"pass(word)?|secret|token|key|signature|credential|auth", re.I)
# ``scheme://user:secret@`` anywhere in a line of text
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<secret>[^@/\s]+)@")
# ``https://token@`` (userinfo without a colon: on a web URL a token on its own; on a database
# URL a user name, kept, as redact_uri does)
_TOKEN = re.compile(r"(?P<head>\bhttps?://)(?P<secret>[^:/@\s*]+)@", re.I)
# ``?password=...`` / ``&token=...`` in free text: the value up to the next separator
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&][^=&\s'\"]*(?:pass(?:word)?|secret|token|key|signature|credential|auth)"
    r"[^=&\s'\"]*=)(?P<secret>[^&\s'\"]+)", re.I)

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
    >>> redact_uri("postgresql://mlflow@db/mlflow")  # a user name alone is no secret
    'postgresql://mlflow@db/mlflow'
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
        if colon:
            netloc = f"{user}:{REDACTED}@{host}"
        elif parts.scheme.lower() in ("http", "https"):  # https://TOKEN@host: a token alone
            netloc = f"{REDACTED}@{host}"
        # else ``postgresql://user@db``: a user name, no secret (a password would follow ':')
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
    """Every URI secret in free text replaced (messages, logs, ``--set`` values): the password
    of ``scheme://user:secret@``, a bare ``scheme://token@``, and secret query values.

    >>> redact_text("cannot reach postgresql://mlflow:pw@db/x: timeout")
    'cannot reach postgresql://mlflow:***@db/x: timeout'
    >>> redact_text("tracking.mlflow_uri=https://tok@mlflow.example/")
    'tracking.mlflow_uri=https://***@mlflow.example/'
    >>> redact_text("tracking.mlflow_uri='postgresql://db/m?user=u&password=x&sslmode=require'")
    "tracking.mlflow_uri='postgresql://db/m?user=u&password=***&sslmode=require'"
    >>> redact_text("nothing secret in sqlite:////tmp/m.db")
    'nothing secret in sqlite:////tmp/m.db'
    """
    text = _USERINFO.sub(lambda m: f"{m['head']}:{REDACTED}@", text)
    text = _TOKEN.sub(lambda m: f"{m['head']}{REDACTED}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}{REDACTED}", text)


def has_secret(uri: str | None) -> bool:
    """Whether ``uri`` carries a secret (so its stored, redacted copy cannot connect).

    >>> has_secret("http://u:pw@h:5000"), has_secret("sqlite:////tmp/m.db"), has_secret(None)
    (True, False, False)
    """
    return redact_uri(uri) != uri


class SecretNotStored(ValueError):
    """A recorded tracking URI lost its secret when stored, and no live URI supplies it."""


def live_tracking_uri(recorded: str | None, current: str | None) -> str | None:
    """The URI to connect to a store that ``recorded`` (a redacted, stored copy) names.

    Only the redacted URI is ever written to disk, so a resumed sweep or a report takes the
    secret from ``current`` (this run's config or ``$MLFLOW_TRACKING_URI``) when ``current``
    names the same store; a rotated password is fine, since only the secret may differ. A
    recorded URI without a secret is used as it is (the store the sweep logged to). Raises
    ``SecretNotStored`` when the recorded URI had a secret and ``current`` does not name it.

    >>> live_tracking_uri("http://u:***@h:5000", "http://u:new@h:5000")
    'http://u:new@h:5000'
    >>> live_tracking_uri("sqlite:////runs/m.db", "sqlite:////elsewhere/m.db")
    'sqlite:////runs/m.db'
    >>> try:
    ...     live_tracking_uri("http://u:***@h:5000", "http://u:pw@other:5000")
    ... except SecretNotStored as err:
    ...     print(str(err)[:65])
    the sweep logged to MLflow at http://u:***@h:5000, whose password
    >>> try:  # a redacted copy as this run's URI: no password to connect with
    ...     live_tracking_uri("http://u:***@h:5000", "http://u:***@h:5000")
    ... except SecretNotStored:
    ...     print("refused")
    refused
    """
    if recorded is None:
        return None
    # a ``current`` that is itself a redacted copy (pasted from a printed resume command)
    # names the store but cannot connect to it: ask for the password instead
    if current and REDACTED not in current and redact_uri(current) == redact_uri(recorded):
        return current
    if REDACTED not in recorded:  # nothing was taken out when it was stored
        return recorded
    raise SecretNotStored(
        f"the sweep logged to MLflow at {recorded}, whose password is not stored; set "
        "tracking.mlflow_uri or $MLFLOW_TRACKING_URI to that URI with its password (this run "
        f"has {redact_uri(current) if current else 'none'})")


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
