#!/usr/bin/env python3
"""A local HTTP receiver standing in for the Argo Events webhook EventSource.

    receiver.py --port 19094 --log received.jsonl

Every POST is appended to the log as one JSON line: {"path", "headers", "body"} (the body parsed
as JSON where it is JSON). Answers by path:
  /reject   400, a final error: the engine's webhook sink counts the event as `failed`;
  /flaky    503 on the first attempt of each Idempotency-Key, then 200: the sink retries;
  other     200 (/drift: the engine's webhook sink; /alertmanager: Alertmanager).
Listens on 127.0.0.1 only. GET /healthz answers 200 (the check script waits for it).
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    lock = threading.Lock()
    seen_flaky = set()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):  # quiet: the log file is the record
            pass

        def _answer(self, code, text):
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self._answer(200 if self.path == "/healthz" else 404, "ok\n")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
            key = self.headers.get("Idempotency-Key", "")
            with lock:
                with open(args.log, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                first_flaky = self.path == "/flaky" and key not in seen_flaky
                if self.path == "/flaky":
                    seen_flaky.add(key)
            if self.path == "/reject":
                self._answer(400, "rejected\n")
            elif first_flaky:
                self._answer(503, "try again\n")
            else:
                self._answer(200, "ok\n")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
