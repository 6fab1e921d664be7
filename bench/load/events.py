#!/usr/bin/env python3
"""The load harness's signed events, outside wrk.

    python3 events.py sign [--key KEY] [--connection-id ID]
        prints the ce-signature the service would send:
        sha256=<hex HMAC-SHA256 of the UTF-8 connection id, keyed by the
        UTF-8 bytes of the access key> (the key is not base64-decoded)

    python3 events.py verify http://127.0.0.1:PORT [--baseline]
        sends the three scenarios of scenarios/*.lua once each and checks the
        answers an event handler must give, then a message with a wrong
        signature, which must be refused (401 or 403). With --baseline only
        a 200 is expected for the three and the bad signature is not tried.
        Exit status 0 when every check passes.

The key, connection id, hub and path come from the same environment
variables as run.sh gives the servers and wrk (BENCH_ACCESS_KEY,
BENCH_CONNECTION_ID, BENCH_HUB, BENCH_PATH), with the same defaults.
"""
import argparse
import hashlib
import hmac
import http.client
import json
import os
import sys
import urllib.parse

KEY = os.environ.get("BENCH_ACCESS_KEY") or "anAccessKeyForBenchmarks0123456789"
CONNECTION_ID = os.environ.get("BENCH_CONNECTION_ID") or "bench-conn-0001"
HUB = os.environ.get("BENCH_HUB") or "chat"
PATH = os.environ.get("BENCH_PATH") or "/api/webpubsub/hubs/chat/"
CONNECT_BODY = (
    b'{"claims":{"sub":["user1"]},"query":{"id":["1"]},"headers":{},'
    b'"subprotocols":[],"clientCertificates":[]}'
)


def signature(key, connection_id):
    mac = hmac.new(key.encode("utf-8"), connection_id.encode("utf-8"), hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def event_headers(ce_type, event_name, sig):
    """The headers of scenarios/common.lua's event()."""
    return {
        "ce-specversion": "1.0",
        "ce-type": ce_type,
        "ce-source": f"/hubs/{HUB}/client/{CONNECTION_ID}",
        "ce-id": "1",
        "ce-time": "2024-01-01T00:00:00Z",
        "ce-awpsversion": "1.0",
        "ce-hub": HUB,
        "ce-connectionId": CONNECTION_ID,
        "ce-eventName": event_name,
        "ce-signature": sig,
        "WebHook-Request-Origin": "localhost",
    }


def send(base, method, headers, body=None):
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        conn.request(method, PATH, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def verify(base, baseline):
    sig = signature(KEY, CONNECTION_ID)
    failures = 0

    def check(name, ok, detail):
        nonlocal failures
        print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
        failures += not ok

    # connect.lua
    h = event_headers("azure.webpubsub.sys.connect", "connect", sig)
    h["Content-Type"] = "application/json"
    status, head, body = send(base, "POST", h, CONNECT_BODY)
    if baseline:
        check("connect -> 200", status == 200, f"status {status}")
    else:
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {}
        ok = status == 200 and answer.get("userId") == "user1" and answer.get("groups") == ["lobby"]
        check("connect -> 200 {userId: user1, groups: [lobby]}", ok, f"status {status} body {body!r}")

    # message.lua
    h = event_headers("azure.webpubsub.user.message", "message", sig)
    h["ce-userId"] = "user1"
    h["Content-Type"] = "text/plain"
    status, head, body = send(base, "POST", h, b"hello")
    if baseline:
        check("message -> 200", status == 200, f"status {status}")
    else:
        ok = status == 200 and body == b"hello" and head.get("content-type", "").startswith("text/plain")
        check("message -> 200 text/plain 'hello'", ok, f"status {status} {head.get('content-type')} body {body!r}")

    # preflight.lua
    status, head, _ = send(base, "OPTIONS", {"WebHook-Request-Origin": "localhost", "ce-awpsversion": "1.0"})
    if baseline:
        check("preflight -> 200", status == 200, f"status {status}")
    else:
        ok = status == 200 and head.get("webhook-allowed-origin") in ("localhost", "*")
        check("preflight -> 200 WebHook-Allowed-Origin", ok, f"status {status} headers {head}")

    if not baseline:
        h = event_headers("azure.webpubsub.user.message", "message", "sha256=" + "00" * 32)
        h["Content-Type"] = "text/plain"
        status, _, _ = send(base, "POST", h, b"hello")
        check("bad signature -> 401/403", status in (401, 403), f"status {status}")
    return failures == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sign", help="print the ce-signature header value")
    s.add_argument("--key", default=KEY)
    s.add_argument("--connection-id", default=CONNECTION_ID)
    v = sub.add_parser("verify", help="check a running server")
    v.add_argument("base", help="http://127.0.0.1:PORT")
    v.add_argument("--baseline", action="store_true", help="expect only 200s (a server that checks nothing)")
    args = ap.parse_args()
    if args.cmd == "sign":
        print(signature(args.key, args.connection_id))
        return 0
    try:
        return 0 if verify(args.base, args.baseline) else 1
    except (OSError, http.client.HTTPException) as e:
        print(f"FAIL could not talk to {args.base}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
