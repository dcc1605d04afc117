"""A real gRPC client (grpcio) for Strait's end-to-end tests.

    python client.py --target HOST:PORT --kind KIND [options]

Makes calls of one KIND (unary, server_stream, client_stream, bidi, slow,
fail, big, stats) to the `strait.test.Echo` methods of backend.py, all on
ONE channel (so one HTTP/2 connection), and prints one line
`result {JSON}` at the end: how many calls, the status codes, the backend
names the replies carried, the non-OK calls and the first calls in detail.
With --progress it prints `progress N` after every N-th finished call;
with --until FILE it keeps calling until FILE exists (for load while a
test kills a backend). Replies are checked: a wrong echo, count or size is
reported with the code MISMATCH. The client's own retries are off, so
every retry seen is the router's.
"""

import argparse
import json
import os
import sys
import threading
import time

import grpc

p = argparse.ArgumentParser()
p.add_argument("--target", required=True)
p.add_argument("--kind", required=True)
p.add_argument("--service", default="strait.test.Echo")
p.add_argument("--calls", type=int, default=1)
p.add_argument("--until", help="keep calling until this file exists")
p.add_argument("--parallel", type=int, default=1, help="threads sharing the channel")
p.add_argument("--timeout-ms", type=float)
p.add_argument("--metadata", action="append", default=[], help="key=value")
p.add_argument("--size", type=int, help="bytes: unary/bidi payload, client_stream/big total")
p.add_argument("--chunk", type=int, default=65536, help="bytes per streamed message")
p.add_argument("--messages", type=int, default=5, help="server_stream/bidi messages")
p.add_argument("--arg", default="", help="slow: milliseconds; fail: status code")
p.add_argument("--progress", type=int, default=0)
p.add_argument("--keep", type=int, default=200, help="calls reported in detail")
a = p.parse_args()

channel = grpc.insecure_channel(
    a.target,
    options=[
        ("grpc.enable_retries", 0),
        ("grpc.max_receive_message_length", 64 << 20),
        ("grpc.max_send_message_length", 64 << 20),
    ],
)
metadata = [tuple(m.split("=", 1)) for m in a.metadata]
timeout = a.timeout_ms / 1000.0 if a.timeout_ms is not None else None


def method(name, shape):
    path = "/%s/%s" % (a.service, name)
    return getattr(channel, shape)(path)  # raw bytes in and out


unary_call = method("Unary", "unary_unary")
slow_call = method("Slow", "unary_unary")
fail_call = method("Fail", "unary_unary")
stats_call = method("Stats", "unary_unary")
server_stream_call = method("ServerStream", "unary_stream")
big_call = method("Big", "unary_stream")
client_stream_call = method("ClientStream", "stream_unary")
bidi_call = method("Bidi", "stream_stream")


last_stats = [None]


class Mismatch(Exception):
    pass


def split(reply):
    name, _, rest = reply.partition(b"\n")
    return name.decode(errors="replace"), rest


def chunks(total, size):
    block = b"c" * size
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield block if n == size else block[:n]
        sent += n


def one(i):
    """One call: (backend name, bytes, messages)."""
    kw = {"timeout": timeout, "metadata": metadata or None}
    if a.kind == "unary":
        payload = (b"call-%d-" % i) + b"p" * (a.size if a.size is not None else 16)
        name, rest = split(unary_call(payload, **kw))
        if rest != payload:
            raise Mismatch("echo of %d bytes came back as %d bytes" % (len(payload), len(rest)))
        return name, len(rest), 1
    if a.kind == "slow":
        name, _ = split(slow_call(a.arg.encode() or b"0", **kw))
        return name, 0, 1
    if a.kind == "fail":
        name, _ = split(fail_call(a.arg.encode() or b"2", **kw))
        return name, 0, 1
    if a.kind == "stats":
        reply = json.loads(stats_call(b"", **kw))
        last_stats[0] = reply
        return reply["name"], 0, 1
    if a.kind == "server_stream":
        names = set()
        n = 0
        for reply in server_stream_call(str(a.messages).encode(), **kw):
            name, rest = split(reply)
            if rest != str(n).encode():
                raise Mismatch("message %d said %r" % (n, rest))
            names.add(name)
            n += 1
        if n != a.messages or len(names) != 1:
            raise Mismatch("%d messages from %s, asked %d from one" % (n, sorted(names), a.messages))
        return names.pop(), 0, n
    if a.kind == "client_stream":
        total = a.size if a.size is not None else 4096
        name, rest = split(client_stream_call(chunks(total, a.chunk), **kw))
        got = json.loads(rest)
        if got["bytes"] != total:
            raise Mismatch("backend got %d bytes of %d" % (got["bytes"], total))
        return name, got["bytes"], got["messages"]
    if a.kind == "bidi":
        sent = [(b"msg-%d-%d-" % (i, k)) + b"b" * (a.size or 8) for k in range(a.messages)]
        names = set()
        n = 0
        for reply in bidi_call(iter(sent), **kw):
            name, rest = split(reply)
            if n >= len(sent) or rest != sent[n]:
                raise Mismatch("echo %d wrong (%d bytes)" % (n, len(rest)))
            names.add(name)
            n += 1
        if n != len(sent) or len(names) != 1:
            raise Mismatch("%d echoes from %s, sent %d" % (n, sorted(names), len(sent)))
        return names.pop(), 0, n
    if a.kind == "big":
        total = a.size if a.size is not None else 1 << 20
        stream = big_call(b"%d %d" % (total, a.chunk), **kw)
        name, _ = split(next(stream))
        got = 0
        n = 0
        for reply in stream:
            got += len(reply)
            n += 1
        if got != total:
            raise Mismatch("got %d bytes of %d" % (got, total))
        return name, got, n
    sys.exit("unknown --kind %s" % a.kind)


lock = threading.Lock()
results = []
codes = {}
backends = {}
failures = []
started = [0]


def next_index():
    with lock:
        if a.until:
            if os.path.exists(a.until):
                return None
        elif started[0] >= a.calls:
            return None
        started[0] += 1
        return started[0] - 1


def worker():
    while True:
        i = next_index()
        if i is None:
            return
        t0 = time.monotonic()
        r = {"i": i, "code": "OK", "details": None, "backend": None, "bytes": 0, "messages": 0}
        try:
            r["backend"], r["bytes"], r["messages"] = one(i)
        except grpc.RpcError as e:
            r["code"] = e.code().name
            r["details"] = e.details()
        except Mismatch as e:
            r["code"] = "MISMATCH"
            r["details"] = str(e)
        r["ms"] = round((time.monotonic() - t0) * 1000.0, 1)
        with lock:
            codes[r["code"]] = codes.get(r["code"], 0) + 1
            if r["backend"] is not None:
                backends[r["backend"]] = backends.get(r["backend"], 0) + 1
            if r["code"] != "OK" and len(failures) < 100:
                failures.append(r)
            if len(results) < a.keep:
                results.append(r)
            done = sum(codes.values())
        if a.progress and done % a.progress == 0:
            print("progress %d" % done, flush=True)


threads = [threading.Thread(target=worker) for _ in range(max(1, a.parallel))]
t0 = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
results.sort(key=lambda r: r["i"])
print(
    "result "
    + json.dumps(
        {
            "calls": sum(codes.values()),
            "codes": codes,
            "backends": backends,
            "failures": failures,
            "results": results,
            "elapsed_ms": round((time.monotonic() - t0) * 1000.0, 1),
            "stats": last_stats[0],
        }
    ),
    flush=True,
)
channel.close()
