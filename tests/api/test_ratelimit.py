"""Rate limits keyed on the real client: X-Forwarded-For believed from trusted proxies only,
one budget shared through Redis between real API processes, and a Redis outage that never
turns /predict into a 500."""

from __future__ import annotations

import logging
import socket
import uuid

import httpx
import pytest

from api import ratelimit
from api.ratelimit import UNVERIFIED_FORWARDED, RateLimiter, TrustedProxies, client_key
from ia_continu.store import migrate
from ia_continu.store.engine import make_engine
from tests.conftest import ADMIN
from tests.live import free_port, settings_env, start_api

REDIS_URL = "redis://127.0.0.1:6379/0"
FEATURES = {"features": [0.1, 0.2]}


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not _redis_up(), reason="Redis unreachable at 127.0.0.1:6379")


@pytest.fixture
def key_prefix():
    """A prefix of its own: test runs sharing the Redis never count against each other."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    if _redis_up():
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def sqlite_only(db_url):
    if db_url.startswith("postgresql"):
        pytest.skip("rate limits: the database backend plays no part")


def _scope(peer: str | None, forwarded: str | None = None, *more: str) -> dict:
    headers = [(b"host", b"api")]
    for value in (forwarded, *more):
        if value is not None:
            headers.append((b"x-forwarded-for", value.encode()))
    return {"type": "http", "client": (peer, 5000) if peer else None, "headers": headers}


# --- who the client is -------------------------------------------------------------------------

NOBODY = TrustedProxies("")
PROXY = TrustedProxies("10.0.0.0/8, 192.0.2.7")


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says():
    assert client_key(_scope("198.51.100.4"), NOBODY) == "198.51.100.4"
    for forged in ("1.2.3.4", "5.6.7.8, 9.9.9.9", "garbage", ""):
        assert client_key(_scope("198.51.100.4", forged), NOBODY) == "198.51.100.4"
    # A trusted setting does not make an untrusted peer's header count either.
    assert client_key(_scope("198.51.100.4", "1.2.3.4"), PROXY) == "198.51.100.4"


def test_from_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client():
    # The client wrote "6.6.6.6"; the proxy appended the address it really saw.
    assert client_key(_scope("10.0.0.5", "6.6.6.6, 203.0.113.9"), PROXY) == "203.0.113.9"
    # Two proxies: the inner one appended the outer one's address.
    assert client_key(_scope("10.0.0.5", "6.6.6.6, 203.0.113.9, 192.0.2.7"), PROXY) == (
        "203.0.113.9"
    )
    # Several header lines are one list, in order.
    assert client_key(_scope("10.0.0.5", "6.6.6.6", "203.0.113.9:4711"), PROXY) == "203.0.113.9"
    # Only proxies on the way: the request started inside the trusted network.
    assert client_key(_scope("10.0.0.5", "10.1.1.1, 10.2.2.2"), PROXY) == "10.1.1.1"
    # A trusted proxy without the header: the proxy itself.
    assert client_key(_scope("10.0.0.5"), PROXY) == "10.0.0.5"


def test_ipv6_clients_are_keyed_by_their_slash_64():
    a = client_key(_scope("2001:db8:1:2::1"), NOBODY)
    b = client_key(_scope("2001:db8:1:2:ffff::99"), NOBODY)
    c = client_key(_scope("2001:db8:1:3::1"), NOBODY)
    assert a == b == "2001:db8:1:2::/64" and c != a
    assert client_key(_scope("10.0.0.5", "[2001:db8:1:2::7]:443"), PROXY) == a
    assert client_key(_scope("::ffff:198.51.100.4"), NOBODY) == "198.51.100.4"


def test_a_peer_rewritten_from_the_header_is_not_a_fresh_identity(caplog, monkeypatch):
    # What the app sees when uvicorn runs with its proxy headers on: scope["client"] was taken
    # from X-Forwarded-For. Every such request shares one key, and a warning says why.
    monkeypatch.setattr(ratelimit, "_warned_rewrite", False)
    caplog.set_level(logging.WARNING, logger="ia_continu.ratelimit")
    keys = {client_key(_scope(f"203.0.113.{i}", f"203.0.113.{i}"), NOBODY) for i in range(20)}
    assert keys == {UNVERIFIED_FORWARDED}
    assert client_key(_scope("10.9.9.9", "10.9.9.9"), PROXY) == UNVERIFIED_FORWARDED
    assert caplog.text.count("--no-proxy-headers") == 1


def test_a_huge_forged_header_costs_little_and_changes_nothing():
    forged = ", ".join(f"198.18.{i // 256}.{i % 256}" for i in range(3000))
    assert client_key(_scope("198.51.100.4", forged), NOBODY) == "198.51.100.4"
    assert client_key(_scope("10.0.0.5", forged), PROXY) == "198.18.11.183"


# --- the memory default, in one process ----------------------------------------------------------


def test_memory_default_limits_a_client_that_forges_the_header(make_client):
    client = make_client(rate_limit_predict="5/minute")
    codes = [
        client.post(
            "/predict", json=FEATURES, headers={"X-Forwarded-For": f"198.18.0.{i}"}
        ).status_code
        for i in range(7)
    ]
    assert codes == [200] * 5 + [429, 429]


def test_each_app_has_its_own_limiter_built_from_its_settings(make_client):
    first = make_client(rate_limit_predict="2/minute")
    assert [first.post("/predict", json=FEATURES).status_code for _ in range(3)] == [200, 200, 429]
    # A second app in the same process starts from zero: no module-level counters.
    second = make_client(rate_limit_predict="2/minute")
    assert second.post("/predict", json=FEATURES).status_code == 200
    assert second.app.state.runtime.limiter is not first.app.state.runtime.limiter
    assert second.app.state.runtime.limiter.shared is False


def test_limits_off_means_off(make_client):
    client = make_client(rate_limit_predict="1/minute", rate_limit_enabled=False)
    assert {client.post("/predict", json=FEATURES).status_code for _ in range(5)} == {200}


# --- Redis: one budget for every replica ---------------------------------------------------------


@needs_redis
def test_redis_store_counts_and_answers_retry_after(make_client, key_prefix):
    client = make_client(
        rate_limit_predict="3/minute",
        rate_limit_storage_uri=REDIS_URL,
        rate_limit_key_prefix=key_prefix,
    )
    assert client.app.state.runtime.limiter.shared
    codes = [client.post("/predict", json=FEATURES).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = client.post("/predict", json=FEATURES)
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    import redis

    keys = redis.Redis.from_url(REDIS_URL).keys(f"{key_prefix}*")
    assert keys, "the counters live in Redis, under the deployment's prefix"


@needs_redis
@pytest.mark.slow
def test_two_api_processes_share_one_budget_through_redis(
    settings_factory, sqlite_only, tmp_path, key_prefix
):
    limit = 6
    settings = settings_factory(rate_limit_predict=f"{limit}/minute")
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    engine.dispose()
    env = {
        **settings_env(settings),
        "IA_CONTINU_RATE_LIMIT_STORAGE_URI": REDIS_URL,
        "IA_CONTINU_RATE_LIMIT_KEY_PREFIX": key_prefix,
    }
    apis = [start_api(env, tmp_path), start_api(env, tmp_path)]
    try:
        codes = []
        for i in range(limit):
            # Alternate replicas, and forge a new X-Forwarded-For every time: neither helps.
            api = apis[i % 2]
            r = httpx.post(
                api.url + "/predict",
                json=FEATURES,
                headers={"X-Forwarded-For": f"198.18.1.{i}"},
                timeout=10,
            )
            codes.append(r.status_code)
        assert codes == [200] * limit
        for api in apis:
            r = httpx.post(
                api.url + "/predict",
                json=FEATURES,
                headers={"X-Forwarded-For": "198.18.2.1"},
                timeout=10,
            )
            assert r.status_code == 429, (api.url, r.text)
            assert int(r.headers["Retry-After"]) >= 1
    finally:
        for api in apis:
            api.stop()


@pytest.mark.slow
def test_a_trusted_proxy_header_is_honoured_and_only_its_last_hop(
    settings_factory, sqlite_only, tmp_path
):
    settings = settings_factory(rate_limit_predict="2/minute")
    env = {**settings_env(settings), "IA_CONTINU_TRUSTED_PROXIES": "127.0.0.1"}
    api = start_api(env, tmp_path)
    try:

        def predict(forwarded: str) -> int:
            return httpx.post(
                api.url + "/predict",
                json=FEATURES,
                headers={"X-Forwarded-For": forwarded},
                timeout=10,
            ).status_code

        # The test plays the proxy (127.0.0.1 is trusted): the header names the client.
        assert [predict("203.0.113.1") for _ in range(3)] == [200, 200, 429]
        assert predict("203.0.113.2") == 200  # another client, its own budget
        # The client's own prefix is not believed: the proxy's last hop is.
        assert predict("203.0.113.77, 203.0.113.1") == 429
    finally:
        api.stop()


@pytest.mark.slow
def test_uvicorn_started_with_its_proxy_headers_still_limits_forgers(
    settings_factory, sqlite_only, tmp_path
):
    # Someone launches uvicorn without --no-proxy-headers (the last flag wins): uvicorn
    # trusts 127.0.0.1 and rewrites the client from the header. The app notices.
    settings = settings_factory(rate_limit_predict="3/minute")
    api = start_api(settings_env(settings), tmp_path, extra_args=("--proxy-headers",))
    try:
        codes = [
            httpx.post(
                api.url + "/predict",
                json=FEATURES,
                headers={"X-Forwarded-For": f"198.18.3.{i}"},
                timeout=10,
            ).status_code
            for i in range(5)
        ]
        assert codes == [200, 200, 200, 429, 429]
    finally:
        api.stop()
    assert "rewritten from X-Forwarded-For" in api.log()


# --- Redis unreachable: /predict fails open, /retrain closed ------------------------------------


def test_unreachable_store_serves_predict_and_holds_retrain(make_client, caplog):
    caplog.set_level(logging.WARNING, logger="ia_continu.ratelimit")
    dead = f"redis://:hunter2-store-password@127.0.0.1:{free_port()}/0"
    client = make_client(
        rate_limit_predict="2/minute", rate_limit_retrain="5/hour", rate_limit_storage_uri=dead
    )
    codes = [client.post("/predict", json=FEATURES).status_code for _ in range(6)]
    assert codes == [200] * 6, "fail open: scoring goes on without its limit"
    r = client.post("/retrain", headers=ADMIN)
    assert r.status_code == 503 and r.headers["Retry-After"] == "2"
    assert "rate-limit store unreachable" in r.json()["detail"]
    warnings = [m for m in caplog.messages if "rate-limit store" in m]
    # One at start (the probe), one when the first request finds it down: not one per request.
    assert len(warnings) == 2, warnings
    assert "hunter2-store-password" not in caplog.text and "***" in caplog.text


async def _run_checks(limiter: RateLimiter, n: int, fail_open: bool) -> list[int]:
    from fastapi import HTTPException
    from starlette.requests import Request

    codes = []
    request = Request(_scope("198.51.100.4"))
    for _ in range(n):
        try:
            await limiter.check("2/minute", "x", request, fail_open=fail_open)
            codes.append(200)
        except HTTPException as exc:
            codes.append(exc.status_code)
    return codes


def test_outage_then_recovery_enforces_the_limit_again(monkeypatch, caplog):
    import asyncio

    caplog.set_level(logging.WARNING, logger="ia_continu.ratelimit")
    limiter = RateLimiter()  # memory counters, made to fail for a while
    real_hit, down = limiter.counters.hit, [True]

    async def flaky(item, *key):
        if down[0]:
            raise ratelimit.StoreUnavailable("ConnectionError: refused")
        return await real_hit(item, *key)

    monkeypatch.setattr(limiter.counters, "hit", flaky)
    monkeypatch.setattr(ratelimit, "STORE_RETRY_SECONDS", 0.0)
    assert asyncio.run(_run_checks(limiter, 4, fail_open=True)) == [200] * 4
    assert asyncio.run(_run_checks(limiter, 1, fail_open=False)) == [503]
    down[0] = False
    assert asyncio.run(_run_checks(limiter, 3, fail_open=True)) == [200, 200, 429]
    assert limiter.outage is None
    assert any("answers again" in m for m in caplog.messages)


# --- settings ----------------------------------------------------------------------------------


def test_settings_refuse_bad_limits_stores_and_proxies_without_echoing_them(settings_factory):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="6000/minute"):
        settings_factory(rate_limit_predict="lots")
    with pytest.raises(ValidationError) as err:
        settings_factory(rate_limit_storage_uri="memcached://user:pw-zz-secret@host:11211")
    assert "pw-zz-secret" not in str(err.value)
    with pytest.raises(ValidationError, match="not an IP address"):
        settings_factory(trusted_proxies="10.0.0.0/8, proxy.example")
    assert settings_factory(trusted_proxies=" 10.0.0.1 ,192.0.2.0/24").trusted_proxies == (
        "10.0.0.1/32,192.0.2.0/24"
    )


def test_default_predict_limit_lets_one_backend_service_work():
    from limits import parse

    from ia_continu.config import Settings

    item = parse(Settings.model_fields["rate_limit_predict"].default)
    assert item.amount / item.get_expiry() >= 100  # requests per second, sustained
    assert Settings.model_fields["rate_limit_retrain"].default == "10/hour"
    assert Settings.model_fields["trusted_proxies"].default == ""
    assert Settings.model_fields["rate_limit_storage_uri"].default == "memory://"
