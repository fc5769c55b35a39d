#!/usr/bin/env python3
"""A small Open Inference Protocol (KServe v2) server for the tests: standard library only.

It serves one model, `triage`, whose input is the gateway's 8-float study feature vector
and whose output is an urgency in 0..1 (CT or MR of the chest or head: 0.9, else 0.3).
POST /control changes its behaviour: {"fail": N} answers the next N inferences with 500,
{"delay_ms": D} delays every inference, {"input_shape": [-1, 4]} changes the metadata.
GET /stats counts inferences. The first line on stdout is the port it listens on.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "triage"
STATE = {"fail": 0, "delay_ms": 0, "input_shape": [-1, 8], "infer": 0, "failed": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL}/ready"):
            return self.reply(200, {"ready": True} if "ready" in self.path else {"live": True})
        if self.path == f"/v2/models/{MODEL}":
            with LOCK:
                shape = STATE["input_shape"]
            return self.reply(200, {"name": MODEL, "versions": ["3"], "platform": "python-stdlib",
                                    "inputs": [{"name": "features", "datatype": "FP32", "shape": shape}],
                                    "outputs": [{"name": "urgency", "datatype": "FP32", "shape": [-1, 1]}]})
        if self.path == "/stats":
            with LOCK:
                return self.reply(200, {"infer": STATE["infer"], "failed": STATE["failed"]})
        self.reply(404, {"error": "no such resource"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self.reply(400, {"error": "invalid JSON"})
        if self.path == "/control":
            with LOCK:
                for key in ("fail", "delay_ms", "input_shape"):
                    if key in body:
                        STATE[key] = body[key]
            return self.reply(200, {"ok": True})
        if self.path != f"/v2/models/{MODEL}/infer":
            return self.reply(404, {"error": "no such model"})
        with LOCK:
            STATE["infer"] += 1
            delay = STATE["delay_ms"]
            failing = STATE["fail"] > 0
            if failing:
                STATE["fail"] -= 1
                STATE["failed"] += 1
        if delay:
            time.sleep(delay / 1000)
        if failing:
            return self.reply(500, {"error": "injected failure"})
        inputs = body.get("inputs") or []
        if len(inputs) != 1 or inputs[0].get("datatype") != "FP32" or inputs[0].get("shape") != [1, 8] \
                or len(inputs[0].get("data") or []) != 8:
            return self.reply(400, {"error": "expected one FP32 input of shape [1, 8]"})
        f = inputs[0]["data"]
        urgency = 0.9 if (f[0] or f[1]) and (f[6] or f[7]) else 0.3
        self.reply(200, {"model_name": MODEL, "model_version": "3", "id": body.get("id", ""),
                         "outputs": [{"name": "urgency", "datatype": "FP32", "shape": [1, 1], "data": [urgency]}]})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
