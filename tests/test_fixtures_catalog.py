"""The shipped vendor fixtures and the catalog loader (inspector.provider.catalog).

The shipped fixtures must load without a single FixtureError and cover every event that
VENDORS.md and the seed pages name; a broken fixture must be reported with its file, line and
field while every other vendor still loads.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from inspector.provider import FixtureError, load_catalog
from inspector.provider.catalog import default_root
from inspector.provider.syntax import FILTERS, GENERATORS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

EXPECTED_EVENTS = {
    "audata": {f"{o}.{a}" for o in ("Listener", "Prize") for a in ("created", "updated",
                                                                  "deleted")},
    "apirtc": {f"{o}.{a}" for o in ("ticket", "media", "conversation", "smsmessage")
               for a in ("create", "update", "delete")},
    "audian": {"call.initiated", "call.ringing", "call.answered", "call.completed",
               "call.failed", "recording.completed"},
    "atomic": {f"card-{e}" for e in (
        "cancelled", "completed", "dismissed", "displayed", "embargoed", "error", "expired",
        "published", "snoozed", "subview-displayed", "subview-exited", "unsnoozed",
        "voted-up")},
    "alphatouch": {
        *(f"resident.{a}" for a in ("add", "delete", "move", "update", "access_code_used",
                                    "access_code_fail", "prox_tag_used", "prox_tag_fail")),
        "apartment.add", "building.add", "building.delete", "building.update",
        "installation.activate", "installation.deactivate"},
    "standard-webhooks": {"user.created", "invoice.paid"},
    "stripe": {"payment_intent.succeeded", "customer.created"},
    "github": {"push", "ping", "issues.opened"},
}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(FIXTURES)


def test_shipped_fixtures_load_cleanly(catalog) -> None:
    assert [str(e) for e in catalog.errors] == []
    assert set(catalog.vendors) == set(EXPECTED_EVENTS)


@pytest.mark.parametrize("vendor", sorted(EXPECTED_EVENTS))
def test_every_documented_event_is_there(catalog, vendor: str) -> None:
    assert set(catalog.vendor(vendor).events) == EXPECTED_EVENTS[vendor]


def test_default_root_finds_the_shipped_fixtures() -> None:
    assert (default_root() / "audian" / "vendor.yaml").is_file()
    assert set(load_catalog().vendors) == set(EXPECTED_EVENTS)


def test_every_setting_event_and_field_has_provenance(catalog) -> None:
    for vendor in catalog.vendors.values():
        for setting in ("methods", "signing", "demo_secret", "retry", "timeout", "https_only",
                        "locale", "body"):
            assert vendor.provenance[setting].status in ("documented", "assumed")
            assert vendor.provenance[setting].note
        for header in vendor.headers:
            assert header.provenance.note
        for event in vendor.events.values():
            assert event.provenance.status in ("documented", "assumed")
            assert event.fields, event.name
            assert all(p.note for p in event.fields.values())


def test_vendor_settings_follow_the_vendors_docs(catalog) -> None:
    audian = catalog.vendor("audian")
    assert audian.retry_schedule == (0, 60, 300, 900, 1800)
    assert audian.retry_jitter == (0, 60)
    assert audian.no_retry_statuses == (400, 401, 403, 404, 410, 422)
    assert audian.timeout == 30 and audian.https_only
    assert audian.signing == "audian" and audian.demo_secret.startswith("whsec_")
    assert audian.delivery_id_header == "X-Audian-Delivery-ID"
    assert ("User-Agent", "AudianWebhook/1.0") in [(h.name, h.value) for h in audian.headers]

    audata = catalog.vendor("audata")
    assert audata.https_only and audata.locale == "en_AU"
    assert set(audata.methods) == {"GET", "POST"} and audata.signing == "none"
    assert audata.provenance["https_only"].status == "documented"
    assert audata.provenance["retry"].status == "assumed"

    apirtc = catalog.vendor("apirtc")
    assert [(h.name, h.value) for h in apirtc.headers] == [
        ("Content-Type", "application/JSON"), ("User-Agent", "Cloud Apizee")]

    atomic = catalog.vendor("atomic")
    assert atomic.methods == ("POST", "PUT") and atomic.default_method == "POST"
    assert atomic.signing == "atomic-hmac"
    assert atomic.provenance["signing"].status == "assumed"
    assert atomic.batch is not None and atomic.batch.provenance.status == "assumed"
    assert len(atomic.retry_schedule) > 2

    assert catalog.vendor("standard-webhooks").signing == "standard-webhooks"
    assert catalog.vendor("stripe").body_format == "json-pretty"
    github = catalog.vendor("github")
    assert "X-GitHub-Event" in [h.name for h in github.headers]


def test_retry_helpers(catalog) -> None:
    audian = catalog.vendor("audian")
    assert audian.delay_before(1) == 0
    assert 60 <= audian.delay_before(2) <= 120
    assert audian.delay_before(2, scale=0) == 0
    assert audian.delay_before(6) is None
    assert not audian.should_retry(410) and audian.should_retry(500)
    assert audian.should_retry(None) and not audian.should_retry(204)


def test_public_shape_matches_the_contract(catalog) -> None:
    data = catalog.to_public()
    assert {v["id"] for v in data["vendors"]} == set(EXPECTED_EVENTS)
    for v in data["vendors"]:
        assert {"id", "name", "events", "methods", "signing"} <= set(v)
        assert all("name" in e and "provenance" in e for e in v["events"])
        assert isinstance(v["signing"], str)
    detail = catalog.vendor("audian").to_public(fields=True)
    completed = next(e for e in detail["events"] if e["name"] == "call.completed")
    assert completed["fields"]["data.call_id"]["status"] == "documented"
    assert completed["fields"]["data.duration"]["status"] == "assumed"
    assert data["errors"] == []


def test_readme_documents_every_generator_and_filter() -> None:
    readme = (FIXTURES / "README.md").read_text()
    for name in GENERATORS:
        assert f"`{name}" in readme or f" {name}" in readme, name
    for name in FILTERS:
        assert f"| {name}" in readme, name


def test_every_fixture_file_starts_with_a_comment() -> None:
    for path in FIXTURES.rglob("*.yaml"):
        assert path.read_text().startswith("#"), path


# --- broken fixtures ---------------------------------------------------------------------------

@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the shipped fixtures to break."""
    root = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, root, ignore=shutil.ignore_patterns("*.py", "*.md",
                                                                  "__pycache__"))
    return root


def _replace(path: Path, old: str, new: str) -> int:
    """Edit a fixture; returns the 1-based line of the edit."""
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return text[:text.index(old)].count("\n") + 1


def _only_error(catalog) -> FixtureError:
    assert len(catalog.errors) == 1, [str(e) for e in catalog.errors]
    return catalog.errors[0]


def test_yaml_syntax_error_names_file_and_line_and_others_load(tree: Path) -> None:
    line = _replace(tree / "audian" / "vendor.yaml", "  default: POST\n",
                    "  default: [POST\n")
    catalog = load_catalog(tree)
    err = _only_error(catalog)
    assert err.file == "fixtures/audian/vendor.yaml"
    assert err.line is not None and line <= err.line <= line + 3
    assert "YAML syntax error" in err.message
    assert "audian" not in catalog.vendors
    assert set(catalog.vendors) == set(EXPECTED_EVENTS) - {"audian"}
    assert str(err).startswith(f"fixtures/audian/vendor.yaml:{err.line}: ")


def test_unknown_generator_names_file_line_and_field(tree: Path) -> None:
    call = tree / "audian" / "events" / "call.yaml"
    line = _replace(call, '"{{ seconds .answered_at .ended_at }}"', '"{{ fakr.pyint }}"')
    catalog = load_catalog(tree)
    err = _only_error(catalog)
    assert (err.file, err.line, err.field) == ("fixtures/audian/events/call.yaml", line,
                                               "data.duration")
    assert str(err) == (f"fixtures/audian/events/call.yaml:{line}: field 'data.duration': "
                        "unknown generator 'fakr.pyint' (did you mean 'faker.pyint'?)")
    # only that event is skipped: the vendor and its other events still load
    audian = catalog.vendor("audian")
    assert set(audian.events) == EXPECTED_EVENTS["audian"] - {"call.completed"}
    assert set(catalog.vendors) == set(EXPECTED_EVENTS)


@pytest.mark.parametrize(("file", "old", "new", "field", "message"), [
    ("audian/vendor.yaml", "scheme: audian", "scheme: audian-v2", "signing.scheme",
     "unknown value 'audian-v2'"),
    ("audian/vendor.yaml", "value: [POST]", "value: [POST, FETCH]", "methods.value",
     "unknown method"),
    ("audian/vendor.yaml", "  no_retry: [", "  no_retyr: [", "retry.no_retyr",
     "did you mean 'no_retry'"),
    ("audian/vendor.yaml", "  time_format: iso_z", "  time_format: isoz", "locale.time_format",
     "unknown value 'isoz'"),
    ("apirtc/events/ticket.yaml", "{{ enum ticket_state }}", "{{ enum ticket_states }}",
     "props.state", "unknown enum 'ticket_states'"),
    ("audata/events/Listener.yaml", "{{ ref .address1 }}", "{{ ref .adress1 }}",
     "sender.full_address", "there is no field 'sender.adress1'"),
    ("audata/events/Listener.yaml", '"{{ time ago 18y..80y as date }}"',
     '"{{ faker.date_of_birth }}"', "sender.dob", "depends on today's date"),
    ("audata/events/Listener.yaml", '"{{ int 1000000 9999999 }}"', '"{{ int 9 1 }}"',
     "sender.id", "maximum is below the minimum"),
    ("audian/events/call.yaml", "  call.ringing:", "  call ringing:", "events.call ringing",
     "event names look like"),
    ("audian/events/call.yaml", "    status: initiated\n",
     "    status: initiated\n    status: ringing\n", "data.status", "duplicate key"),
    ("alphatouch/events/resident.yaml",
     'entity_id: "{{ int 1 20000 }}"\n      data: "{{ omit }}"', 'data: "{{ omit }}"',
     "entity_id", "'data' is left out"),
    ("audian/events/recording.yaml", 'format: "{{ enum recording_format }}"',
     'format: "{{ enum recording_format }"', "data.format", "'{{' without a matching '}}'"),
])
def test_semantic_errors_carry_file_line_and_field(tree: Path, file: str, old: str, new: str,
                                                   field: str, message: str) -> None:
    _replace(tree / file, old, new)
    catalog = load_catalog(tree)
    assert catalog.errors, "expected a FixtureError"
    err = next((e for e in catalog.errors if e.field == field), None)
    assert err is not None, [str(e) for e in catalog.errors]
    assert err.file == f"fixtures/{file}"
    assert err.line is not None
    assert message in err.message
    assert re.match(r"^fixtures/[\w./-]+:\d+: field '", str(err))
    vendor_id = file.split("/")[0]
    assert set(catalog.vendors) >= set(EXPECTED_EVENTS) - {vendor_id}


def test_a_reference_loop_is_found_at_load_time(tree: Path) -> None:
    line = _replace(tree / "audian" / "events" / "call.yaml",
                    'answered_at: "{{ time before .ended_at by 10s..30m }}"',
                    'answered_at: "{{ time after .started_at by 10s..30m }}"')
    catalog = load_catalog(tree)
    err = _only_error(catalog)
    assert err.file == "fixtures/audian/events/call.yaml"
    assert err.line in (line - 1, line) and err.field in ("data.started_at", "data.answered_at")
    assert "call.completed does not render: reference loop" in err.message
    assert "call.completed" not in catalog.vendor("audian").events
    assert "call.failed" in catalog.vendor("audian").events


def test_missing_provenance_is_an_error(tree: Path) -> None:
    _replace(tree / "audian" / "vendor.yaml",
             '  value: 30\n  documented: "Seed: \'Return a 2xx status code within 30 seconds\'."',
             "  value: 30")
    err = _only_error(load_catalog(tree))
    assert err.field == "timeout" and "documented" in err.message


def test_an_unreadable_vendor_folder_does_not_stop_the_others(tree: Path) -> None:
    (tree / "brokenvendor").mkdir()
    (tree / "brokenvendor" / "vendor.yaml").write_text("name: [unclosed\n")
    (tree / "novendor").mkdir()
    catalog = load_catalog(tree)
    assert {e.file for e in catalog.errors} == {"fixtures/brokenvendor/vendor.yaml",
                                                "fixtures/novendor/vendor.yaml"}
    assert set(catalog.vendors) == set(EXPECTED_EVENTS)


def test_missing_root_is_reported_not_raised(tmp_path: Path) -> None:
    catalog = load_catalog(tmp_path / "nothing")
    assert catalog.vendors == {} and len(catalog.errors) == 1
