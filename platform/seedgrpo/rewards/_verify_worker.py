"""Worker process for ``seedgrpo.rewards.verifier``: math-verify in its own main thread.

Run as ``python -m seedgrpo.rewards._verify_worker``. Protocol: one JSON object per line on
stdin ``{"gold": str, "pred": str, "timeout_s": int}``; one per line on stdout
``{"equivalent": bool, "status": "ok" | "unparsed" | "error", "detail": str}``. The first line
written is ``{"ready": true}`` once math-verify is imported.

Why a process: math-verify bounds its own time with ``signal.alarm``, which works only in a main
thread and cannot interrupt long C-level arithmetic (``2^{2^{100}}``). Here its alarms catch the
common slow cases cheaply, and the parent kills this process when even they do not return.
Nothing here evaluates model output as code: math-verify parses LaTeX into sympy expressions.
"""

from __future__ import annotations

import json
import os
import sys


def _protocol_channel():
    """A private copy of stdout for replies; stdout itself then points at stderr.

    Libraries inside math-verify (ANTLR's error listener among them) may print to stdout; on the
    protocol channel that would desynchronise parent and worker.
    """
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def _serve() -> None:
    out = _protocol_channel()
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    extraction = [LatexExtractionConfig(), ExprExtractionConfig()]
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        timeout = max(1, int(request["timeout_s"]))
        reply = {"equivalent": False, "status": "ok", "detail": ""}
        try:
            # Both sides are wrapped in \boxed{} so that the LaTeX extractor reads the whole
            # answer, not a number found inside it.
            gold = parse("\\boxed{" + request["gold"] + "}", extraction_config=extraction,
                         parsing_timeout=timeout, raise_on_error=True)
            pred = parse("\\boxed{" + request["pred"] + "}", extraction_config=extraction,
                         parsing_timeout=timeout, raise_on_error=True)
            if not gold or not pred:
                reply["status"] = "unparsed"
                reply["detail"] = "gold" if not gold else "pred"
            else:
                # Gold first: math-verify's verify is asymmetric.
                reply["equivalent"] = bool(verify(gold, pred, timeout_seconds=timeout,
                                                  raise_on_error=True))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:  # math-verify's TimeoutException derives from BaseException
            reply["status"] = "error"
            reply["detail"] = f"{type(err).__name__}: {str(err)[:200]}"
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    _serve()
