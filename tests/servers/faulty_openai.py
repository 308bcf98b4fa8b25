"""A small OpenAI-compatible chat server that misbehaves on purpose, for the remote-rung tests.

    python -m tests.servers.faulty_openai --port N --log attempts.jsonl --faults 429,500,slow

Each distinct request body (in arrival order) gets the next fault of `--faults` on its first
attempt and a good answer after; `--always FAULT` makes every attempt fail that way. Every attempt
is logged as one JSON line (body hash, fault, status, time, whether the key came). The answer is
one of the labels the system message lists, chosen by a hash of the user's text, so a test can
check every prediction. Requests that ask for logprobs get a 400 (this server offers none), and
/v1/completions does not exist here: a probe falls back to generate-and-parse.
Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FAULTS = ("429", "500", "503", "slow", "truncated", "malformed", "shape", "none")


class Faults:
    """Which fault each body's first attempt gets, and the attempt log."""

    def __init__(self, plan: list[str], always: str | None, log: Path, slow_s: float, delay_s: float, key: str):
        self.plan = plan
        self.always = always
        self.log = log
        self.slow_s = slow_s
        self.delay_s = delay_s
        self.key = key
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def fault_for(self, digest: str) -> str:
        with self.lock:
            if self.always:
                return self.always
            if digest in self.seen:
                return "none"
            self.seen[digest] = len(self.seen)
            return self.plan[self.seen[digest] % len(self.plan)] if self.plan else "none"

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock, self.log.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(entry) + "\n")


def answer_for(messages: list[dict[str, Any]]) -> str:
    """A listed label, chosen by a hash of the last user message (the same body always gets the same answer)."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    listed = re.search(r"Answer with exactly one of: (.*)\.", system)
    labels = [label.strip() for label in listed.group(1).split(",")] if listed else ["yes", "no"]
    user = [m["content"] for m in messages if m["role"] == "user"][-1]
    return labels[int(hashlib.sha256(user.encode()).hexdigest(), 16) % len(labels)]


class Handler(BaseHTTPRequestHandler):
    faults: Faults
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        digest = hashlib.sha256(raw).hexdigest()[:16]
        keyed = self.headers.get("Authorization") == f"Bearer {self.faults.key}"
        entry: dict[str, Any] = {"body": digest, "time": time.time(), "path": self.path, "keyed": keyed}
        if self.path != "/v1/chat/completions":
            return self._finish(entry, 404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        body = json.loads(raw)
        if body.get("logprobs"):
            entry["probe"] = True
            return self._finish(entry, 400, {"error": {"message": "logprobs: not offered", "type": "invalid"}})
        time.sleep(self.faults.delay_s)
        fault = self.faults.fault_for(digest)
        entry["fault"] = fault
        content = answer_for(body["messages"])
        good = {
            "id": "x",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": 2, "total_tokens": len(raw) // 4 + 2},
        }
        if fault == "429":
            return self._finish(entry, 429, {"error": {"message": "slow down", "type": "rate"}}, {"Retry-After": "1"})
        if fault in ("500", "503"):
            return self._finish(entry, int(fault), {"error": {"message": "try later", "type": "server"}})
        if fault == "slow":
            time.sleep(self.faults.slow_s)
        if fault == "truncated":
            payload = json.dumps(good).encode()
            entry["status"] = 200
            self.faults.record(entry)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return None
        if fault == "malformed":
            return self._finish(entry, 200, None, raw_body=b'{"choices": [{"message": ')
        if fault == "shape":
            return self._finish(entry, 200, {"id": "x", "data": [content]})
        entry["answered"] = content
        return self._finish(entry, 200, good)

    def _finish(
        self,
        entry: dict[str, Any],
        status: int,
        payload: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
        raw_body: bytes | None = None,
    ) -> None:
        data = raw_body if raw_body is not None else json.dumps(payload).encode()
        entry["status"] = status
        self.faults.record(entry)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout): nothing to answer
            pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--faults", default="")
    parser.add_argument("--always", choices=FAULTS, default=None)
    parser.add_argument("--slow-s", type=float, default=3.0)
    parser.add_argument("--delay-s", type=float, default=0.0)
    parser.add_argument("--key", default="")
    args = parser.parse_args()
    plan = [f for f in args.faults.split(",") if f]
    unknown = [f for f in plan if f not in FAULTS]
    if unknown:
        parser.error(f"unknown faults: {unknown}")
    Handler.faults = Faults(plan, args.always, args.log, args.slow_s, args.delay_s, args.key)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
