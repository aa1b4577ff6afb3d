"""A model server that honours SageMaker's serving contract and fails a share of its invocations.

sagedeploy local runs it as a process container (an image mapped to `python3 flaky_server.py`).
It answers GET /ping with 200, and POST /invocations with 200 and "ok", except that every
FAIL_EVERY-th invocation (default 2: every other one) gets a 500, as a model that breaks on some
inputs would. The guardrail tests use it as the bad new version of a model.
"""
import http.server
import itertools
import os
import threading

FAIL_EVERY = int(os.environ.get("FAIL_EVERY", "2"))
counter = itertools.count(1)
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass  # one line per request would flood the instance log

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ping":
            self.answer(200, b"")
        else:
            self.answer(404, b"not found")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/invocations":
            self.answer(404, b"not found")
            return
        with lock:
            n = next(counter)
        if n % FAIL_EVERY == 0:
            self.answer(500, b"model failed on this input")
        else:
            self.answer(200, b"ok")


port = int(os.environ["SAGEMAKER_BIND_TO_PORT"])
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
print(f"flaky_server: port={port} failing every {FAIL_EVERY}th invocation", flush=True)
server.serve_forever()
