"""The README's example against a FastAPI app, served by uvicorn in a thread.

Skipped unless ``fastapi`` and ``uvicorn`` are installed (neither is a dependency of
webhook-inspector).
"""

import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from fastapi_receiver import create_app  # noqa: E402

from inspector.pytest_plugin import assert_json_matches  # noqa: E402


@pytest.fixture
def serve_asgi():
    servers = []

    def serve(app) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(5)


def test_completed_call_is_verified_and_forwarded(serve_asgi, send_webhook, webhook_bin):
    app_url = serve_asgi(create_app(secret="whsec_test", notify_url=webhook_bin.url))
    delivery = send_webhook("audian", "call.completed", to=app_url + "/webhooks/audian",
                            secret="whsec_test", overrides={"data.duration": 42})
    assert delivery.status == "delivered", delivery.describe()
    (notice,) = webhook_bin.wait_for(1, timeout=5)
    assert_json_matches(notice, {"call": delivery.json()["data"]["call_id"], "seconds": 42})


def test_wrong_secret_is_refused(serve_asgi, send_webhook):
    app_url = serve_asgi(create_app(secret="whsec_test"))
    delivery = send_webhook("audian", "call.completed", to=app_url + "/webhooks/audian",
                            secret="whsec_someone_else")
    assert [a.status_code for a in delivery.attempts] == [401]
