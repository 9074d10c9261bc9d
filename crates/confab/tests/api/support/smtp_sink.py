"""An SMTP sink for Confab's tests (aiosmtpd): stores every message it is given in a directory.

Usage: python smtp_sink.py DIR. Listens on 127.0.0.1 on a free port, prints the port, and runs
until its standard input closes (the test that started it ended). For each message N it writes
N.eml (the raw message) and then N.json ({"from", "to", "headers", "text", "html"}, parts
decoded), so a reader that sees N.json sees a whole message.

Control files in DIR change its answers:
- `fail`: its content (e.g. "451 4.3.0 try again later") is the reply to DATA, and nothing is stored.
- `slow`: a message to a recipient containing its content is stored, then the 250 reply is held
  back for an hour: the sender never learns that the message arrived (until it gives up or dies).
"""

import asyncio
import email
import email.policy
import json
import os
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0

    def control(self, name):
        try:
            with open(os.path.join(self.dir, name)) as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    async def handle_DATA(self, server, session, envelope):
        fail = self.control("fail")
        if fail:
            return fail
        self.n += 1
        base = os.path.join(self.dir, "%06d" % self.n)
        raw = envelope.original_content or envelope.content
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "headers": [[k, str(v)] for k, v in msg.items()],
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        with open(base + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(base + ".tmp", base + ".json")
        slow = self.control("slow")
        if slow and any(slow in r for r in envelope.rcpt_tos):
            await asyncio.sleep(3600)
        return "250 2.0.0 OK"


async def main():
    directory = sys.argv[1]
    sink = Sink(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="sink.test"), host="127.0.0.1", port=0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
