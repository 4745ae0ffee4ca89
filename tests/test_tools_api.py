"""Diff, saved ignore rules, previous-of-event, signature verification, replay, shape check and
export, all through a real server (issue 6)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jsonschema
import pytest

from inspector import signing
from inspector.export import decode_body
from tests.test_export import HAR_SCHEMA

SECRETS = {
    "audian": "whsec_toolsaudian0123456789",
    "stripe": "whsec_toolsstripe0123456789",
    "github": "tools-github-secret",
    "standard-webhooks": "whsec_" + base64.b64encode(b"tools-standard-webhooks-key!").decode(),
}
EVENTS = {
    "audian": "call.completed",
    "stripe": "customer.created",
    "github": "issues.opened",
    "standard-webhooks": "user.created",
}
SCHEME_OF = {"audian": "audian", "stripe": "stripe", "github": "github",
             "standard-webhooks": "standard-webhooks"}
# Headers the client computes for itself: never copied when re-posting a capture.
CLIENT_HEADERS = {"host", "content-length", "transfer-encoding", "connection",
                  "accept-encoding", "accept", "user-agent"}


# -- helpers -------------------------------------------------------------------------------------
def post(server, bin_name: str, content: bytes, headers: Any = None, path: str = "",
         method: str = "POST") -> int:
    r = httpx.request(method, f"{server.url}/in/{bin_name}{path}", content=content,
                      headers=headers or {}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def post_json(server, bin_name: str, data: Any, path: str = "", **headers: str) -> int:
    return post(server, bin_name, json.dumps(data).encode(),
                {"Content-Type": "application/json", **headers}, path)


def api(server, path: str, **params: Any) -> httpx.Response:
    return httpx.get(server.url + path, params=params, timeout=10)


def diff(server, a: int, b: int, **params: Any) -> dict[str, Any]:
    r = api(server, "/api/diff", a=a, b=b, **params)
    assert r.status_code == 200, r.text
    return r.json()


def send(server, vendor: str, event: str, bin_name: str, **extra: Any) -> dict[str, Any]:
    r = httpx.post(f"{server.url}/api/send", json={
        "vendor": vendor, "event": event, "url": f"{server.url}/in/{bin_name}", "wait": True,
        **extra}, timeout=30)
    assert r.status_code == 201, r.text
    delivery = r.json()["delivery"]
    assert delivery["status"] == "delivered", delivery
    return delivery


def last_capture(server, bin_name: str) -> dict[str, Any]:
    captures = api(server, "/api/captures", bin=bin_name).json()["captures"]
    assert captures, f"nothing in {bin_name}"
    return api(server, f"/api/captures/{captures[0]['id']}").json()


def verify(server, capture_id: int, **params: Any) -> dict[str, Any]:
    r = api(server, f"/api/captures/{capture_id}/verify", **params)
    assert r.status_code == 200, r.text
    return r.json()


def repost_headers(capture: dict[str, Any]) -> list[tuple[str, str]]:
    return [(n, v) for n, v in capture["headers"] if n.lower() not in CLIENT_HEADERS]


def header(capture: dict[str, Any], name: str) -> str | None:
    return next((v for n, v in capture["headers"] if n.lower() == name.lower()), None)


def by_path(changes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["path"]: c for c in changes}


# -- diff ----------------------------------------------------------------------------------------
def test_diff_nested_type_change_and_array_insertion(server) -> None:
    a = post(server, "d1", b'{"sender": {"email": "a@x.io", "name": "Ann"}, "amount": 5,'
                           b' "items": [{"id": 1}, {"id": 2}, {"id": 3}], "same": true}',
             {"Content-Type": "application/json"})
    # Other key order and whitespace, one nested change, one type change, one inserted item.
    b = post(server, "d1", b'{"same":true,"amount":"5","items":[{"id":1},{"id":9,"new":1},'
                           b'{"id":2},{"id":3}],"sender":{"name":"Ann","email":"b@x.io"}}',
             {"Content-Type": "application/json"})
    out = diff(server, a, b)
    assert out["a"]["id"] == a and out["b"]["id"] == b
    body = [c for c in out["changes"] if c["section"] == "body"]
    assert by_path(body) == {
        "$.sender.email": {"path": "$.sender.email", "kind": "changed", "a": "a@x.io",
                           "b": "b@x.io", "section": "body"},
        "$.amount": {"path": "$.amount", "kind": "type_changed", "a": 5, "b": "5",
                     "section": "body"},
        "$.items[1]": {"path": "$.items[1]", "kind": "added", "a": None,
                       "b": {"id": 9, "new": 1}, "section": "body"},
    }
    assert out["ignored"] == [] and out["raw"] is False
    assert out["text_diff"].startswith("--- a\n+++ b\n")


def test_diff_form_and_query_fields(server) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    a = post(server, "d2", b"name=Ann&tag=x&tag=y&gone=1", form, path="/hook?page=1&q=a")
    b = post(server, "d2", b"tag=x&tag=y&tag=z&name=Bob&new=2", form, path="/hook?q=b&page=1")
    changes = diff(server, a, b)["changes"]
    query = by_path([c for c in changes if c["section"] == "query"])
    assert query == {"$.q": {"path": "$.q", "kind": "changed", "a": "a", "b": "b",
                             "section": "query"}}
    body = by_path([c for c in changes if c["section"] == "body"])
    assert body["$.name"]["kind"] == "changed" and body["$.name"]["b"] == "Bob"
    assert body["$.gone"]["kind"] == "removed" and body["$.new"]["kind"] == "added"
    assert body["$.tag[2]"] == {"path": "$.tag[2]", "kind": "added", "a": None, "b": "z",
                                "section": "body"}
    assert len(body) == 4


def test_saved_ignore_rules_hide_volatile_fields(server) -> None:
    a = post_json(server, "d3", {"sentAt": "2024-01-01", "webhookCallId": "u1", "v": 1},
                  **{"X-Trace": "t1"})
    b = post_json(server, "d3", {"sentAt": "2024-01-02", "webhookCallId": "u2", "v": 2},
                  **{"X-Trace": "t2"})
    assert api(server, "/api/bins/d3/ignore").json() == {"rules": []}

    r = httpx.put(f"{server.url}/api/bins/d3/ignore",
                  json={"rules": ["$.sentAt", "$.webhookCallId", "header:x-trace",
                                  "header:date"]})
    assert r.status_code == 200, r.text
    rules = ["$.sentAt", "$.webhookCallId", "header:x-trace", "header:date"]
    assert r.json() == {"rules": rules}
    assert api(server, "/api/bins/d3/ignore").json() == {"rules": rules}

    out = diff(server, a, b)
    paths = {c["path"] for c in out["changes"]}
    assert paths == {"$.v"}
    assert out["ignored"] == rules and out["saved_rules"] == rules

    raw = diff(server, a, b, raw=1)
    assert {"$.sentAt", "$.webhookCallId", "header:x-trace", "$.v"} <= {
        c["path"] for c in raw["changes"]}
    assert raw["ignored"] == []

    extra = diff(server, a, b, ignore="$.v, header:content-length")
    assert extra["changes"] == []
    assert extra["ignored"] == [*rules, "$.v", "header:content-length"]

    # Bad rules: 400 naming the rule, nothing saved.
    r = httpx.put(f"{server.url}/api/bins/d3/ignore", json={"rules": ["$.ok", "sentAt"]})
    assert r.status_code == 400 and "'sentAt'" in r.json()["error"]
    assert httpx.put(f"{server.url}/api/bins/d3/ignore", json={"rules": "x"}).status_code == 400
    assert api(server, "/api/bins/d3/ignore").json() == {"rules": rules}
    r = api(server, "/api/diff", a=a, b=b, ignore="nope")
    assert r.status_code == 400 and "'nope'" in r.json()["error"]
    # Clearing.
    assert httpx.put(f"{server.url}/api/bins/d3/ignore", json={"rules": []}).json() == {
        "rules": []}


def test_diff_errors(server) -> None:
    a = post_json(server, "d4", {"x": 1})
    assert api(server, "/api/diff", a=a, b=999999).status_code == 404
    assert api(server, "/api/diff", a=a).status_code == 400
    assert api(server, "/api/diff", a="x", b=a).status_code == 400
    assert api(server, "/api/bins/bad name!/ignore").status_code in (400, 404)


# -- previous of the same event ------------------------------------------------------------------
def test_previous_of_the_same_event(server) -> None:
    send(server, "audian", "call.completed", "p1", seed=1)
    first = last_capture(server, "p1")["id"]
    send(server, "audian", "call.failed", "p1", seed=2)
    failed = last_capture(server, "p1")["id"]
    send(server, "audian", "call.completed", "p1", seed=3)
    third = last_capture(server, "p1")["id"]

    out = api(server, f"/api/captures/{third}/previous").json()
    assert out["capture"]["id"] == first
    assert out["match"] == {"by": "event", "vendor": "audian", "event": "call.completed"}
    assert api(server, f"/api/captures/{failed}/previous").json()["capture"] is None
    assert api(server, f"/api/captures/{first}/previous").json()["capture"] is None

    # Unknown vendors: same method and path.
    x1 = post_json(server, "p1", {"a": 1}, path="/x")
    post_json(server, "p1", {"a": 2}, path="/y")
    x2 = post_json(server, "p1", {"a": 3}, path="/x")
    out = api(server, f"/api/captures/{x2}/previous").json()
    assert out["capture"]["id"] == x1
    assert out["match"] == {"by": "request", "method": "POST", "path": "/x"}
    assert api(server, "/api/captures/999999/previous").status_code == 404


# -- verification --------------------------------------------------------------------------------
@pytest.mark.parametrize("vendor", list(EVENTS))
def test_verify_captures_of_our_own_provider(server, vendor: str) -> None:
    secret, scheme = SECRETS[vendor], SCHEME_OF[vendor]
    bin_name = f"v-{vendor}"
    send(server, vendor, EVENTS[vendor], bin_name, secret=secret)
    capture = last_capture(server, bin_name)

    # No secret given: the one the send used.
    out = verify(server, capture["id"])
    assert out["detected_scheme"] == scheme and out["scheme"] == scheme
    assert out["secret_source"] == "delivery"
    assert out["delivery"]["source"] == "send" and out["delivery"]["vendor"] == vendor
    v = out["verification"]
    assert v["valid"] is True, v
    assert v["digest_matches"] is True and v["expected"] in v["received"]
    assert v["signed_string"].endswith(capture["body"])

    # Given explicitly, right and wrong.
    assert verify(server, capture["id"], secret=secret)["secret_source"] == "given"
    assert verify(server, capture["id"], secret=secret)["verification"]["valid"] is True
    wrong = verify(server, capture["id"], secret="whsec_d3Jvbmc=")["verification"]
    assert wrong["valid"] is False and wrong["digest_matches"] is False

    # The same headers with a tampered body: invalid.
    body = capture["body"].encode()
    tampered_body = body.replace(b"{", b"{ ", 1)
    tampered = post(server, bin_name, tampered_body, repost_headers(capture))
    v = verify(server, tampered, secret=secret)["verification"]
    assert v["valid"] is False and v["reason"] == "signature mismatch"

    # Correctly signed, but long ago: invalid, with its age against the tolerance.
    tolerance = signing.SCHEMES[scheme].tolerance_seconds
    if tolerance is not None:
        stamp = int(time.time()) - 3600
        owned = {h.lower() for h in signing.SCHEMES[scheme].owned_headers}
        kept = [(n, v) for n, v in repost_headers(capture) if n.lower() not in owned]
        msg_id = header(capture, "webhook-id")
        signed = signing.sign(scheme, secret, body, stamp, msg_id)
        stale = post(server, bin_name, body, kept + signed)
        v = verify(server, stale, secret=secret)["verification"]
        assert v["valid"] is False and v["digest_matches"] is True
        assert v["reason"] == "timestamp outside tolerance"
        assert v["timestamp"] == stamp and v["age_seconds"] > v["tolerance_seconds"] == tolerance


def test_verify_demo_secret_and_unsigned(server) -> None:
    # Signed with a vendor's demo secret by someone else: the demo secret is tried.
    body = b'{"id":"evt_1","event":"call.completed","version":"v1","data":{}}'
    demo = "whsec_mockaudian0123456789abcdef"
    stamp = int(time.time())
    cid = post(server, "v-demo", body, [("Content-Type", "application/json"),
                                        *signing.sign("audian", demo, body, stamp)])
    out = verify(server, cid)
    assert out["secret_source"] == "demo" and out["verification"]["valid"] is True
    assert out["delivery"] is None

    plain = post_json(server, "v-demo", {"a": 1})
    out = verify(server, plain)
    assert out["detected_scheme"] is None and out["scheme"] is None
    assert out["verification"] is None and "scheme" in out["message"]
    forced = verify(server, plain, scheme="github", secret="s")["verification"]
    assert forced["valid"] is False and "X-Hub-Signature-256" in forced["reason"]
    assert api(server, f"/api/captures/{plain}/verify", scheme="nope").status_code == 400
    assert api(server, "/api/captures/999999/verify").status_code == 404


# -- replay --------------------------------------------------------------------------------------
def test_replay_byte_exact_keeps_the_timestamp_resigned_is_fresh(server) -> None:
    secret = SECRETS["audian"]
    send(server, "audian", "call.completed", "r-src", secret=secret)
    original = last_capture(server, "r-src")
    original_ts = int(header(original, "X-Audian-Timestamp"))
    time.sleep(1.1)  # so a fresh timestamp differs from the original

    def replay(target: str, **extra: Any) -> dict[str, Any]:
        r = httpx.post(f"{server.url}/api/captures/{original['id']}/replay",
                       json={"url": f"{server.url}/in/{target}", "wait": True, **extra},
                       timeout=30)
        assert r.status_code == 201, r.text
        assert r.json()["delivery"]["status"] == "delivered"
        return last_capture(server, target)

    exact = replay("r-exact")
    assert exact["body"] == original["body"]
    assert int(header(exact, "X-Audian-Timestamp")) == original_ts
    assert header(exact, "X-Audian-Signature") == header(original, "X-Audian-Signature")
    out = verify(server, exact["id"])
    # Followed back through the byte-exact replay to the send that signed it.
    assert out["secret_source"] == "delivery" and out["verification"]["valid"] is True
    assert out["verification"]["timestamp"] == original_ts

    resigned = replay("r-resigned", resign=True, secret=secret)
    assert resigned["body"] == original["body"]
    fresh_ts = int(header(resigned, "X-Audian-Timestamp"))
    assert fresh_ts > original_ts
    out = verify(server, resigned["id"])
    assert out["secret_source"] == "delivery" and out["delivery"]["source"] == "replay"
    v = out["verification"]
    assert v["valid"] is True and v["timestamp"] == fresh_ts and abs(v["age_seconds"]) <= 5


def test_replay_resigns_a_stale_capture(server) -> None:
    secret = SECRETS["stripe"]
    body = b'{\n  "id": "evt_1",\n  "object": "event",\n  "type": "customer.created"\n}'
    stale_ts = int(time.time()) - 7200
    cid = post(server, "r-stale", body, [("Content-Type", "application/json"),
                                         *signing.sign("stripe", secret, body, stale_ts)])
    assert verify(server, cid, secret=secret)["verification"]["reason"] == \
        "timestamp outside tolerance"
    r = httpx.post(f"{server.url}/api/captures/{cid}/replay",
                   json={"url": f"{server.url}/in/r-stale2", "resign": True, "secret": secret,
                         "wait": True}, timeout=30)
    assert r.status_code == 201, r.text
    again = last_capture(server, "r-stale2")
    v = verify(server, again["id"], secret=secret)["verification"]
    assert v["valid"] is True and v["timestamp"] > stale_ts


# -- shape check ---------------------------------------------------------------------------------
def test_shape_check_detects_audian_call_completed(server) -> None:
    send(server, "audian", "call.completed", "s1", seed=4)
    clean = last_capture(server, "s1")
    out = api(server, f"/api/captures/{clean['id']}/shape").json()
    assert (out["vendor"], out["event"], out["detected"]) == ("audian", "call.completed", True)
    assert out["issues"] == [] and out["valid"] is True
    assert out["reference"]["event"] == "call.completed"
    assert out["enums"]["$.data.direction"] == ["inbound", "outbound"]

    payload = json.loads(clean["body"])
    del payload["data"]["call_id"]
    payload["data"]["duration"] = "long"
    payload["data"]["direction"] = "sideways"
    payload["data"]["extra"] = True
    broken = post_json(server, "s1", payload, **{"X-Audian-Event": "call.completed"})
    out = api(server, f"/api/captures/{broken}/shape").json()
    assert (out["vendor"], out["event"], out["detected"]) == ("audian", "call.completed", True)
    issues = {(i["path"], i["kind"]) for i in out["issues"]}
    assert issues == {("$.data.call_id", "missing"), ("$.data.duration", "type"),
                      ("$.data.direction", "enum"), ("$.data.extra", "extra")}
    message = next(i["message"] for i in out["issues"] if i["kind"] == "type")
    assert message == "expected number, got string"


def test_shape_check_given_vendor_and_errors(server) -> None:
    unknown = post_json(server, "s2", {"hello": "world"})
    r = api(server, f"/api/captures/{unknown}/shape")
    assert r.status_code == 422 and "vendor" in r.json()["error"]
    out = api(server, f"/api/captures/{unknown}/shape", vendor="audian",
              event="call.completed").json()
    assert out["detected"] is False and out["vendor"] == "audian"
    assert ("$.hello", "extra") in {(i["path"], i["kind"]) for i in out["issues"]}
    assert api(server, f"/api/captures/{unknown}/shape", vendor="nope",
               event="x").status_code == 404
    empty = post(server, "s2", b"", method="POST")
    assert api(server, f"/api/captures/{empty}/shape").status_code == 422


def test_shape_check_of_a_get_delivery(server) -> None:
    # Audata's GET carries the payload as bracketed URL parameters.
    send(server, "audata", "Listener.updated", "s3", method="GET", seed=2)
    capture = last_capture(server, "s3")
    assert capture["method"] == "GET" and capture["query"]
    out = api(server, f"/api/captures/{capture['id']}/shape").json()
    assert (out["vendor"], out["event"]) == ("audata", "Listener.updated")
    assert out["payload_source"] == "query" and out["issues"] == []


# -- export --------------------------------------------------------------------------------------
def test_export_one_capture(server) -> None:
    cid = post_json(server, "e1", {"a": 1}, path="/sub?x=1")
    r = api(server, f"/api/captures/{cid}/export", format="har")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    har = r.json()
    jsonschema.validate(har, HAR_SCHEMA)
    entry = har["log"]["entries"][0]
    assert entry["request"]["url"] == f"{server.url}/in/e1/sub?x=1"
    assert entry["request"]["postData"]["text"] == '{"a": 1}'

    r = api(server, f"/api/captures/{cid}/export", format="curl")
    assert r.headers["content-type"].startswith("text/plain")
    assert f"--url {server.url}/in/e1/sub?x=1" in r.text.replace("'", "")
    r = api(server, f"/api/captures/{cid}/export", format="httpie", url="http://example.test/h")
    assert r.text.startswith("http ") and "http://example.test/h" in r.text
    line = api(server, f"/api/captures/{cid}/export", format="jsonl").text
    assert json.loads(line)["id"] == cid
    assert api(server, f"/api/captures/{cid}/export", format="zip").status_code == 400
    assert api(server, "/api/captures/999999/export", format="har").status_code == 404


def test_export_a_whole_bin(server) -> None:
    ids = [post_json(server, "e2", {"n": n}) for n in range(3)]
    binary = bytes(range(256))
    ids.append(post(server, "e2", binary, {"Content-Type": "application/octet-stream"}))

    r = api(server, "/api/export", bin="e2", format="har")
    assert r.status_code == 200 and 'filename="e2.har"' in r.headers["content-disposition"]
    har = r.json()
    jsonschema.validate(har, HAR_SCHEMA)
    assert [e["_captureId"] for e in har["log"]["entries"]] == ids  # oldest first
    assert har["log"]["entries"][-1]["request"]["postData"]["_encoding"] == "base64"

    r = api(server, "/api/export", bin="e2", format="jsonl")
    assert r.status_code == 200 and 'filename="e2.jsonl"' in r.headers["content-disposition"]
    assert r.headers["content-type"].startswith("application/x-ndjson")
    records = [json.loads(line) for line in r.text.splitlines()]
    assert [rec["id"] for rec in records] == ids
    assert decode_body(records[-1]["body"], records[-1]["body_encoding"]) == binary
    assert json.loads(decode_body(records[0]["body"], records[0]["body_encoding"])) == {"n": 0}

    assert api(server, "/api/export", bin="nope", format="jsonl").status_code == 404
    assert api(server, "/api/export", bin="e2", format="curl").status_code == 400
    assert api(server, "/api/export", format="har").status_code == 400


def test_verify_finds_the_send_when_the_bin_answers_otherwise(server) -> None:
    # A custom answer does not carry the capture id: the send is found by what it sent.
    r = httpx.put(f"{server.url}/api/bins/v-custom/response",
                  json={"status": 202, "body": "thanks"})
    assert r.status_code == 200, r.text
    secret = SECRETS["standard-webhooks"]
    send(server, "standard-webhooks", "invoice.paid", "v-custom", secret=secret)
    capture = last_capture(server, "v-custom")
    out = verify(server, capture["id"])
    assert out["secret_source"] == "delivery" and out["delivery"]["matched_by"] == "request"
    assert out["verification"]["valid"] is True
