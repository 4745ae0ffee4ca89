"""The README's example against a plain WSGI app."""

from wsgi_receiver import make_app

from inspector.pytest_plugin import assert_json_matches


def test_completed_call_is_verified_and_forwarded(serve_wsgi, send_webhook, webhook_bin):
    app_url = serve_wsgi(make_app(secret="whsec_test", notify_url=webhook_bin.url))
    delivery = send_webhook("audian", "call.completed", to=app_url + "/webhooks/audian",
                            secret="whsec_test", overrides={"data.duration": 42})
    assert delivery.status == "delivered", delivery.describe()
    assert delivery.attempts[-1].response_json() == {"received": delivery.json()["id"]}
    (notice,) = webhook_bin.wait_for(1, timeout=5)
    assert_json_matches(notice, {"call": "ignored", "seconds": 42}, ignore=["$.call"])


def test_tampered_body_is_refused(serve_wsgi, webhook_inspector):
    import httpx

    app_url = serve_wsgi(make_app(secret="whsec_test"))
    sample = webhook_inspector.client.sample("audian", "call.completed", secret="whsec_test")
    tampered = sample["body"].replace('"completed"', '"failed"', 1)
    resp = httpx.post(app_url + "/webhooks/audian", content=tampered,
                      headers=[(n, v) for n, v in sample["headers"]
                               if n.lower() != "content-length"])
    assert resp.status_code == 401
