#!/usr/bin/env python3
"""Writes a synthetic Disqus export for the import benchmark (scripts/bench-import.sh).

    scripts/gen-disqus-export.py [--posts N] [--threads T] [--seed S] > export.xml

Every post's text, name and address is generated (nothing copied from anyone). About a third
of the posts are replies, half of those listed before their parent (as real exports do);
1 % deleted, 1 % spam; a quarter of the threads have an identifier, every thread a link; 2 %
of threads closed. Deterministic for a given seed.
"""
import argparse
import random
import sys

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
         "exercitation ullamco laboris nisi aliquip ex ea commodo consequat").split()


def message(rng):
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 60))]
    if rng.random() < 0.3:
        i = rng.randrange(len(words))
        words[i] = "<b>%s</b>" % words[i]
    if rng.random() < 0.2:
        words.append('<a href="https://example.org/%d">link</a>' % rng.randrange(10**6))
    if rng.random() < 0.1:
        words.append("&amp; <i>more</i><br>second line")
    return "<p>%s</p>" % " ".join(words)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--posts", type=int, default=200_000)
    ap.add_argument("--threads", type=int, default=0, help="default: posts / 20")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    threads = a.threads or max(1, a.posts // 20)
    out = sys.stdout
    w = out.write
    w('<?xml version="1.0" encoding="utf-8"?>\n')
    w('<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals">\n')
    w('<category dsq:id="1"><forum>bench</forum><title>General</title><isDefault>true</isDefault></category>\n')
    for t in range(threads):
        ident = "bench-%d" % t if t % 4 == 0 else ""
        w('<thread dsq:id="%d"><id>%s</id><forum>bench</forum><category dsq:id="1"/>'
          '<link>https://bench.example.com/posts/%d/</link><title>Post %d</title><message/>'
          '<createdAt>2018-01-01T00:00:00Z</createdAt>'
          '<author><email>owner@bench.example.com</email><name>Owner</name><isAnonymous>false</isAnonymous><username>owner</username></author>'
          '<ipAddress>192.0.2.1</ipAddress><isClosed>%s</isClosed><isDeleted>false</isDeleted></thread>\n'
          % (1_000_000 + t, ident, t, t, "true" if t % 50 == 0 else "false"))
    # Posts: per thread, a list of earlier posts to reply to; some replies are written out
    # before their parent (held back parents).
    by_thread = {}
    held = []
    for p in range(a.posts):
        pid = 10_000_000 + p
        t = rng.randrange(threads)
        earlier = by_thread.setdefault(t, [])
        parent = rng.choice(earlier) if earlier and rng.random() < 0.33 else None
        earlier.append(pid)
        secs = p * 60
        created = "20%02d-%02d-%02dT%02d:%02d:%02dZ" % (
            19 + secs // (86400 * 365), 1 + (secs // (86400 * 28)) % 12, 1 + (secs // 86400) % 28,
            (secs // 3600) % 24, (secs // 60) % 60, secs % 60)
        r = rng.random()
        text = ('<post dsq:id="%d"><id/><message><![CDATA[%s]]></message><createdAt>%s</createdAt>'
                '<isDeleted>%s</isDeleted><isSpam>%s</isSpam>'
                '<author><email>user%d@bench.example.com</email><name>User %d</name><isAnonymous>true</isAnonymous></author>'
                '<ipAddress>192.0.2.%d</ipAddress><thread dsq:id="%d"/>%s</post>\n'
                % (pid, message(rng), created, "true" if r < 0.01 else "false",
                   "true" if 0.01 <= r < 0.02 else "false", p % 5000, p % 5000, p % 250,
                   1_000_000 + t, '<parent dsq:id="%d"/>' % parent if parent else ""))
        if parent is None and rng.random() < 0.15:
            held.append(text)  # written later: its replies come first
        else:
            w(text)
        if len(held) > 1000:
            for h in held:
                w(h)
            held = []
    for h in held:
        w(h)
    w("</disqus>\n")


if __name__ == "__main__":
    main()
