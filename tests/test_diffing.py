"""Structural diffs of captured requests, and the shape check against vendor samples."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.diffing import (
    Change,
    InvalidIgnoreRuleError,
    RequestParts,
    ShapeIssue,
    diff_requests,
    shape_check,
    text_diff,
)


def req(
    body: bytes | Any = b"",
    *,
    content_type: str | None = "application/json",
    method: str = "POST",
    path: str = "/hook",
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
) -> RequestParts:
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return RequestParts(method, path, query, headers or [], body, content_type)


def body_changes(a: Any, b: Any, ignore: list[str] | None = None) -> list[dict[str, Any]]:
    return [c.to_dict() for c in diff_requests(req(a), req(b), ignore or [])]


def test_to_dict_shape_matches_contract() -> None:
    change = Change("$.sender.email", "changed", "a@x", "b@x", "body")
    assert change.to_dict() == {
        "path": "$.sender.email",
        "kind": "changed",
        "a": "a@x",
        "b": "b@x",
        "section": "body",
    }


def test_identical_requests_have_no_changes() -> None:
    a = req({"x": 1}, headers=[("A", "1")], query="q=1")
    assert diff_requests(a, a) == []


def test_nested_changes_added_and_removed() -> None:
    a = {"event": "Listener.updated", "sender": {"email": "a@x.com", "phone": "1"}}
    b = {"event": "Listener.updated", "sender": {"email": "b@x.com", "mobile": "2"}}
    assert body_changes(a, b) == [
        {"path": "$.sender.email", "kind": "changed", "a": "a@x.com", "b": "b@x.com",
         "section": "body"},
        {"path": "$.sender.phone", "kind": "removed", "a": "1", "b": None, "section": "body"},
        {"path": "$.sender.mobile", "kind": "added", "a": None, "b": "2", "section": "body"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("a", "b"),
    [(1, "1"), ({"k": 1}, [1]), (True, 1), (0, False), (None, 0), ("x", None), (1.5, "1.5")],
)
def test_type_changes(a: Any, b: Any) -> None:
    assert body_changes({"v": a}, {"v": b}) == [
        {"path": "$.v", "kind": "type_changed", "a": a, "b": b, "section": "body"}
    ]


def test_int_and_float_are_one_type_but_different_values() -> None:
    assert [c["kind"] for c in body_changes({"v": 1}, {"v": 1.0})] == ["changed"]


def test_key_order_and_whitespace_are_not_changes() -> None:
    a = b'{"a": 1, "b": {"c": [1, 2], "d": "x"}}'
    b = b'{\n  "b": {"d": "x",   "c": [1,\n 2]},\n  "a": 1\n}\n'
    assert diff_requests(req(a), req(b)) == []


def test_non_identifier_keys_are_quoted() -> None:
    changes = body_changes({"x-y": 1, "it's": 1, "ok_1": 1}, {"x-y": 2, "it's": 2, "ok_1": 2})
    assert [c["path"] for c in changes] == ["$['x-y']", "$['it\\'s']", "$.ok_1"]


def test_array_insertion_is_one_change() -> None:
    items = [{"id": i, "name": f"item {i}", "qty": i} for i in range(5)]
    inserted = {"id": 99, "name": "new", "qty": 0}
    changes = body_changes({"items": items}, {"items": [*items[:2], inserted, *items[2:]]})
    assert changes == [
        {"path": "$.items[2]", "kind": "added", "a": None, "b": inserted, "section": "body"}
    ]


def test_array_removal_is_one_change() -> None:
    changes = body_changes({"items": [1, 2, 3, 4]}, {"items": [1, 3, 4]})
    assert changes == [
        {"path": "$.items[1]", "kind": "removed", "a": 2, "b": None, "section": "body"}
    ]


def test_insertion_before_a_modified_item_keeps_them_apart() -> None:
    alpha = {"id": 1, "name": "alpha", "qty": 3}
    beta = {"id": 2, "name": "beta", "qty": 5}
    other = {"id": 7, "name": "zzzzz", "qty": 99}
    changes = body_changes([alpha, beta], [other, {**alpha, "qty": 4}, beta])
    assert [(c["path"], c["kind"]) for c in changes] == [
        ("$[0]", "added"),
        ("$[1].qty", "changed"),
    ]


def test_changed_item_in_place() -> None:
    changes = body_changes({"items": [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}]},
                           {"items": [{"id": 1, "n": "a"}, {"id": 2, "n": "B"}]})  # fmt: skip
    assert [(c["path"], c["a"], c["b"]) for c in changes] == [("$.items[1].n", "b", "B")]


def test_insertion_among_duplicates_is_one_change() -> None:
    """difflib.SequenceMatcher alone reports this as an insertion plus a deletion."""
    assert body_changes([0, 0, 0], [0, 9, 0, 0]) == [
        {"path": "$[1]", "kind": "added", "a": None, "b": 9, "section": "body"}
    ]


def test_very_long_lists_still_diff() -> None:
    changes = body_changes(list(range(600)), list(range(1000, 1600)))
    assert len(changes) == 600 and {c["kind"] for c in changes} == {"changed"}
    changes = body_changes(list(range(3000)), [*range(1500), -1, *range(1500, 3000)])
    assert [(c["path"], c["kind"]) for c in changes] == [("$[1500]", "added")]


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(st.integers(0, 5) | st.text(max_size=3), max_size=12),
    value=st.integers(100, 200),
    data=st.data(),
)
def test_any_single_insertion_is_one_added(items: list[Any], value: int, data: Any) -> None:
    index = data.draw(st.integers(0, len(items)))
    changes = body_changes({"l": items}, {"l": [*items[:index], value, *items[index:]]})
    assert len(changes) == 1
    assert changes[0]["kind"] == "added" and changes[0]["b"] == value
    if items:
        gone = data.draw(st.integers(0, len(items) - 1))
        changes = body_changes({"l": items}, {"l": [*items[:gone], *items[gone + 1 :]]})
        assert len(changes) == 1
        assert changes[0]["kind"] == "removed" and changes[0]["a"] == items[gone]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_reformatting_never_changes(value: Any) -> None:
    compact = json.dumps(value, separators=(",", ":")).encode()
    pretty = json.dumps(value, indent=3, sort_keys=True).encode()
    assert diff_requests(req(compact), req(pretty)) == []


# --- forms, query strings, multipart ----------------------------------------------------------

FORM = "application/x-www-form-urlencoded"


def test_form_fields_and_repeats() -> None:
    a = req(b"name=Ann&tag=a&tag=b&gone=1", content_type=FORM)
    b = req(b"tag=a&tag=c&name=Ann+Lee&new=", content_type=f"{FORM}; charset=utf-8")
    assert [c.to_dict() for c in diff_requests(a, b)] == [
        {"path": "$.name", "kind": "changed", "a": "Ann", "b": "Ann Lee", "section": "body"},
        {"path": "$.tag[1]", "kind": "changed", "a": "b", "b": "c", "section": "body"},
        {"path": "$.gone", "kind": "removed", "a": "1", "b": None, "section": "body"},
        {"path": "$.new", "kind": "added", "a": None, "b": "", "section": "body"},
    ]


def test_field_becoming_repeated_is_changed_not_type_changed() -> None:
    a = req(b"", query="t=x")
    b = req(b"", query="t=x&t=y")
    assert [c.to_dict() for c in diff_requests(a, b)] == [
        {"path": "$.t", "kind": "changed", "a": "x", "b": ["x", "y"], "section": "query"}
    ]


def test_query_fields_use_dollar_paths_with_query_section() -> None:
    a = req(b"", query="event=Listener.updated&sender%5Bfirst_name%5D=Ann&x=1")
    b = req(b"", query="x=1&sender%5Bfirst_name%5D=Bob&event=Listener.updated")
    assert [c.to_dict() for c in diff_requests(a, b)] == [
        {"path": "$['sender[first_name]']", "kind": "changed", "a": "Ann", "b": "Bob",
         "section": "query"},
    ]  # fmt: skip


def multipart(*parts: tuple[str, bytes], boundary: str = "XyZ") -> RequestParts:
    body = b""
    for head, content in parts:
        body += f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return req(body, content_type=f'multipart/form-data; boundary="{boundary}"')


def test_multipart_fields_and_files() -> None:
    png_a = b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256))
    png_b = png_a + b"\r\n"  # a trailing CRLF in the file must count: contents are byte-exact
    a = multipart(
        ('Content-Disposition: form-data; name="title"', b"Hello"),
        ('Content-Disposition: form-data; name="file"; filename="a.png"\r\n'
         "Content-Type: image/png", png_a),
    )  # fmt: skip
    b = multipart(
        ('Content-Disposition: form-data; name="title"', b"Hello!"),
        ('Content-Disposition: form-data; name="file"; filename="a.png"\r\n'
         "Content-Type: image/png", png_b),
        boundary="other-boundary",
    )  # fmt: skip
    changes = [c.to_dict() for c in diff_requests(a, b)]
    assert changes == [
        {"path": "$.title", "kind": "changed", "a": "Hello", "b": "Hello!", "section": "body"},
        {"path": "$.file.size", "kind": "changed", "a": len(png_a), "b": len(png_b),
         "section": "body"},
        {"path": "$.file.sha256", "kind": "changed", "a": hashlib.sha256(png_a).hexdigest(),
         "b": hashlib.sha256(png_b).hexdigest(), "section": "body"},
    ]  # fmt: skip


def test_multipart_same_content_different_boundary_is_no_change() -> None:
    part = ('Content-Disposition: form-data; name="f"; filename="x.bin"', b"\x00\xff")
    assert diff_requests(multipart(part, boundary="a"), multipart(part, boundary="b")) == []


def test_malformed_multipart_falls_back_to_bytes() -> None:
    a = req(b"not multipart", content_type="multipart/form-data; boundary=zz")
    b = req(b"not multipart either", content_type="multipart/form-data; boundary=zz")
    assert [(c.path, c.kind) for c in diff_requests(a, b)] == [("$", "changed")]


# --- headers, method, path --------------------------------------------------------------------


def test_headers_compared_case_insensitively_with_repeats() -> None:
    a = req({}, headers=[("Content-Type", "application/json"), ("X-Tag", "1"), ("X-Old", "o")])
    b = req({}, headers=[("x-tag", "1"), ("content-type", "application/json"), ("x-tag", "2"),
                         ("X-New", "n")])  # fmt: skip
    assert [c.to_dict() for c in diff_requests(a, b)] == [
        {"path": "header:x-tag", "kind": "changed", "a": "1", "b": ["1", "2"],
         "section": "headers"},
        {"path": "header:x-old", "kind": "removed", "a": "o", "b": None, "section": "headers"},
        {"path": "header:x-new", "kind": "added", "a": None, "b": "n", "section": "headers"},
    ]  # fmt: skip


def test_method_and_path() -> None:
    changes = diff_requests(req({}, method="PUT", path="/a"), req({}, method="POST", path="/b"))
    assert [(c.section, c.path, c.a, c.b) for c in changes] == [
        ("method", "method", "PUT", "POST"),
        ("path", "path", "/a", "/b"),
    ]
    assert diff_requests(req({}, path="/a"), req({}, path="/b"), ["path"]) == []


# --- ignore rules -----------------------------------------------------------------------------


def test_ignore_rules_including_wildcards() -> None:
    a = req(
        {"sentAt": "1", "webhookCallId": "u1", "items": [{"id": 1, "n": "a"}], "keep": 1},
        headers=[("Date", "Mon"), ("X-Keep", "1")],
    )
    b = req(
        {"sentAt": "2", "webhookCallId": "u2", "items": [{"id": 5, "n": "a"}], "keep": 2},
        headers=[("date", "Tue"), ("X-Keep", "1")],
    )
    ignore = ["$.sentAt", "$.webhookCallId", "header:Date", "$.items[*].id"]
    assert [c.path for c in diff_requests(a, b, ignore)] == ["$.keep"]


def test_ignored_ids_do_not_defeat_list_alignment() -> None:
    """Every item's id differs, but with ids ignored an insertion is still one change."""
    a = {"items": [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}]}
    b = {"items": [{"id": 9, "n": "z"}, {"id": 3, "n": "a"}, {"id": 4, "n": "b"}]}
    changes = body_changes(a, b, ["$.items[*].id"])
    assert [(c["path"], c["kind"]) for c in changes] == [("$.items[0]", "added")]


def test_ignoring_a_parent_ignores_its_subtree_and_added_keys() -> None:
    changes = body_changes({"sender": {"a": 1}, "x": 1}, {"sender": {"a": 2, "b": 3}, "x": 1})
    assert changes
    assert body_changes({"sender": {"a": 1}}, {"sender": {"a": 2, "b": 3}}, ["$.sender"]) == []
    assert body_changes({"a": {"k": 1}}, {"a": {"k": 2}}, ["$.*.k"]) == []


def test_dollar_rules_cover_query_and_section_prefixes_narrow_them() -> None:
    a = req({"sentAt": 1}, query="sentAt=1")
    b = req({"sentAt": 2}, query="sentAt=2")
    assert diff_requests(a, b, ["$.sentAt"]) == []
    assert [c.section for c in diff_requests(a, b, ["query:$.sentAt"])] == ["body"]
    assert [c.section for c in diff_requests(a, b, ["body:$.sentAt"])] == ["query"]


def test_header_wildcards() -> None:
    a = req({}, headers=[("X-Amzn-Trace-Id", "1"), ("X-Amzn-Req", "1")])
    b = req({}, headers=[("x-amzn-trace-id", "2"), ("x-amzn-req", "2")])
    assert diff_requests(a, b, ["header:x-amzn-*"]) == []


def test_invalid_ignore_rule() -> None:
    with pytest.raises(InvalidIgnoreRuleError, match="sentAt"):
        diff_requests(req({}), req({}), ["sentAt"])


# --- bodies that are not structured -----------------------------------------------------------


def test_non_json_bodies() -> None:
    a = req(b"hello\n", content_type="text/plain")
    b = req(b"hello world\n", content_type="text/plain")
    assert [c.to_dict() for c in diff_requests(a, b)] == [
        {"path": "$", "kind": "changed", "a": "hello\n", "b": "hello world\n", "section": "body"}
    ]
    same = req(b"hello\n", content_type="text/plain")
    assert diff_requests(a, same) == []


def test_binary_bodies_are_described_not_embedded() -> None:
    a = req(b"\xff\xfe\x00", content_type="application/octet-stream")
    b = req(b"\xff\xfe\x01", content_type="application/octet-stream")
    (change,) = diff_requests(a, b)
    assert change.path == "$" and change.kind == "changed"
    assert change.a.startswith("<3 bytes, sha256 ")
    json.dumps(change.to_dict())  # always serialisable


def test_json_is_sniffed_when_mislabelled() -> None:
    a = req(b'{"a": 1}', content_type="text/plain")
    b = req(b'{"a":2}', content_type=None)
    assert [c.path for c in diff_requests(a, b)] == ["$.a"]
    upper = req(b'{"a": 1}', content_type="application/JSON")  # ApiRTC's spelling
    assert [c.path for c in diff_requests(upper, b)] == ["$.a"]


def test_invalid_json_is_compared_as_text() -> None:
    a = req(b'{"a": 1', content_type="application/json")
    b = req(b'{"a": 2', content_type="application/json")
    assert [(c.path, c.a, c.b) for c in diff_requests(a, b)] == [("$", '{"a": 1', '{"a": 2')]


def test_body_appearing_or_disappearing() -> None:
    assert [(c.path, c.kind, c.b) for c in diff_requests(req(b""), req({"a": 1}))] == [
        ("$", "added", {"a": 1})
    ]
    assert [(c.path, c.kind) for c in diff_requests(req({"a": 1}), req(b""))] == [("$", "removed")]


def test_text_diff() -> None:
    assert text_diff(b"same", b"same") == ""
    diff = text_diff(b"a\nb\nc\n", b"a\nB\nc")
    assert diff.splitlines() == ["--- a", "+++ b", "@@ -1,3 +1,3 @@", " a", "-b", "+B", " c"]


def test_text_diff_binary() -> None:
    note = text_diff(b"\x00\x01\x02", b"\x00\x01\x03\x04")
    assert note.startswith("Binary bodies differ (first difference at byte 2)")
    assert "a is 3 bytes" in note and "b is 4 bytes" in note


# --- shape check ------------------------------------------------------------------------------

REFERENCE = {
    "event": "Listener.updated",
    "sentAt": "2024-01-15T10:30:00.000+11:00",
    "sender_id": 12,
    "sender": {"id": 12, "email": "a@x.com", "tags": ["vip"], "nickname": None},
    "items": [{"kind": "a", "n": 1}, {"kind": "b", "label": "x"}],
}


def test_shape_check_ignores_values() -> None:
    payload = json.loads(json.dumps(REFERENCE))
    payload["sentAt"] = "2025-06-01T00:00:00.000+10:00"
    payload["sender"].update(id=99, email="other@y.org", tags=[], nickname="Bo")
    assert shape_check(payload, REFERENCE) == []


def test_shape_check_reports_missing_extra_types_and_enums() -> None:
    payload = {
        "event": "Listener.exploded",
        "sentAt": 1705314600,
        "sender_id": 12,
        "sender": {"id": "12", "tags": ["vip", 3], "extra": True, "nickname": None},
        "items": [{"kind": "b", "label": "y"}, {"kind": "a", "n": "1"}],
    }
    issues = shape_check(
        payload, REFERENCE, enums={"$.event": ["Listener.created", "Listener.updated"],
                                   "$.items[*].kind": ["a", "b"]}
    )  # fmt: skip
    assert issues == [
        ShapeIssue("$.sentAt", "type", "expected string, got number"),
        ShapeIssue("$.sender.id", "type", "expected number, got string"),
        ShapeIssue("$.sender.email", "missing", "missing key 'email'"),
        ShapeIssue("$.sender.tags[1]", "type", "expected string, got number"),
        ShapeIssue("$.sender.extra", "extra", "unexpected key 'extra'"),
        ShapeIssue("$.items[1].n", "type", "expected number, got string"),
        ShapeIssue(
            "$.event", "enum",
            '"Listener.exploded" is not one of: "Listener.created", "Listener.updated"',
        ),
    ]  # fmt: skip
    assert issues[0].to_dict() == {
        "path": "$.sentAt",
        "kind": "type",
        "message": "expected string, got number",
    }


def test_shape_check_bool_is_not_a_number() -> None:
    assert shape_check({"n": True}, {"n": 1}) == [
        ShapeIssue("$.n", "type", "expected number, got boolean")
    ]
