"""Per-client rate limits (moving window, from the ``limits`` library), answered with 429.

Who the client is
-----------------
The key is the TCP peer of the connection, ``scope["client"]``. ``X-Forwarded-For`` is read
only when that peer is one of ``IA_CONTINU_TRUSTED_PROXIES`` (empty by default: no proxy is
trusted and the header is ignored). The client is then the right-most address of the header
that is not itself a trusted proxy: each proxy appends the address it received the request
from, so everything to the left of that hop may have been written by the client. IPv6 clients
are keyed by their /64, the block one subscriber usually holds (one key per address would give
every subscriber 2^64 identities). ``Forwarded`` (RFC 7239) is not read.

Why every launcher passes ``--no-proxy-headers``
------------------------------------------------
uvicorn 0.54, unless started with ``--no-proxy-headers``, wraps the app in its
``ProxyHeadersMiddleware``: for a peer in ``--forwarded-allow-ips`` (default: the
``FORWARDED_ALLOW_IPS`` variable, else ``127.0.0.1,::1``) it *replaces* ``scope["client"]``
with an address taken from ``X-Forwarded-For`` before the app runs, and the socket's own peer
is lost. Any process on the same host (``ia-continu run`` binds 127.0.0.1) could then choose a
new identity for every request. With ``--no-proxy-headers`` the scope holds the real peer and
this module alone decides, from one setting, whatever starts uvicorn. (The other way,
``--forwarded-allow-ips`` equal to ``trusted_proxies``, leaves two settings that must agree.)
``ia-continu run``, ``docker/api.Dockerfile``, ``docker-compose.yml`` and ``tests/live.py``
pass the flag. If uvicorn is started without it anyway, the rewrite shows: the "peer" is then
one of the addresses listed in ``X-Forwarded-For``, which a real peer never is. Such requests
share one key, ``unverified-forwarded`` (limited together, never a fresh identity each), and a
warning says to add the flag. uvicorn's flag also applies ``X-Forwarded-Proto`` to the scheme;
the app builds no absolute URL, so nothing depends on it.

Where the counters live
-----------------------
``IA_CONTINU_RATE_LIMIT_STORAGE_URI``: ``memory://`` (default) counts in each process, so N
replicas give a client N times the limit; ``redis://host:6379[/db]`` shares one budget between
every replica (keys under ``IA_CONTINU_RATE_LIMIT_KEY_PREFIX``). The Redis client is asyncio
(no thread hop, the event loop is never blocked), with 0.5 s timeouts and no retries: a dead
store costs one failed attempt, then ``STORE_RETRY_SECONDS`` without trying. Timeouts can be
changed in the URI (``?socket_timeout=2``).

When Redis is unreachable, a limit fails open or closed, per limit: ``/predict`` and
``/predict/batch`` are served without a limit (scoring is what the service is for, and one
logged warning per outage says so), ``/retrain`` answers 503 with ``Retry-After`` (an
expensive admin route, called by automation that retries). Never a 500.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import math
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, status
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ia_continu.redact import redact

log = logging.getLogger("ia_continu.ratelimit")

UNVERIFIED_FORWARDED = "unverified-forwarded"
STORE_TIMEOUT_SECONDS = 0.5
STORE_RETRY_SECONDS = 2.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=64)
def _parse(text: str) -> RateLimitItem:
    return parse(text)  # "6000/minute" -> a RateLimitItem, once per distinct string


# --- who is the client -----------------------------------------------------------------------


class TrustedProxies:
    """The ``trusted_proxies`` setting: IPs and CIDR networks (validated by Settings)."""

    def __init__(self, spec: str) -> None:
        self.networks = [
            ipaddress.ip_network(part.strip(), strict=False)
            for part in spec.split(",")
            if part.strip()
        ]
        # Per instance, so two apps in one process (tests) never share answers.
        self.trusts = functools.lru_cache(maxsize=4096)(self._trusts)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def _trusts(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in net for net in self.networks)


MAX_HOP_LENGTH = 64  # longer than any address with a port: not one, and not worth caching


def _address(text: str) -> IPAddress | None:
    """An address from a peer or an X-Forwarded-For hop (``1.2.3.4:80``, ``[::1]:80``)."""
    text = text.strip()
    return _parse_address(text) if len(text) <= MAX_HOP_LENGTH else None


@functools.lru_cache(maxsize=16384)
def _parse_address(text: str) -> IPAddress | None:
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=16384)
def _key_of(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


_warned_rewrite = False


def _forwarded_for(scope: MutableMapping[str, Any]) -> str | None:
    values = [v for name, v in scope.get("headers", ()) if name == b"x-forwarded-for"]
    if not values:
        return None
    return b",".join(values).decode("latin-1")


def client_key(scope: MutableMapping[str, Any], trusted: TrustedProxies) -> str:
    """The identity a limit counts against: see the module docstring."""
    global _warned_rewrite
    client = scope.get("client")
    peer_text = client[0] if client else ""
    peer = _address(peer_text) if peer_text else None
    own = _key_of(peer) if peer is not None else (peer_text or "unknown")
    forwarded = _forwarded_for(scope)
    if forwarded is None:
        return own
    hops = forwarded.split(",")
    # The substring test first: the header is the client's, possibly thousands of hops long.
    if peer is not None and peer_text in forwarded and peer in map(_address, hops):
        # The server took the "peer" from this very header (uvicorn's proxy headers on): the
        # socket's address is lost, and the header may be the client's invention.
        if not _warned_rewrite:
            _warned_rewrite = True
            log.warning(
                "the client address was rewritten from X-Forwarded-For before the app saw it: "
                "start uvicorn with --no-proxy-headers and list proxies in "
                "IA_CONTINU_TRUSTED_PROXIES; until then such requests share one rate limit"
            )
        return UNVERIFIED_FORWARDED
    if not trusted or not trusted.trusts(peer):
        return own
    for hop in reversed(hops):
        address = _address(hop)
        if not trusted.trusts(address):
            # Written by a trusted proxy. Not an address only if that proxy passes garbage
            # on: still one stable key, and the client cannot vary it past the proxy.
            return _key_of(address) if address is not None else hop.strip()[:64] or "unknown"
    # Every hop is a trusted proxy: the request started inside the trusted network.
    first = _address(hops[0])
    return _key_of(first) if first is not None else own


# --- the counters ----------------------------------------------------------------------------


class StoreUnavailable(Exception):
    """The shared store did not answer (its text is already redacted)."""


class _MemoryCounters:
    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def hit(self, item: RateLimitItem, *key: str) -> float | None:
        # In memory, never blocks: called straight from the event loop.
        if self.limiter.hit(item, *key):
            return None
        return self.limiter.get_window_stats(item, *key).reset_time

    def probe(self) -> None:
        pass

    def close(self) -> None:
        self.storage.reset()


class _RedisCounters:
    def __init__(self, uri: str, key_prefix: str) -> None:
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import MovingWindowRateLimiter as AsyncLimiter
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.uri = uri
        options: dict[str, Any] = {
            "socket_connect_timeout": STORE_TIMEOUT_SECONDS,
            "socket_timeout": STORE_TIMEOUT_SECONDS,
            # redis-py retries 3 times with seconds of backoff by default: that would hold
            # every /predict for seconds while Redis is down. One attempt, then fail fast.
            "retry": Retry(NoBackoff(), 0),
        }
        # Nothing connects here: the client connects on the first hit, in the serving loop.
        self.storage = RedisStorage(
            "async+" + uri,
            implementation="redispy",
            key_prefix=key_prefix,
            wrap_exceptions=True,
            **options,
        )
        self.limiter = AsyncLimiter(self.storage)

    async def hit(self, item: RateLimitItem, *key: str) -> float | None:
        from limits.errors import StorageError

        try:
            if await self.limiter.hit(item, *key):
                return None
            return (await self.limiter.get_window_stats(item, *key)).reset_time
        except (StorageError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(redact(f"{type(exc).__name__}: {exc}")) from None

    def probe(self) -> None:
        """At start-up, a synchronous PING: say at once, not at the first request, that the
        store is unreachable."""
        import redis

        # limits says redis+unix://, redis-py unix://.
        url = self.uri.replace("redis+unix://", "unix://", 1)
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=STORE_TIMEOUT_SECONDS,
            socket_timeout=STORE_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(redact(f"{type(exc).__name__}: {exc}")) from None
        finally:
            client.close()

    def close(self) -> None:
        # Called from the lifespan's (synchronous) shutdown, inside the running loop: close the
        # pool's sockets without awaiting, so no "unclosed connection" is left behind.
        pool = self.storage.bridge.storage.connection_pool  # type: ignore[attr-defined]
        for connection in [*pool._available_connections, *pool._in_use_connections]:
            connection._close()


@dataclass
class _Outage:
    since: float = 0.0
    retry_at: float = 0.0


class RateLimiter:
    """One per app, built from the settings when the app starts (``Runtime.start``)."""

    def __init__(
        self,
        *,
        storage_uri: str = "memory://",
        key_prefix: str = "ia_continu",
        trusted_proxies: str = "",
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.trusted = TrustedProxies(trusted_proxies)
        self.shared = not storage_uri.startswith("memory://")
        self.where = redact(storage_uri)
        self.counters: _MemoryCounters | _RedisCounters = (
            _RedisCounters(storage_uri, key_prefix) if self.shared else _MemoryCounters()
        )
        self.outage: _Outage | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> RateLimiter:
        limiter = cls(
            storage_uri=settings.rate_limit_storage_uri,
            key_prefix=settings.rate_limit_key_prefix,
            trusted_proxies=settings.trusted_proxies,
            enabled=settings.rate_limit_enabled,
        )
        if limiter.enabled and limiter.shared:
            try:
                limiter.counters.probe()
            except StoreUnavailable as exc:
                log.warning(
                    "rate-limit store %s unreachable at start (%s): until it answers, /predict "
                    "is served without a limit and /retrain answers 503",
                    limiter.where,
                    exc,
                )
        return limiter

    def close(self) -> None:
        with contextlib.suppress(Exception):  # shutting down: nothing to save
            self.counters.close()

    async def check(self, limit_text: str, name: str, request: Request, *, fail_open: bool) -> None:
        """Count one request; raise 429 past the limit (503 when the store is down and the
        limit fails closed)."""
        if not self.enabled:
            return
        item = _parse(limit_text)
        key = (name, client_key(request.scope, self.trusted))
        now = time.monotonic()
        if self.outage is not None and now < self.outage.retry_at:
            return self._store_down(fail_open)
        try:
            reset_at = await self.counters.hit(item, *key)
        except StoreUnavailable as exc:
            if self.outage is None:
                self.outage = _Outage(since=now)
                log.warning(
                    "rate-limit store %s unreachable (%s): /predict is served without a limit "
                    "and /retrain answers 503 until it answers again",
                    self.where,
                    exc,
                )
            self.outage.retry_at = now + STORE_RETRY_SECONDS
            return self._store_down(fail_open)
        if self.outage is not None:
            log.warning(
                "rate-limit store %s answers again after %.0f s: limits enforced",
                self.where,
                now - self.outage.since,
            )
            self.outage = None
        if reset_at is not None:
            retry_after = max(1, math.ceil(reset_at - time.time()))
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"rate limit exceeded: {item} per client; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )

    @staticmethod
    def _store_down(fail_open: bool) -> None:
        if fail_open:
            return
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "rate-limit store unreachable: retry later",
            headers={"Retry-After": str(math.ceil(STORE_RETRY_SECONDS))},
        )


def limit(setting_name: str, *, fail_open: bool):
    """A dependency enforcing the limit named by a setting (e.g. ``rate_limit_predict``)."""

    # async: the memory store never blocks and Redis is reached through asyncio; a sync
    # dependency would cost a thread-pool hop on every /predict (see api/deps.py).
    async def dependency(request: Request) -> None:
        runtime = request.app.state.runtime
        await runtime.limiter.check(
            getattr(runtime.settings, setting_name), setting_name, request, fail_open=fail_open
        )

    return dependency
