#!/usr/bin/env python3
"""Holds many half-sent requests against a Confab server and times /healthz meanwhile.

    scripts/hold-sockets.py --target http://127.0.0.1:8080 [--clients 2000] [--addresses 20]

Opens --clients connections spread over --addresses loopback source addresses (127.0.2.1,
127.0.2.2, ...), each sending half a request line and then nothing, while another client asks
/healthz every 50 ms from 127.0.0.1. Prints how each held connection ended (closed by the
server, with a 503 first or not) and when, and /healthz's latencies. The standard library
only; raise this process's open-file limit (ulimit -n) above --clients first.
"""
import argparse
import asyncio
import socket
import statistics
import time
import urllib.parse


async def hold(host, port, src, started, ends):
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.bind((src, 0))
        await loop.sock_connect(s, (host, port))
        await loop.sock_sendall(s, b"GET /healthz HT")
        got = b""
        while True:
            chunk = await loop.sock_recv(s, 4096)
            if not chunk:
                break
            got += chunk
        ends.append((time.monotonic() - started, "refused" if got.startswith(b"HTTP/1.1 503") else "closed"))
    except OSError as e:
        ends.append((time.monotonic() - started, "error:" + (e.strerror or str(e))))
    finally:
        s.close()


async def healthz(host, port, stop, lat):
    while not stop.is_set():
        t = time.monotonic()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            w.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            await w.drain()
            data = await asyncio.wait_for(r.read(), 5)
            w.close()
            lat.append((time.monotonic() - t, data.split(b"\r\n", 1)[0].decode(errors="replace")))
        except (OSError, asyncio.TimeoutError) as e:
            lat.append((time.monotonic() - t, "error:" + type(e).__name__))
        await asyncio.sleep(0.05)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--addresses", type=int, default=20)
    ap.add_argument("--watch", type=float, default=20.0, help="seconds to wait for the held connections to end")
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.target)
    host, port = u.hostname, u.port or 80
    started = time.monotonic()
    ends, lat, stop = [], [], asyncio.Event()
    probe = asyncio.create_task(healthz(host, port, stop, lat))
    holders = [
        asyncio.create_task(hold(host, port, f"127.0.2.{1 + i % a.addresses}", started, ends)) for i in range(a.clients)
    ]
    await asyncio.wait(holders, timeout=a.watch)
    stop.set()
    await probe
    for h in holders:
        h.cancel()
    kinds = {}
    for t, k in ends:
        kinds.setdefault(k, []).append(t)
    print(f"held connections: {a.clients} from {a.addresses} addresses; ended within {a.watch:.0f} s: {len(ends)}")
    for k, ts in sorted(kinds.items()):
        print(f"  {k:>10}: {len(ts):5}  first {min(ts):6.2f} s  last {max(ts):6.2f} s")
    oks = [t * 1000 for t, line in lat if " 200 " in line]
    bad = [(t, line) for t, line in lat if " 200 " not in line]
    if oks:
        q = statistics.quantiles(oks, n=100) if len(oks) > 1 else [oks[0]] * 99
        print(f"/healthz: {len(oks)} answered 200, {len(bad)} not; ms p50 {q[49]:.1f}  p99 {q[98]:.1f}  max {max(oks):.1f}")
    for t, line in bad[:5]:
        print(f"  not 200 after {t * 1000:.0f} ms: {line}")


if __name__ == "__main__":
    asyncio.run(main())
