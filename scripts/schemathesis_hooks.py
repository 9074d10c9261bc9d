"""schemathesis hooks for scripts/schemathesis.sh.

Some of the server's rules cannot be written in JSON Schema, so the fuzzer's schema-valid
requests break them: the document states them in words instead, and the failures they cause
(and only those: matched by operation, check and error) are dropped here.

- A paging cursor is an opaque token the server issued for one sort; any other value is
  refused with 400 `bad_cursor`.
- `"notify": true` on a comment needs an address: `author_email`, or a signed-in account
  that has one (which depends on the caller, not on the request).
- A forum's webhooks name each URL once (JSON Schema's `uniqueItems`, which the document
  has, only compares whole entries).
- An `Idempotency-Key` sent again with a different request is refused (422
  `idempotency_key_reused`): the fuzzer repeats keys, and whether one was used depends on
  the requests before.
- A forum's moderator names a reader by `account` or by `email`, one of the two
  (`GET /api/v1/forums/{forum}/readers/data`): a dependency between query parameters, which
  OpenAPI cannot state (the request body of the erasure beside it says it with `anyOf`).
- A webhook's secret is write-only: an empty one keeps the key stored for that URL, so it is
  refused only for a URL the forum does not have yet (which depends on the stored settings).
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
    if type(failure).__name__ != "RejectedPositiveData":
        return True
    err = _error(response)
    label = case.operation.label
    if label == "POST /api/v1/comments" and response.status_code == 422 and err.get("code") == "idempotency_key_reused":
        DROPPED["Idempotency-Key reused"] += 1
        return False
    if response.status_code != 400:
        return True
    if label in CURSOR_OPERATIONS and err.get("code") == "bad_cursor":
        DROPPED["opaque cursor"] += 1
        return False
    if (
        label == "GET /api/v1/forums/{forum}/readers/data"
        and err.get("code") == "invalid_input"
        and str(err.get("message", "")).startswith("name the reader by account (username) or by email")
    ):
        DROPPED["reader named by neither or both"] += 1
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
    if (
        label == "PATCH /api/v1/forums/{forum}"
        and err.get("code") == "invalid_input"
        and err.get("message") == "a webhook secret is 16-200 characters"
        and any(isinstance(h, dict) and h.get("secret") == "" for h in _webhooks(case.body))
    ):
        DROPPED["empty webhook secret for a new URL"] += 1
        return False
    return True


def _webhooks(body):
    hooks = body.get("webhooks") if isinstance(body, dict) else None
    return hooks if isinstance(hooks, list) else []
