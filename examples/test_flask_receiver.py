"""The README's example: a signed Audian event at a Flask app, and what the app sent on.

Run with ``pytest examples`` (the plugin is active wherever webhook-inspector is installed).
"""

from flask_receiver import create_app

from inspector.pytest_plugin import assert_json_matches


def test_completed_call(serve_wsgi, send_webhook, webhook_bin):
    app_url = serve_wsgi(create_app(secret="whsec_test", notify_url=webhook_bin.url))
    delivery = send_webhook("audian", "call.completed", to=app_url + "/webhooks/audian",
                            secret="whsec_test", overrides={"data.duration": 42})
    assert delivery.status == "delivered", delivery.describe()
    (notice,) = webhook_bin.wait_for(1, timeout=5)   # fails listing what did arrive
    assert_json_matches(notice, {"call": delivery.json()["data"]["call_id"], "seconds": 42})


def test_wrong_secret_is_refused(serve_wsgi, send_webhook):
    app_url = serve_wsgi(create_app(secret="whsec_test"))
    delivery = send_webhook("audian", "call.completed", to=app_url + "/webhooks/audian",
                            secret="whsec_someone_else")
    assert delivery.status == "failed"
    assert [a.status_code for a in delivery.attempts] == [401]  # Audian never retries a 401


def test_a_bad_notify_target_shows_in_the_delivery(serve_wsgi, send_webhook, webhook_bin):
    webhook_bin.respond(503)
    app_url = serve_wsgi(create_app(secret="whsec_test", notify_url=webhook_bin.url))
    delivery = send_webhook("audian", "call.completed", to=app_url + "/webhooks/audian",
                            secret="whsec_test")
    # The app could not notify (503), so it answered 500 and Audian retried, at once in tests.
    assert delivery.status == "failed" and len(delivery.attempts) == 5
    assert len(webhook_bin.wait_for(5)) == 5
