"""Search: the query syntax (inspector/query.py) and ``GET /api/captures?q=`` through a real server.

The index is maintained by triggers in the capture's own transaction, so a capture is
searchable as soon as it is answered, and every delete (one capture, a cleared bin, retention)
takes its index entries with it: some tests look inside the FTS index to prove the entries are
gone, not just hidden.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from inspector.query import (
    Bin,
    ContentType,
    Header,
    Method,
    QueryError,
    Received,
    Status,
    Text,
    parse,
)
from inspector.query import Path as PathClause
from inspector.storage.db import _split_sql, migrations
from inspector.storage.search import explain, glob_literal, like_pattern, literal_fts

from .conftest import Served


# -- helpers --------------------------------------------------------------------------------------
def send(srv: Served, bin_name: str, body: bytes | str = b"", path: str = "",
         method: str = "POST", headers: dict[str, str] | None = None, query: str = "") -> int:
    url = f"{srv.url}/in/{bin_name}{path}" + (f"?{query}" if query else "")
    r = httpx.request(method, url, content=body, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def search(srv: Served, q: str, bin_name: str | None = None, **params: object) -> list[int]:
    r = httpx.get(srv.url + "/api/captures",
                  params={"q": q, **({"bin": bin_name} if bin_name else {}), **params})
    assert r.status_code == 200, (q, r.status_code, r.text)
    return [c["id"] for c in r.json()["captures"]]


def index_hits(db: Path, match: str) -> list[int]:
    """Rowids straight from the FTS index, without the join that hides deleted captures."""
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute(
            "SELECT rowid FROM captures_fts WHERE captures_fts MATCH ? ORDER BY rowid", (match,))]
    finally:
        conn.close()


@pytest.fixture
def corpus(server: Served) -> dict[str, int]:
    """A handful of captures across two bins with known words, headers and shapes."""
    ids = {}
    ids["audian"] = send(server, "alpha", b'{"event":"call.completed","agent":"Ada Lovelace"}',
                         path="/orders/17", headers={
                             "Content-Type": "application/json",
                             "X-Audian-Signature": "t=1,v1=abc",
                             "User-Agent": "Audian-Webhooks/2.1"})
    ids["stripe"] = send(server, "alpha", b'{"type":"invoice.paid","note":"completed call"}',
                         path="/orders-old", headers={
                             "Content-Type": "application/vnd.api+json; charset=utf-8",
                             "Stripe-Signature": "t=2,v1=def",
                             "User-Agent": "Stripe/1.0"})
    ids["form"] = send(server, "beta", "name=Zoë&note=café crème".encode(), path="/forms/signup",
                       method="PUT", headers={
                           "Content-Type": "application/x-www-form-urlencoded",
                           "X-Trace": "cafe creme trace"})
    ids["get"] = send(server, "beta", method="GET", path="/orders/17/items",
                      query="ticket=tk_991&action=update", headers={"Signature": "plain"})
    ids["binary"] = send(server, "beta", bytes(range(256)) * 4, path="/upload",
                         headers={"Content-Type": "application/octet-stream",
                                  "X-Binary-Marker": "yes"})
    return ids


# -- free text ------------------------------------------------------------------------------------
def test_free_text_over_body_headers_path_and_query(server: Served, corpus: dict) -> None:
    assert search(server, "Lovelace") == [corpus["audian"]]
    assert search(server, "lovelace") == [corpus["audian"]]  # any case
    assert search(server, "Audian-Webhooks") == [corpus["audian"]]  # a header value
    assert search(server, "x-audian-signature") == [corpus["audian"]]  # a header name
    assert search(server, "tk_991") == [corpus["get"]]  # the query string
    assert search(server, "signup") == [corpus["form"]]  # the path
    assert search(server, "CRÈME") == [corpus["form"]]  # accents and case folded
    assert search(server, "zoe") == [corpus["form"]]
    assert search(server, "completed") == [corpus["stripe"], corpus["audian"]]  # newest first
    assert search(server, "completed Lovelace") == [corpus["audian"]]  # AND
    assert search(server, "nowhere-to-be-found") == []
    assert search(server, "Lovel*") == [corpus["audian"]]  # prefix
    assert search(server, "completed", "beta") == []
    assert search(server, "yes") == [corpus["binary"]]  # binary body, headers still indexed


def test_quoted_phrase_keeps_word_order(server: Served, corpus: dict) -> None:
    assert search(server, '"call completed"') == [corpus["audian"]]  # call.completed
    assert search(server, '"completed call"') == [corpus["stripe"]]
    assert search(server, '"Ada Lovelace"') == [corpus["audian"]]
    assert search(server, '"Lovelace Ada"') == []


def test_negation(server: Served, corpus: dict) -> None:
    assert search(server, "completed -Lovelace") == [corpus["stripe"]]
    assert search(server, '-"call completed"', "alpha") == [corpus["stripe"]]
    assert search(server, "-method:POST") == [corpus["get"], corpus["form"]]
    assert search(server, "-header:signature", "beta") == [corpus["binary"], corpus["form"]]
    assert corpus["get"] not in search(server, "-bin:beta")


def test_a_capture_is_searchable_as_soon_as_it_is_answered(server: Served) -> None:
    for i in range(20):
        cid = send(server, "fresh", f'{{"n":"word{i}x"}}')
        assert search(server, f"word{i}x") == [cid]


# -- filters --------------------------------------------------------------------------------------
def test_method_filter(server: Served, corpus: dict) -> None:
    assert search(server, "method:PUT") == [corpus["form"]]
    assert search(server, "method:put") == [corpus["form"]]
    assert search(server, "method:GET,PUT") == [corpus["get"], corpus["form"]]
    assert search(server, "Method:POST", "alpha") == [corpus["stripe"], corpus["audian"]]
    assert search(server, "method:PATCH") == []


def test_path_filter_exact_below_and_glob(server: Served, corpus: dict) -> None:
    assert search(server, "path:/orders/17") == [corpus["get"], corpus["audian"]]  # and below
    assert search(server, "path:/orders") == [corpus["get"], corpus["audian"]]  # not -old
    assert search(server, "path:orders") == [corpus["get"], corpus["audian"]]  # / implied
    assert search(server, "path:/orders*") == [corpus["get"], corpus["stripe"], corpus["audian"]]
    assert search(server, "path:*/items") == [corpus["get"]]
    assert search(server, "path:/ord*/17") == [corpus["audian"]]
    assert search(server, "path:/orders/1") == []  # not a prefix of the segment 17
    assert search(server, "path:/Orders") == []  # paths are case-sensitive
    assert len(search(server, "path:/")) == 5


def test_header_presence_and_value(server: Served, corpus: dict) -> None:
    assert search(server, "header:x-audian-signature") == [corpus["audian"]]
    assert search(server, "header:X-AUDIAN-SIGNATURE") == [corpus["audian"]]
    # Exact names: signature is not x-audian-signature nor stripe-signature.
    assert search(server, "header:signature") == [corpus["get"]]
    assert search(server, "header:audian") == []
    assert search(server, "header:user-agent=stripe/1.0") == [corpus["stripe"]]
    assert search(server, "header:user-agent=Audian*") == [corpus["audian"]]
    assert search(server, "header:user-agent=*1.0") == [corpus["stripe"]]
    assert search(server, "header:user-agent=Audian") == []  # the whole value, unless *
    assert search(server, 'header:x-trace="cafe creme trace"') == [corpus["form"]]
    assert search(server, 'header:x-trace="cafe creme"') == []
    assert search(server, "header:content-type=*json*") == [corpus["stripe"], corpus["audian"]]
    assert search(server, "header:x-nope") == []


def test_type_filter(server: Served, corpus: dict) -> None:
    assert search(server, "type:json") == [corpus["stripe"], corpus["audian"]]
    assert search(server, "type:application/json") == [corpus["audian"]]
    assert search(server, "type:form") == [corpus["form"]]
    assert search(server, "type:urlencoded") == [corpus["form"]]
    assert search(server, "type:encoded") == []  # inside a word, not at its start
    assert search(server, "type:octet") == [corpus["binary"]]
    assert search(server, "type:js") == []  # words, not stems
    assert search(server, "-type:json", "alpha") == []


def test_bin_filter_and_bin_parameter(server: Served, corpus: dict) -> None:
    assert search(server, "bin:beta") == [corpus["binary"], corpus["get"], corpus["form"]]
    assert search(server, "bin:beta method:PUT") == [corpus["form"]]
    assert search(server, "bin:beta", "alpha") == []  # both must hold
    assert search(server, "method:POST", "beta") == [corpus["binary"]]


def test_status_filter(server: Served) -> None:
    """The status each capture was answered with: the bin's configured one at the time."""
    send(server, "st", b"first")
    for status, body in [(404, b"second"), (503, b"third")]:
        r = httpx.put(server.url + "/api/bins/st/response", json={"status": status})
        assert r.status_code == 200, r.text
        assert httpx.post(server.url + "/in/st", content=body).status_code == status
    caps = httpx.get(server.url + "/api/captures", params={"bin": "st"}).json()["captures"]
    ids = {c["status"]: c["id"] for c in caps}
    assert set(ids) == {200, 404, 503}
    assert search(server, "status:404") == [ids[404]]
    assert search(server, "status:4xx") == [ids[404]]
    assert search(server, "status:4XX,503") == [ids[503], ids[404]]
    assert search(server, "status:500-599") == [ids[503]]
    assert search(server, "-status:2xx") == [ids[503], ids[404]]
    assert search(server, "status:200 first") == [ids[200]]
    assert search(server, "status:200 second") == []
    assert search(server, "status:200", "st") == [ids[200]]


def test_before_and_after(server: Served, corpus: dict) -> None:
    caps = {c["id"]: c for c in httpx.get(server.url + "/api/captures").json()["captures"]}
    middle = caps[corpus["form"]]["received_at"]
    assert search(server, f"after:{middle}") == [corpus["binary"], corpus["get"], corpus["form"]]
    assert search(server, f"before:{middle}") == [corpus["stripe"], corpus["audian"]]
    day = middle[:10]
    assert len(search(server, f"after:{day}")) == 5  # the whole day
    assert search(server, f"before:{day}") == []
    assert len(search(server, "after:2000-01-01T10:00 before:2999-01-01")) == 5
    assert len(search(server, "after:2000-01-01T10:00:00+02:00")) == 5


def test_combinations(server: Served, corpus: dict) -> None:
    assert search(server, "method:POST header:user-agent type:json completed path:/orders*",
                  "alpha") == [corpus["stripe"], corpus["audian"]]
    assert search(server, "method:POST header:x-audian-signature Lovelace") == [corpus["audian"]]
    assert search(server, "method:GET header:signature=plain tk_991 path:/orders bin:beta") == [
        corpus["get"]]
    assert search(server, "method:GET header:signature=other") == []


# -- safety ---------------------------------------------------------------------------------------
HOSTILE = ['"', '""', '"""', "*", "**", "-", "--", "NEAR(", "NEAR(a b)", "')--", "'; DROP TABLE",
           "a OR b", "a AND", "NOT", "{body}:x", "^x", "(", ")", "\\", "%",
           "_", "\x00", "a\x00b", '"a\x00', "emoji 😀", "日本語", "ﷺ", "Ω≈ç√", "\u200b",
           "header:x=\"", "path:*", "path:**", "path:[", "path:?", "header:x=%", "type:*json"]


@pytest.mark.parametrize("q", HOSTILE)
def test_hostile_input_never_errors_or_injects(server: Served, q: str) -> None:
    send(server, "safe", b'{"a":"b"}')
    r = httpx.get(server.url + "/api/captures", params={"q": q})
    assert r.status_code == 200, (q, r.text)
    assert isinstance(r.json()["captures"], list)
    # The table is still there and still searchable.
    assert httpx.get(server.url + "/api/captures", params={"q": "a"}).json()["captures"]


def test_operators_typed_by_a_user_are_just_words(server: Served) -> None:
    plain = send(server, "ops", b"cats and dogs")
    near = send(server, "ops", b"NEAR OR AND NOT")
    assert search(server, "cats OR zebras") == []  # OR is a word here, not an operator
    assert search(server, "NEAR") == [near]
    assert search(server, "NOT") == [near]
    assert search(server, "cats NOT") == []
    assert search(server, "{body}:cats") == []  # not a column filter: the words body cats
    assert search(server, "dogs*") == [plain]


def test_header_values_that_look_like_json_structure(server: Served) -> None:
    odd = send(server, "json", headers={"X-Weird": 'abc[', "X-Quote": 'say "hi","there"',
                                        "X-After": "found"})
    assert search(server, "header:x-weird=abc[") == [odd]
    assert search(server, 'header:x-quote=say "hi","there"') == []  # the lexer eats quotes
    assert search(server, "header:x-quote=*there*") == [odd]
    assert search(server, "header:x-after=found") == [odd]
    assert search(server, "header:x-after") == [odd]


def test_percent_and_underscore_are_literal_in_header_values(server: Served) -> None:
    a = send(server, "lit", headers={"X-Val": "100%_done"})
    send(server, "lit", headers={"X-Val": "100xxdone"})
    assert search(server, "header:x-val=100%_done") == [a]
    assert search(server, "header:x-val=100%*") == [a]


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("q", "named"), [
    ("status:abc", "status:abc"),
    ("status:700", "status:700"),
    ("status:5xx,2x", "status:5xx,2x"),
    ("metod:POST", "metod:"),
    ("after:yesterday", "after:yesterday"),
    ("before:2026-13-01", "before:2026-13-01"),
    ("header:", "header:"),
    ("header:bad/name", "header:bad/name"),
    ("bin:no/pe", "no/pe"),
    ("method:", "method:"),
    ("type:---", "type:"),
])
def test_parse_errors_are_400_with_a_message_naming_the_token(server: Served, q: str,
                                                              named: str) -> None:
    r = httpx.get(server.url + "/api/captures", params={"q": q})
    assert r.status_code == 400, (q, r.status_code, r.text)
    assert named in r.json()["error"]


# -- pagination -----------------------------------------------------------------------------------
def test_pagination_of_search_results_with_before(server: Served) -> None:
    wanted = []
    for i in range(37):
        cid = send(server, "pages", b"needle haystack" if i % 3 else b"haystack only")
        if i % 3:
            wanted.append(cid)
    for q in ("needle", "needle method:POST", "needle bin:pages", "-only"):
        seen, cursor = [], None
        while True:
            params = {"limit": 5, **({"before": cursor} if cursor is not None else {})}
            r = httpx.get(server.url + "/api/captures", params={"q": q, **params}).json()
            assert len(r["captures"]) <= 5
            seen += [c["id"] for c in r["captures"]]
            cursor = r["next"]
            if cursor is None:
                break
            assert cursor == seen[-1]
        assert seen == wanted[::-1], q
    # A cursor in the middle: only older matches.
    assert search(server, "needle", before=wanted[10], limit=100) == wanted[:10][::-1]
    # An exact last page has no next.
    r = httpx.get(server.url + "/api/captures", params={"q": "needle", "limit": len(wanted)})
    assert r.json()["next"] is None


# -- deletes and retention ------------------------------------------------------------------------
def test_deleted_captures_vanish_from_search_and_index(server: Served) -> None:
    keep = send(server, "gone", b"ephemeral keep")
    drop = send(server, "gone", b"ephemeral drop")
    other = send(server, "gone2", b"ephemeral other")
    assert search(server, "ephemeral") == [other, drop, keep]
    assert httpx.delete(f"{server.url}/api/captures/{drop}").status_code == 200
    assert search(server, "ephemeral") == [other, keep]
    assert index_hits(server.db, "drop") == []
    assert httpx.delete(server.url + "/api/captures", params={"bin": "gone"}).status_code == 200
    assert search(server, "ephemeral") == [other]
    assert index_hits(server.db, "ephemeral") == [other]
    assert index_hits(server.db, "bin : gone") == []


def test_pruned_captures_vanish_from_search_and_index(make_server) -> None:
    srv = make_server(max_captures=3)
    served = Served(srv.url, srv.port, Path(srv.config.db), "werkzeug")
    ids = [send(served, "small", f"retained word{i} common".encode()) for i in range(6)]
    assert search(served, "common") == ids[3:][::-1]
    for i in range(3):
        assert search(served, f"word{i}") == []
        assert index_hits(served.db, f"word{i}") == []
    assert index_hits(served.db, "common") == ids[3:]


def test_existing_captures_are_indexed_by_the_migration(tmp_path: Path, make_server) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for version, _name, sql in migrations():
        if version == 1:
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO captures (bin, method, path, query, content_type, size, received_at,"
        " headers, body) VALUES ('old', 'POST', '/legacy', '', 'application/json', 13,"
        " '2026-01-01T00:00:00.000000Z', ?, ?)", ('[["X-Old","1"]]', b'{"was":"here"}'))
    conn.execute("INSERT INTO bins (name, created_at, count) VALUES ('old', '2026', 1)")
    conn.close()
    srv = make_server(db=str(db))
    served = Served(srv.url, srv.port, db, "werkzeug")
    assert search(served, "here") == [1]
    assert search(served, "header:x-old path:/legacy") == [1]


# -- query plans ----------------------------------------------------------------------------------
def test_index_drives_newest_first_without_sorting(tmp_path: Path) -> None:
    """The index yields rowids newest first: LIMIT stops it early, common term or rare."""
    from inspector.storage import Database

    db = Database(tmp_path / "plan.db")
    try:
        for q, b in [("word", None), ("method:POST", None), ("header:x-a", "b"),
                     ("word bin:b", None), ("word -other", "b")]:
            plan = db.read(lambda c, q=q, b=b: explain(c, q, b))
            assert "VIRTUAL TABLE" in plan[0], (q, plan)
            assert not any("TEMP B-TREE" in line for line in plan), (q, plan)
        plan = db.read(lambda c: explain(c, "after:2026-01-01", "b"))
        assert any("captures_bin_id" in line for line in plan), plan
        assert not any("TEMP B-TREE" in line for line in plan), plan
        for q in ("status:500", "status:5xx", "status:200,201", "-status:200"):
            plan = db.read(lambda c, q=q: explain(c, q))
            assert not any("TEMP B-TREE" in line for line in plan), (q, plan)
        plan = db.read(lambda c: explain(c, "status:500"))
        assert any("captures_status" in line for line in plan), plan
    finally:
        db.close()


# -- the parser alone -----------------------------------------------------------------------------
def test_parse_clauses() -> None:
    assert parse('foo "two words" -bar baz* ab* "x y"* method:post,GET').clauses == (
        Text("foo"), Text("two words"), Text("bar", negated=True), Text("baz", prefix=True),
        Text("ab"), Text("x y"), Method(("POST", "GET")))  # a stem under 3 letters: the word
    assert parse("path:orders -path:/a/*/b").clauses == (
        PathClause("/orders"), PathClause("/a/*/b", negated=True))
    assert parse('header:X-Sig header:x-note="a b" -header:x=1').clauses == (
        Header("x-sig"), Header("x-note", "a b"), Header("x", "1", negated=True))
    assert parse("type:json bin:demo").clauses == (ContentType("json"), Bin("demo"))
    assert parse("status:404 -status:5xx,200-204").clauses == (
        Status(((404, 404),)), Status(((500, 599), (200, 204)), negated=True))
    assert parse("after:2026-11-23 before:2026-11-23T10:00").clauses == (
        Received("after", "2026-11-23T00:00:00.000000Z"),
        Received("before", "2026-11-23T10:00:00.000000Z"))
    assert parse("after:2026-11-23T11:00+01:00").clauses == (
        Received("after", "2026-11-23T10:00:00.000000Z"),)
    assert parse("https://example.com/x").clauses == (Text("https://example.com/x"),)
    assert parse('"a:b" 10:30').clauses == (Text("a:b"), Text("10:30"))
    assert parse('"un\\"quote" "back\\\\slash"').clauses == (
        Text('un"quote'), Text("back\\slash"))
    assert not parse('  " * \')-- -  ')
    assert parse('"unterminated phrase').clauses == (Text("unterminated phrase"),)


def test_parse_errors_name_the_token() -> None:
    with pytest.raises(QueryError, match="'600' in 'status:600'"):
        parse("status:600")
    with pytest.raises(QueryError, match="'nope:'"):
        parse("a nope:x")
    with pytest.raises(QueryError, match="after:soon"):
        parse("after:soon")
    assert issubclass(QueryError, ValueError)


def test_pattern_helpers() -> None:
    assert literal_fts("path", "/orders") == '{path} : "/orders"'
    assert literal_fts("path", "/ord*") == '{path} : "/ord" *'
    assert literal_fts("path", "/a/or*") == '{path} : "/a/"'  # a short stem is dropped
    assert literal_fts("path", "*ders/17") == '{path} : "/17"'
    assert literal_fts("path", "/a/*/b") == '{path} : "/a/" AND {path} : "/b"'
    assert literal_fts("path", "*") is None
    assert glob_literal("/a?[b]*") == "/a[?][[]b]*"
    assert like_pattern("100%_*\\") == "100\\%\\_%\\\\"


def test_background_indexer_catches_up_and_unindexed_deletes_are_safe(tmp_path) -> None:
    import sqlite3
    import time

    from inspector.storage import CaptureStore, Database, NewCapture
    from inspector.storage.search import index_step, search_captures

    db = Database(tmp_path / "idx.db")  # no background step yet: nothing gets indexed
    store = CaptureStore(db)
    new = [store.add(NewCapture("b", "POST", "", "", [("X-Kind", "zebra")], b'{"animal":"zebra"}',
                                None)).capture.id for _ in range(5)]
    store.delete(new[0])  # deleted before it was ever indexed: must not touch the index
    db.set_background(index_step)
    store.add(NewCapture("b", "POST", "", "", [], b"last", None))
    deadline = time.monotonic() + 5
    con = sqlite3.connect(tmp_path / "idx.db")
    while time.monotonic() < deadline:
        upto = con.execute("SELECT indexed_upto FROM search_state").fetchone()[0]
        if upto == store.max_id():
            break
        time.sleep(0.02)
    assert upto == store.max_id()
    assert [c.id for c in search_captures(store, "zebra", None, 50, None).captures] == \
        new[:0:-1]
    store.delete(new[1])  # an indexed one: removed from the index too
    assert [c.id for c in search_captures(store, "zebra", None, 50, None).captures] == \
        new[:1:-1]
    assert con.execute("INSERT INTO captures_fts(captures_fts, rank) VALUES "
                       "('integrity-check', 0)") is not None
    db.close()
