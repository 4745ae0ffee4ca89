"""Deliveries created and attempts recorded in batches (storage/deliveries.py, recorder.py):
the batched writes must store exactly what one write per item would, fail item by item, and
never lose a record the engine made, on a real SQLite file and a real local sink."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inspector.delivery import DeliveryEngine, RetryPolicy
from inspector.delivery.recorder import AttemptRecorder
from inspector.provider import default_catalog
from inspector.storage import Database
from inspector.storage.deliveries import (
    Attempt,
    AttemptResult,
    Delivery,
    DeliveryStore,
    NewDelivery,
    _chunk_sizes,
)
from tests.test_delivery import Sink

POLICY = RetryPolicy(schedule=(0, 60), timeout=5).to_dict()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeliveryStore]:
    db = Database(tmp_path / "batch.db")
    yield DeliveryStore(db)
    db.close()


def new(i: int = 0, **kw: object) -> NewDelivery:
    kw.setdefault("next_attempt_at", "2030-01-01T00:00:00.000000Z")
    kw.setdefault("claimed_by", "tok")
    kw.setdefault("source", "send")
    return NewDelivery(url=f"http://127.0.0.1:9/n{i}", method="POST",
                       body=f'{{"n":{i}}}'.encode(), policy=POLICY,
                       headers=[("Content-Type", "application/json")], **kw)  # type: ignore[arg-type]


def result(status: str = "delivered", number: int = 1, http: int | None = 200,
           **kw: object) -> AttemptResult:
    attempt = Attempt(number=number, started_at="2026-01-01T00:00:00.000000Z", method="POST",
                      url="http://127.0.0.1:9/x", request_headers=[("A", "1")],
                      request_body=None, response_status=http,
                      response_headers=[("B", "2")] if http else None,
                      response_body=b"ok" if http else None, response_size=2 if http else None,
                      duration_ms=1.0, error=None if http else "connection refused",
                      outcome={"delivered": "delivered", "failed": "failed"}.get(status,
                                                                                  "retry"))
    kw.setdefault("next_attempt_at", None)
    return AttemptResult(attempt=attempt, status=status, **kw)  # type: ignore[arg-type]


def test_chunk_sizes_are_powers_of_two_summing_to_n() -> None:
    for n in range(0, 200):
        sizes = _chunk_sizes(n)
        assert sum(sizes) == n and all(s & (s - 1) == 0 for s in sizes)
        assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)


def test_creates_from_many_threads_gather_into_shared_writes(store: DeliveryStore) -> None:
    made: list[tuple[int, Delivery]] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def create(k: int) -> None:
        start.wait()
        for i in range(k, 400, 16):
            d = store.create(new(i))
            with lock:
                made.append((i, d))

    threads = [threading.Thread(target=create, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 400
    assert len({d.id for _, d in made}) == 400
    # Each returned delivery is the row stored for that create, not a neighbour's.
    for i, d in made:
        stored = store.get(d.id, attempts=False)
        assert stored is not None
        assert stored.url == d.url == f"http://127.0.0.1:9/n{i}"
        assert stored.body == d.body == f'{{"n":{i}}}'.encode()
        assert stored.created_at == d.created_at and stored.claimed_by == "tok"


def test_a_create_that_cannot_be_stored_fails_alone(store: DeliveryStore) -> None:
    results: dict[int, object] = {}
    start = threading.Barrier(8)

    def create(i: int) -> None:
        start.wait()
        try:
            # An object JSON cannot encode in the context: that create alone must fail.
            results[i] = store.create(new(i, context={"bad": object()} if i == 3 else None))
        except Exception as exc:  # noqa: BLE001
            results[i] = exc

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(results[3], TypeError)
    good = [r for i, r in results.items() if i != 3]
    assert all(isinstance(r, Delivery) for r in good)
    assert {store.get(r.id).url for r in good} == {  # type: ignore[union-attr]
        f"http://127.0.0.1:9/n{i}" for i in range(8) if i != 3}


def test_batched_records_store_what_single_records_do(store: DeliveryStore) -> None:
    plain = [store.create(new(i)) for i in range(70)]  # more than one multi-row statement
    one_by_one = [store.create(new(100 + i)) for i in range(70)]
    outcomes = [result("delivered"), result("failed", http=410, error="HTTP 410 is final"),
                result("pending", http=500, next_attempt_at="2030-01-02T00:00:00.000000Z")]
    batched = store.record_attempts_later(
        [(d, "tok", outcomes[i % 3]) for i, d in enumerate(plain)]).result(10)
    singles = [store.record_attempt(d, "tok", outcomes[i % 3])
               for i, d in enumerate(one_by_one)]

    def comparable(d: Delivery) -> dict:
        data = d.to_dict()
        for key in ("id", "url", "body", "created_at", "updated_at", "settled_at"):
            data.pop(key)
        for a in data["attempts"]:
            a["request"].pop("body")
        return data

    for b, s in zip(batched, singles, strict=True):
        assert isinstance(b, Delivery)
        assert (b.status, b.attempt_count, b.last_status, b.next_attempt_at, b.claimed_by) == \
            (s.status, s.attempt_count, s.last_status, s.next_attempt_at, s.claimed_by)
        assert comparable(store.get(b.id)) == comparable(store.get(s.id))  # type: ignore[arg-type]
    assert store.count_attempts([d.id for d in plain]) == 70


def test_batched_records_fail_item_by_item(store: DeliveryStore) -> None:
    a, gone, b, queued_head, queued_next = (store.create(new(i)) for i in range(5))
    # Two forwards in one queue: settling the head leases the next to the same engine.
    store.db.write(lambda c: c.execute(
        "UPDATE deliveries SET queue = 'q' WHERE id IN (?, ?)", (queued_head.id,
                                                                 queued_next.id)))
    store.db.write(lambda c: c.execute(
        "UPDATE deliveries SET next_attempt_at = NULL, claimed_by = NULL WHERE id = ?",
        (queued_next.id,)))
    queued_head.context = {"queue": "q"}
    assert store.delete(gone.id)
    keep = result("pending", http=503, keep_claim=True,
                  lease_until="2030-01-03T00:00:00.000000Z")
    head_result = result("delivered", lease_until="2030-01-04T00:00:00.000000Z")
    out = store.record_attempts_later([
        (a, "tok", result("delivered")),
        (gone, "tok", result("delivered")),
        (b, "tok", keep),                      # keeps its lease: the one-row path
        (b, "tok", result("delivered", number=1)),  # the same attempt twice: refused alone
        (queued_head, "tok", head_result),     # promotes its queue: the one-row path
    ]).result(10)
    assert isinstance(out[0], Delivery) and out[0].status == "delivered"
    assert isinstance(out[1], LookupError)
    assert isinstance(out[2], Delivery) and out[2].claimed_by == "tok"
    assert out[2].next_attempt_at == "2030-01-03T00:00:00.000000Z"
    assert not isinstance(out[3], Delivery)  # attempt 1 of b is already stored
    assert isinstance(out[4], Delivery) and head_result.chained == queued_next.id
    nxt = store.get(queued_next.id, attempts=False)
    assert nxt is not None and nxt.claimed_by == "tok"
    assert [x.number for x in store.get(b.id).attempts] == [1]  # type: ignore[union-attr]
    assert store.get(a.id).status == "delivered"  # type: ignore[union-attr]


def test_a_lone_record_is_written_at_once_and_a_busy_stream_in_batches(
        store: DeliveryStore) -> None:
    writes: list[int] = []
    real = store.record_attempts_later

    def counting(items):  # type: ignore[no-untyped-def]
        writes.append(len(items))
        return real(items)

    store.record_attempts_later = counting  # type: ignore[method-assign]
    recorder = AttemptRecorder(store, linger=0.5)
    try:
        heard = threading.Event()
        d = store.create(new(0))
        start = time.monotonic()
        recorder.add(d, "tok", result(), lambda u, e: heard.set())
        assert heard.wait(5)
        assert time.monotonic() - start < 0.4  # did not sit out the linger
        done = threading.Semaphore(0)
        many = [store.create(new(i)) for i in range(1, 41)]
        for m in many:
            recorder.add(m, "tok", result(), lambda u, e: done.release())
        for _ in many:
            assert done.acquire(timeout=5)
        assert writes[0] == 1 and sum(writes) == 41 and len(writes) <= 3
    finally:
        recorder.close()


def test_an_urgent_record_does_not_linger(store: DeliveryStore) -> None:
    """A forwarding queue's next delivery waits for its head's record: that one goes at once
    even right after another batch."""
    recorder = AttemptRecorder(store, linger=30)
    try:
        first, second, urgent = (store.create(new(i)) for i in range(3))
        heard = [threading.Event() for _ in range(3)]
        recorder.add(first, "tok", result(), lambda u, e: heard[0].set())
        assert heard[0].wait(5)  # a lone record goes at once
        recorder.add(second, "tok", result(), lambda u, e: heard[1].set())
        start = time.monotonic()
        recorder.add(urgent, "tok", result(), lambda u, e: heard[2].set(), urgent=True)
        assert heard[2].wait(5) and heard[1].is_set()  # the waiting one went along
        assert time.monotonic() - start < 2
    finally:
        recorder.close()


def test_recorder_close_writes_what_it_gathered(store: DeliveryStore) -> None:
    recorder = AttemptRecorder(store, linger=30)  # would wait 30 s between batches
    ds = [store.create(new(i)) for i in range(5)]
    heard: list[Delivery | None] = []
    recorder.add(ds[0], "tok", result(), lambda u, e: heard.append(u))
    deadline = time.monotonic() + 5
    while not heard and time.monotonic() < deadline:
        time.sleep(0.01)
    for d in ds[1:]:
        recorder.add(d, "tok", result(), lambda u, e: heard.append(u))

    def broken(u: Delivery | None, e: BaseException | None) -> None:
        raise RuntimeError("a listener that breaks")

    extra = store.create(new(9))
    recorder.add(extra, "tok", result(), broken)
    start = time.monotonic()
    recorder.close()
    assert time.monotonic() - start < 5
    assert len(heard) == 5 and all(u is not None and u.status == "delivered" for u in heard)
    assert store.get(extra.id).status == "delivered"  # type: ignore[union-attr]
    with pytest.raises(RuntimeError):
        recorder.add(ds[0], "tok", result(number=2), lambda u, e: None)


def test_engine_close_keeps_every_attempt_it_made(tmp_path: Path) -> None:
    """Closing right after a burst: each attempt the sink answered is recorded, none is
    handed back as a lease to be made again."""
    sink = Sink()
    db = Database(tmp_path / "close.db")
    try:
        eng = DeliveryEngine(db, catalog=default_catalog(), retry_scale=0).start()
        eng._recorder.linger = 30  # nothing would be written before close without the flush
        ids = [eng.send("audian", "call.completed", sink.url()).id for _ in range(30)]
        sink.wait_for(30)
        deadline = time.monotonic() + 5
        while eng._inflight and time.monotonic() < deadline:
            time.sleep(0.01)
        eng.close()
        store = DeliveryStore(db)
        assert [store.get(i, attempts=False).status for i in ids] == ["delivered"] * 30  # type: ignore[union-attr]
        assert store.count_attempts(ids) == 30
        # A restarted engine finds nothing to do: no attempt is made twice.
        eng2 = DeliveryEngine(db, catalog=default_catalog(), retry_scale=0).start()
        time.sleep(0.5)
        eng2.close()
        assert len(sink.requests) == 30
    finally:
        db.close()
        sink.close()


def test_cancel_while_an_attempt_is_under_way_stays_cancelled_and_logs_it(tmp_path: Path) -> None:
    slow = Sink(plan=lambda n: (1.0, 200))
    db = Database(tmp_path / "cancel.db")
    try:
        eng = DeliveryEngine(db, catalog=default_catalog(), retry_scale=0).start()
        d = eng.send("audian", "call.completed", slow.url())
        slow.wait_for(1)  # the attempt is under way: the sink answers in a second
        cancelled = eng.cancel(d.id)
        assert cancelled.status == "failed" and cancelled.error == "cancelled"
        with pytest.raises(ValueError, match="already failed"):
            eng.cancel(d.id)
        with pytest.raises(LookupError):
            eng.cancel(999999)
        time.sleep(1.5)  # the answer came and its record was tried
        eng.close()
        after = DeliveryStore(db).get(d.id)
        assert after is not None and after.status == "failed" and after.error == "cancelled"
        # The attempt the target answered is still logged, and counted; the state stays.
        assert len(slow.requests) == 1 and [a.response_status for a in after.attempts] == [200]
        assert after.attempt_count == 1 and after.last_status == 200
    finally:
        db.close()
        slow.close()


def test_old_settled_deliveries_are_pruned_pending_ones_kept(tmp_path: Path) -> None:
    sink = Sink()
    db = Database(tmp_path / "prune.db")
    try:
        eng = DeliveryEngine(db, catalog=default_catalog(), retry_scale=1,
                             max_deliveries=100).start()
        # Refused, and Audian's next try is a minute away: pending through the whole test.
        stuck = eng.send("audian", "call.completed", "http://127.0.0.1:9/down")
        ids = [eng.send("audian", "call.completed", sink.url()).id for _ in range(450)]
        store = DeliveryStore(db)
        deadline = time.monotonic() + 30
        while store.get(ids[-1], attempts=False).status == "pending":  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        eng.close()
        left = db.read(lambda c: [r[0] for r in c.execute("SELECT id FROM deliveries")])
        assert stuck.id in left  # pending: never pruned
        assert store.get(stuck.id).attempt_count >= 1  # type: ignore[union-attr]
        assert len(left) <= 100 + 100 + 1  # the newest 100, plus at most one pass behind
        assert ids[-1] in left and ids[0] not in left
        orphans = db.read(lambda c: c.execute(
            "SELECT COUNT(*) FROM delivery_attempts WHERE delivery_id NOT IN"
            " (SELECT id FROM deliveries)").fetchone()[0])
        assert orphans == 0  # attempts went with their deliveries
    finally:
        db.close()
        sink.close()



def test_refusals_alone_also_prune(tmp_path: Path) -> None:
    # With --strict-vendor-rules every http:// send to Audian is refused at create: nothing
    # is ever attempted, and these deliveries once piled up for ever.
    db = Database(tmp_path / "refused.db")
    try:
        eng = DeliveryEngine(db, catalog=default_catalog(), strict_vendor_rules=True,
                             retry_scale=1, max_deliveries=100).start()
        refused = [eng.send("audian", "call.completed", "http://127.0.0.1:9/x")
                   for _ in range(350)]
        assert {d.status for d in refused} == {"failed"}
        count = db.read(lambda c: c.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0])
        assert count <= 100 + 100 + 100  # the newest 100, plus at most what a pass leaves
        assert refused[-1].id in db.read(lambda c: [r[0] for r in c.execute(
            "SELECT id FROM deliveries")])
        eng.close()
    finally:
        db.close()


def test_cancels_alone_also_prune(tmp_path: Path) -> None:
    db = Database(tmp_path / "cancelled.db")
    try:
        eng = DeliveryEngine(db, catalog=default_catalog(), retry_scale=1,
                             max_deliveries=100).start()
        # Refused connections: Audian retries a minute later, so each stays pending until
        # cancelled, and only the cancels settle anything.
        ids = [eng.send("audian", "call.completed", "http://127.0.0.1:9/x").id
               for _ in range(160)]
        for i in ids:
            eng.cancel(i)
        left = db.read(lambda c: [r[0] for r in c.execute("SELECT id FROM deliveries")])
        assert ids[0] not in left and ids[-1] in left
        assert len(left) <= 100 + 100
        eng.close()
    finally:
        db.close()

def test_a_failed_create_write_does_not_wedge_later_creates(tmp_path: Path, monkeypatch) -> None:
    """Another program holds SQLite's write lock past the busy timeout: the create waiting on
    that write fails at once, and the next create (lock gone) works."""
    import sqlite3

    import inspector.storage.db as dbmod

    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 300)
    db = Database(tmp_path / "wedge.db")
    try:
        store = DeliveryStore(db)
        store.create(new(0))
        other = sqlite3.connect(str(tmp_path / "wedge.db"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # e.g. an sqlite3 shell left in a transaction
        start = time.monotonic()
        with pytest.raises(Exception, match="locked"):
            store.create(new(1))
        assert time.monotonic() - start < 5  # answered, not left to its 30 s timeout
        other.execute("ROLLBACK")
        other.close()
        assert store.create(new(2)).url.endswith("/n2")
    finally:
        db.close()


def test_creates_racing_a_close_fail_rather_than_hang(tmp_path: Path) -> None:
    for round_ in range(30):
        db = Database(tmp_path / f"race{round_}.db")
        store = DeliveryStore(db)
        outcomes: list[str] = []

        def create(i: int, store: DeliveryStore = store, outcomes: list[str] = outcomes
                   ) -> None:
            start = time.monotonic()
            try:
                store.create(new(i))
                outcomes.append("ok")
            except Exception:  # noqa: BLE001 - "database is closed" is the expected failure
                outcomes.append("failed")
            assert time.monotonic() - start < 5

        threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        db.close()
        for t in threads:
            t.join(10)
        assert len(outcomes) == 6


def test_cancel_a_delivery_still_queued_in_memory_is_never_sent(tmp_path: Path) -> None:
    sink = Sink(plan=lambda n: (1.5, 200) if n == 1 else 200)
    db = Database(tmp_path / "queued.db")
    try:
        eng = DeliveryEngine(db, catalog=default_catalog(), retry_scale=0, workers=1).start()
        eng.send("audian", "call.completed", sink.url("/first"))
        sink.wait_for(1)  # the only worker is busy
        second = eng.send("audian", "call.completed", sink.url("/second"))
        assert eng.cancel(second.id).error == "cancelled"
        time.sleep(2.5)
        eng.close()
        assert [r.path for r in sink.requests] == ["/first"]
    finally:
        db.close()
        sink.close()


def test_pruning_keeps_forwards_while_their_capture_is_kept(store: DeliveryStore) -> None:
    from inspector.storage.captures import CaptureStore, NewCapture

    captures = CaptureStore(store.db)
    cap = captures.add(NewCapture(bin="fw", method="POST", path="/", query="", headers=[],
                                  body=b"{}", remote_addr=None)).capture
    forward = store.create(new(0, source="forward", capture_id=cap.id))
    store.record_attempt(forward, "tok", result("delivered"))
    sends = [store.create(new(i)) for i in range(1, 40)]
    for d in sends:
        store.record_attempt(d, "tok", result("delivered"))
    gone = store.db.write(lambda c: DeliveryStore.prune(c, keep=10))
    assert gone == 29  # the sends older than the newest ten
    assert store.get(forward.id) is not None  # its capture is still here
    captures.delete(cap.id)
    assert store.db.write(lambda c: DeliveryStore.prune(c, keep=10)) == 1
    assert store.get(forward.id) is None
