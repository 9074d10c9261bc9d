"""schemathesis hooks for scripts/schemathesis.sh.

Two of the server's rules cannot be written in JSON Schema, so the fuzzer's schema-valid
requests break them: the document states them in words instead, and the failures they cause
(and only those: matched by operation, check and error) are dropped here.

- A paging cursor is an opaque token the server issued for one sort; any other value is
  refused with 400 `bad_cursor`.
- `"notify": true` on a comment needs an address: `author_email`, or a signed-in account
  that has one (which depends on the caller, not on the request).
- A forum's webhooks name each URL once (JSON Schema's `uniqueItems`, which the document
  has, only compares whole entries).
"""

import atexit
import collections
import sys

import schemathesis

DROPPED = collections.Counter()


@atexit.register
def _report():
    if DROPPED:
        print("schemathesis_hooks: dropped " + ", ".join(f"{n} x {k}" for k, n in sorted(DROPPED.items())), file=sys.stderr)


CURSOR_OPERATIONS = {"GET /api/v1/comments", "GET /api/v1/comments/{id}/replies"}


def _error(response):
    try:
        return response.json()["error"]
    except Exception:
        return {}


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    if type(failure).__name__ != "RejectedPositiveData" or response.status_code != 400:
        return True
    err = _error(response)
    label = case.operation.label
    if label in CURSOR_OPERATIONS and err.get("code") == "bad_cursor":
        DROPPED["opaque cursor"] += 1
        return False
    if (
        label == "POST /api/v1/comments"
        and err.get("code") == "invalid_input"
        and str(err.get("message", "")).startswith("notify needs an e-mail address")
    ):
        DROPPED["notify without an address"] += 1
        return False
    if (
        label == "PATCH /api/v1/forums/{forum}"
        and err.get("code") == "invalid_input"
        and str(err.get("message", "")).endswith("is listed twice")
    ):
        DROPPED["webhook URL listed twice"] += 1
        return False
    return True
