"""Worker process for ``seedgrpo.rewards.verifier``: math-verify in its own main thread.

Run as ``python -m seedgrpo.rewards._verify_worker``. Protocol: one JSON object per line on
stdin, one reply per line on stdout; the first line written is ``{"ready": true}`` once
math-verify is imported. Requests:

- ``{"op": "verify", "gold": str, "pred": str, "timeout_s": int}`` (``op`` may be omitted):
  are they equivalent (gold first)?
- ``{"op": "parse", "text": str, "timeout_s": int}``: parse ``text`` now and keep the result.

Replies: ``{"equivalent": bool, "status": "ok" | "unparsed" | "error", "detail": str,
"failed": "" | "gold" | "pred" | "text", "parses": int}``: ``failed`` names the text whose
parse raised (empty when ``verify`` itself raised), ``parses`` how many texts this request had
to parse (0 when all were parsed before). Each distinct text is parsed once per worker
(``_ParseCache``): a group's answers are parsed when clustering meets them, and every later
comparison, and every reward against the same gold, reuses the parse.

Why a process: math-verify bounds its own time with ``signal.alarm``, which works only in a main
thread and cannot interrupt long C-level arithmetic (``2^{2^{100}}``). Here its alarms catch the
common slow cases cheaply, and the parent kills this process when even they do not return.
Nothing here evaluates model output as code: math-verify parses LaTeX into sympy expressions.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

PARSE_CACHE_SIZE = 2_048  # a step's distinct answers and golds; oldest entries go first


def _protocol_channel():
    """A private copy of stdout for replies; stdout itself then points at stderr.

    Libraries inside math-verify (ANTLR's error listener among them) may print to stdout; on the
    protocol channel that would desynchronise parent and worker.
    """
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


class _ParseFailed(Exception):
    """A cached parse that raised: replayed without parsing again."""


class _ParseCache:
    """Text -> math-verify's parse of ``\\boxed{text}`` (or why it failed), bounded in size."""

    def __init__(self, parse_fn: Callable[[str, int], list[Any]]) -> None:
        self._parse_fn = parse_fn
        self._entries: dict[str, list[Any] | str] = {}  # a str entry is the failure's detail
        self.parses = 0  # texts parsed by the current request

    def get(self, text: str, timeout: int) -> list[Any]:
        """The parse of ``text`` (possibly empty); ``_ParseFailed`` when parsing raised."""
        if text not in self._entries:
            self.parses += 1
            try:
                entry: list[Any] | str = self._parse_fn(text, timeout)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as err:  # math-verify's TimeoutException derives from it
                entry = f"{type(err).__name__}: {str(err)[:200]}"
            if len(self._entries) >= PARSE_CACHE_SIZE:
                del self._entries[next(iter(self._entries))]
            self._entries[text] = entry
        entry = self._entries[text]
        if isinstance(entry, str):
            raise _ParseFailed(entry)
        return entry


def _serve() -> None:
    out = _protocol_channel()
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    extraction = [LatexExtractionConfig(), ExprExtractionConfig()]

    def parse_boxed(text: str, timeout: int) -> list[Any]:
        # Wrapped in \boxed{} so that the LaTeX extractor reads the whole answer, not a number
        # found inside it.
        return parse("\\boxed{" + text + "}", extraction_config=extraction,
                     parsing_timeout=timeout, raise_on_error=True)

    cache = _ParseCache(parse_boxed)
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        cache.parses = 0
        try:
            reply = _answer(request, cache, verify)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:  # math-verify's TimeoutException derives from BaseException
            reply = {"status": "error", "detail": f"{type(err).__name__}: {str(err)[:200]}"}
        reply = {"equivalent": False, "detail": "", "failed": "", **reply,
                 "parses": cache.parses}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def _answer(request: dict[str, Any], cache: _ParseCache, verify: Callable[..., bool]
            ) -> dict[str, Any]:
    """One request's reply (without the defaults); ``verify`` may raise."""
    timeout = max(1, int(request["timeout_s"]))
    op = request.get("op", "verify")
    names = ("text",) if op == "parse" else ("gold", "pred")
    parsed: list[list[Any]] = []
    for name in names:
        try:
            parsed.append(cache.get(request[name], timeout))
        except _ParseFailed as err:
            return {"status": "error", "detail": str(err), "failed": name}
        if not parsed[-1]:
            return {"status": "unparsed", "detail": name}
    if op == "parse":
        return {"status": "ok"}
    # Gold first: math-verify's verify is asymmetric.
    return {"status": "ok", "equivalent": bool(verify(parsed[0], parsed[1],
                                                        timeout_seconds=timeout,
                                                        raise_on_error=True))}


if __name__ == "__main__":
    _serve()
