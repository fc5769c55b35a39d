"""The processes and the HTTPS caller crash_consistency.py drives: a node it starts,
SIGKILLs and stops, and one mTLS identity that opens a connection per request, so that a
kill costs one request. Standard library only."""
import http.client
import os
import signal
import ssl
import subprocess
import time


class Node:
    def __init__(self, name, args, workdir, env=None):
        self.name, self.args, self.workdir, self.env, self.proc = name, args, workdir, env, None

    def start(self, env=None):
        with open(os.path.join(self.workdir, self.name + ".log"), "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, close_fds=True,
                                         env=env or self.env)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Client:
    """One mTLS identity; a fresh connection per request, so a kill costs one request."""

    def __init__(self, certs, role, port):
        self.port = port
        self.context = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
        self.context.load_cert_chain(os.path.join(certs, role + ".pem"), os.path.join(certs, role + "-key.pem"))

    def call(self, method, path, body=None, content_type="application/json"):
        conn = http.client.HTTPSConnection("localhost", self.port, context=self.context, timeout=10)
        try:
            headers = {"Content-Type": content_type} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def wait_ready(client, seconds=30, node=None):
    """True once the node answers; False if `node` died first (a power cut at start-up)."""
    due = time.time() + seconds
    while time.time() < due:
        if node and node.proc.poll() is not None:
            return False
        try:
            if client.call("GET", "/healthz")[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("a node did not come up; see its log")
