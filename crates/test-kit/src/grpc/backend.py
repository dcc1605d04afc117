"""A real gRPC server (grpcio) for Strait's end-to-end tests.

    python backend.py NAME [PORT]

Listens on 127.0.0.1:PORT (0: the kernel picks) and prints
`gRPC backend NAME listening on 127.0.0.1 port N` once it serves. No
protobuf: the service `strait.test.Echo` is a generic handler on raw bytes.

  Unary         reply `NAME\\n` + the request
  ServerStream  request: ASCII count N; N replies `NAME\\n<i>`
  ClientStream  reads the stream one message at a time; reply
                `NAME\\n{"bytes": B, "messages": M}`
  Bidi          each message echoed as `NAME\\n` + the message
  Slow          request: ASCII milliseconds; sleeps that long, reply `NAME\\n`
  Fail          request: ASCII status code; aborts with it
  Big           request: ASCII `TOTAL CHUNK`; first message `NAME\\n`, then
                TOTAL bytes in messages of at most CHUNK bytes
  Stats         reply: JSON of the calls per method, the deadline each
                method's last call arrived with (ms left, null without
                one) and its metadata (Stats calls are not counted)
"""

import json
import sys
import threading
import time
from concurrent import futures

import grpc

NAME = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 0
SERVICE = "strait.test.Echo"
PREFIX = NAME.encode() + b"\n"

lock = threading.Lock()
calls = {}
deadlines = {}
metadata = {}


def count(method, context):
    left = context.time_remaining()
    # Without a deadline grpcio reports one in the far future.
    if left is not None and left > 1e6:
        left = None
    with lock:
        calls[method] = calls.get(method, 0) + 1
        deadlines[method] = None if left is None else round(left * 1000.0, 1)
        metadata[method] = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}


def unary(request, context):
    count("Unary", context)
    return PREFIX + request


def server_stream(request, context):
    count("ServerStream", context)
    for i in range(int(request or b"1")):
        yield PREFIX + str(i).encode()


def client_stream(requests, context):
    count("ClientStream", context)
    total = 0
    messages = 0
    for message in requests:
        total += len(message)
        messages += 1
    return PREFIX + json.dumps({"bytes": total, "messages": messages}).encode()


def bidi(requests, context):
    count("Bidi", context)
    for message in requests:
        yield PREFIX + message


def slow(request, context):
    count("Slow", context)
    time.sleep(int(request or b"0") / 1000.0)
    return PREFIX


STATUS = {code.value[0]: code for code in grpc.StatusCode}


def fail(request, context):
    count("Fail", context)
    code = STATUS.get(int(request or b"2"), grpc.StatusCode.UNKNOWN)
    context.abort(code, "backend %s fails with %s as asked" % (NAME, code.name))


def big(request, context):
    count("Big", context)
    total, chunk = (int(x) for x in request.split())
    yield PREFIX
    block = b"x" * chunk
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        yield block if n == chunk else block[:n]
        sent += n


def stats(request, context):
    with lock:
        text = json.dumps(
            {"name": NAME, "calls": calls, "deadline_ms": deadlines, "metadata": metadata}
        )
    return text.encode()


handlers = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
    "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
    "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
    "Slow": grpc.unary_unary_rpc_method_handler(slow),
    "Fail": grpc.unary_unary_rpc_method_handler(fail),
    "Big": grpc.unary_stream_rpc_method_handler(big),
    "Stats": grpc.unary_unary_rpc_method_handler(stats),
}

server = grpc.server(
    futures.ThreadPoolExecutor(max_workers=64),
    handlers=[grpc.method_handlers_generic_handler(SERVICE, handlers)],
    maximum_concurrent_rpcs=None,
    options=[
        ("grpc.max_receive_message_length", 64 << 20),
        ("grpc.max_send_message_length", 64 << 20),
    ],
)
port = server.add_insecure_port("127.0.0.1:%d" % PORT)
if port == 0:
    sys.exit("cannot listen on 127.0.0.1:%d" % PORT)
server.start()
print("gRPC backend %s listening on 127.0.0.1 port %d" % (NAME, port), flush=True)
server.wait_for_termination()
