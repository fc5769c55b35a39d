"""A corpus of malformed requests, each sent on its own TLS connection (hospital
certificate) to a live node: bad framing, bad encodings, Unicode, huge numbers, deep JSON
nesting, truncated gzip, wrong content types. Every one must be answered with a 4xx; then
the node must still answer /healthz. Run by Tests/GatewayServerTests/MalformedCorpusTests.swift.
Prints one line per failure and exits non-zero if any."""
import argparse
import gzip
import socket
import ssl
import sys

TOKEN = "v1:" + "C" * 42 + "Q"
RECORD = ('{"patientToken":"%s","studyInstanceUID":"1.2.156.4.1","studyDate":"20241101","modalitiesInStudy":["CT"],'
          '"storageUnit":"91610000MA6TG0001A","retrieveURL":"https://pacs.example/dicomweb","region":"610100"}' % TOKEN)


def request(method, target, headers, body=b""):
    head = "%s %s HTTP/1.1\r\nHost: localhost\r\n" % (method, target)
    for name, value in headers:
        head += "%s: %s\r\n" % (name, value)
    return head.encode("utf-8", "surrogateescape") + b"\r\n" + body


def upload(body, content_type="application/x-ndjson", extra=()):
    return request("POST", "/v1/index/studies",
                   [("Content-Type", content_type), ("Content-Length", str(len(body)))] + list(extra), body)


def corpus():
    cases = []
    # framing
    cases += [
        ("CL and TE", b"POST /v1/index/studies HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("two CLs", b"POST /v1/index/studies HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
        ("huge CL", b"POST /v1/index/studies HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        ("negative CL", b"POST /v1/index/studies HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
        ("hex CL", b"POST /v1/index/studies HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n"),
        ("TE gzip", b"POST /v1/index/studies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
        ("bad chunk size", b"POST /v1/index/studies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        ("chunk digits", b"POST /v1/index/studies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 20 + b"\r\n"),
        ("no host", b"GET /healthz HTTP/1.1\r\n\r\n"),
        ("two hosts", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("bare LF", b"GET /healthz HTTP/1.1\nHost: x\n\n"),
        ("obs fold", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
        ("space before colon", b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n"),
        ("lowercase version", b"GET /healthz http/1.1\r\nHost: x\r\n\r\n"),
        ("no target", b"GET HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("absolute-form junk", b"GET http://[::1/healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("expect 999", b"POST /v1/index/studies HTTP/1.1\r\nHost: x\r\nExpect: 999-nope\r\nContent-Length: 1\r\n\r\nx"),
        ("long URI", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("huge header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 40000 + b"\r\n\r\n"),
        ("many headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n"),
    ]
    for c in range(0x00, 0x20):
        if c not in (0x09,):
            cases.append(("control 0x%02x in header" % c, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a" + bytes([c]) + b"b\r\n\r\n"))
    for c in range(0x00, 0x21):
        cases.append(("byte 0x%02x in target" % c, b"GET /health" + bytes([c]) + b"z HTTP/1.1\r\nHost: x\r\n\r\n"))
    for sep in b'()<>@,;\\"/[]?={}':
        cases.append(("separator %s in header name" % chr(sep), b"GET /healthz HTTP/1.1\r\nHost: x\r\nX" + bytes([sep]) + b"Y: 1\r\n\r\n"))
    for authority in ["", "[::1", "::1]", "user@host", "[]x"]:
        cases.append(("absolute-form " + authority, ("GET http://%s/healthz HTTP/1.1\r\nHost: x\r\n\r\n" % authority).encode()))
    for c in [0x7f, 0x80, 0xc3, 0xff]:
        cases.append(("byte 0x%02x in method" % c, bytes([c]) + b"ET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        cases.append(("byte 0x%02x in header name" % c, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX" + bytes([c]) + b": 1\r\n\r\n"))
    # encodings and parameters
    for q in ["%", "%zz", "%00", "%ff%fe", "purpose=%E0%A4%A", "purpose=TREAT&purpose=TREAT", "purpose=NOPE",
              "purpose=TREAT&from=2024-13-40", "purpose=TREAT&limit=99999999999999999999", "purpose=TREAT&limit=-1",
              "purpose=TREAT&offset=1e9", "purpose=TREAT&modality=ZZ", "purpose=TREAT&bogus=1", "purpose=TREAT&limit=0"]:
        cases.append(("lookup ?" + q, request("GET", "/v1/patients/%s/studies?%s" % (TOKEN, q), [])))
    for t in ["v1:short", "v0:" + "A" * 43, "v1:" + "A" * 43, "v1:" + "A" * 42 + "B", "%F0%9F%98%80", "v99999999999:" + "A" * 43,
              "v1:" + "+" * 43, "..%2F..%2Fetc", "v1:" + "A" * 42 + "Q%00"]:
        cases.append(("token " + t[:20], request("GET", "/v1/patients/%s/studies?purpose=TREAT" % t, [])))
    for q in ["PatientID=*", "PatientID=" + TOKEN + "*", "StudyDate=20240101-", "StudyDate=abc", "ModalitiesInStudy=ZZ",
              "fuzzymatching=true&PatientID=" + TOKEN, "includefield=00100010&PatientID=" + TOKEN, "StudyInstanceUID=1..2",
              "limit=0&PatientID=" + TOKEN, "offset=-5&PatientID=" + TOKEN, "00100020=" + TOKEN + "&00100020=" + TOKEN]:
        cases.append(("qido " + q[:24], request("GET", "/dicomweb/studies?" + q + "&purpose=TREAT", [])))
    for q in ["subject:identifier=x|y", "started=gx2024", "_count=0", "_count=100000", "modality=ZZ", "unknown=1",
              "subject:identifier=" + TOKEN]:
        cases.append(("fhir " + q[:24], request("GET", "/fhir/ImagingStudy?" + q, [])))
    # bodies
    cases += [
        ("empty body", upload(b"")),
        ("whitespace body", upload(b"   \n\n  ")),
        ("text/plain", upload(RECORD.encode(), "text/plain")),
        ("no content type", request("POST", "/v1/index/studies", [("Content-Length", "2")], b"[]")),
        ("json not array", upload(b'{"a":1}', "application/json")),
        ("json empty array", upload(b"[]", "application/json")),
        ("json truncated", upload(b'[{"a":', "application/json")),
        ("deep nesting array", upload(b"[" * 20000 + b"]" * 20000, "application/json")),
        ("deep nesting object", upload(b'[' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b']', "application/json")),
        ("json huge number", upload(b"[1e400]", "application/json")),
        ("json bad utf8", upload(b'["\xff\xfe"]', "application/json")),
        ("json lone surrogate", upload(b'["\\ud800"]', "application/json")),
        ("json nul", upload(b'["\x00"]', "application/json")),
        ("truncated gzip", upload(gzip.compress(RECORD.encode())[:-10], extra=[("Content-Encoding", "gzip")])),
        ("not gzip", upload(b"plain text", extra=[("Content-Encoding", "gzip")])),
        ("brotli", upload(b"x", extra=[("Content-Encoding", "br")])),
        ("idempotency key spaces", upload(RECORD.encode(), extra=[("Idempotency-Key", "a b")])),
        ("idempotency key long", upload(RECORD.encode(), extra=[("Idempotency-Key", "k" * 200)])),
        ("batch too large", upload(("\n".join([RECORD] * 10001)).encode())),
        ("token service body", request("POST", "/v1/tokens/evaluate", [("Content-Type", "application/json"),
                                                                      ("Content-Length", "2")], b"{}")),
    ]
    # records refused field by field are 202, not 4xx: these must refuse the request itself
    for n in ["1e999", "NaN", "Infinity", "-", "1.", ".5", "01", "1e", "+1", "0x10"]:
        cases.append(("array of number " + n[:12], upload(("[" + n + "]").encode(), "application/json")))
    for i, junk in enumerate(["\u202e", "\ufeff", "\u0000", "\U0001F600", "\u00e9\u0301"]):
        body = ('[{"patientToken":"%s"}' % junk).encode("utf-8", "surrogatepass")
        cases.append(("unicode truncated %d" % i, upload(body, "application/json")))
    for method in ["PUT", "DELETE", "PATCH", "TRACE", "CONNECT", "FOO"]:
        cases.append(("method " + method, request(method, "/v1/index/studies", [("Content-Length", "0")])))
    for path in ["/v1/index/studies/", "/v1//index/studies", "/V1/index/studies", "/v1/index/studies;x", "/../etc/passwd",
                 "/v1/patients//studies", "/dicomweb/studies/%00/series", "/nope", "/v1/audit/proof/inclusion?index=x"]:
        cases.append(("path " + path[:20], request("GET", path, [])))
    return cases


def send(args, payload):
    context = ssl.create_default_context(cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    with socket.create_connection(("127.0.0.1", args.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as s:
            try:
                s.sendall(payload)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass
            data = b""
            try:
                while b"\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (ConnectionResetError, ssl.SSLError, socket.timeout):
                pass
    line = data.split(b"\r\n", 1)[0].split(b" ")
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    args = p.parse_args()
    cases = corpus()
    failures = []
    for name, payload in cases:
        status = send(args, payload)
        if not 400 <= status <= 499:
            failures.append("%s: %d" % (name, status))
    # RFC 9110 §15.6.6 answers an unsupported version with 505, the one 5xx here.
    for version in [b"HTTP/2.0", b"HTTP/1.7", b"HTTP/3.0"]:
        status = send(args, b"GET /healthz " + version + b"\r\nHost: x\r\n\r\n")
        if status != 505:
            failures.append("%s: %d, expected 505" % (version.decode(), status))
    if send(args, request("GET", "/healthz", [])) != 200:
        failures.append("the node stopped answering /healthz")
    print("%d cases, %d failures" % (len(cases), len(failures)))
    for f in failures:
        print(f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
