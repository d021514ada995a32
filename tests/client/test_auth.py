"""The management token: JWT decoding, the token answer, and single-flight renewal."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Protocol

import anyio
import orjson
import pytest
from anyio import wait_all_tasks_blocked
from anyio.lowlevel import checkpoint

from bulkresign.auth import ManagementToken, TokenSource, decode_jwt_claims, token_from_envelope
from bulkresign.config import Secret
from bulkresign.envelope import Envelope
from bulkresign.errors import AuthFailed

Jwt = Callable[[dict[str, object]], str]


class Clock(Protocol):
    """The manual clock fixture."""

    def __call__(self) -> float: ...
    def advance(self, seconds: float) -> None: ...


def claims_with_url_alphabet() -> dict[str, object]:
    """Claims whose base64url encoding contains both '-' and '_' (the vendor SDK's crash)."""
    for n in range(64):
        # U+FFFF is EF BF BF in UTF-8: runs of one bits, which base64 spells '-' (62) and '_' (63).
        claims: dict[str, object] = {"scoped_userpool_id": "pool-1", "name": "x" * n + "\uffff"}
        encoded = base64.urlsafe_b64encode(orjson.dumps(claims)).decode()
        if "-" in encoded and "_" in encoded and not encoded.endswith("=="):
            return claims
    raise AssertionError("no claims found")  # pragma: no cover


class TestDecodeJwtClaims:
    def test_plain_payload(self, jwt: Jwt) -> None:
        """The payload of a JWT is decoded to its claims."""
        assert decode_jwt_claims(jwt({"scoped_userpool_id": "p", "exp": 1}))["exp"] == 1

    def test_url_safe_alphabet_and_missing_padding(self, jwt: Jwt) -> None:
        """A payload with '-' and '_' and without padding decodes (the vendor SDK crashes)."""
        claims = claims_with_url_alphabet()
        token = jwt(claims)
        payload = token.split(".")[1]
        assert "-" in payload and "_" in payload and "=" not in payload
        assert decode_jwt_claims(token) == claims

    @pytest.mark.parametrize("padding", [0, 1, 2, 3])
    def test_every_payload_length(self, jwt: Jwt, padding: int) -> None:
        """Payloads of every length modulo 4 decode."""
        claims: dict[str, object] = {"scoped_userpool_id": "p" * (1 + padding)}
        assert decode_jwt_claims(jwt(claims)) == claims

    def test_payload_with_padding_kept(self) -> None:
        """A payload that kept its '=' padding decodes too."""
        payload = base64.urlsafe_b64encode(b'{"a":1}').decode()
        assert payload.endswith("=")
        assert decode_jwt_claims(f"h.{payload}.s") == {"a": 1}

    @pytest.mark.parametrize(
        "token",
        ["", "abc", "a.b", "a.b.c.d", "a..c", "h.!!!!.s", "h.é.s", "h.bnVsbA.s", "h.eyJh.s"],
    )
    def test_malformed(self, token: str) -> None:
        """Wrong part counts, non-base64 payloads and non-object JSON are ValueErrors."""
        with pytest.raises(ValueError, match="JWT"):
            decode_jwt_claims(token)


class TestTokenFromEnvelope:
    def test_reads_token_pool_and_lifetime(self, jwt: Jwt) -> None:
        """access_token, expires_in and the scoped_userpool_id claim make the token."""
        token = jwt({"scoped_userpool_id": "pool-9"})
        env = Envelope(200, "", None, None, {"access_token": token, "expires_in": 7200})
        result = token_from_envelope(env, obtained_at=5.0)
        assert (result.userpool_id, result.obtained_at, result.expires_in) == (
            "pool-9",
            5.0,
            7200.0,
        )
        assert result.value.reveal() == token

    def test_token_repr_hides_the_token(self, jwt: Jwt) -> None:
        """A ManagementToken's repr does not contain the token."""
        token = jwt({"scoped_userpool_id": "pool-9"})
        env = Envelope(200, "", None, None, {"access_token": token, "expires_in": 7200})
        assert token not in repr(token_from_envelope(env, obtained_at=0.0))

    def test_missing_pool_claim(self, jwt: Jwt) -> None:
        """A token without scoped_userpool_id is AuthFailed with a clear message."""
        token = jwt({"sub": "x"})
        env = Envelope(200, "", None, None, {"access_token": token, "expires_in": 7200})
        with pytest.raises(AuthFailed, match="no scoped_userpool_id claim") as info:
            token_from_envelope(env, obtained_at=0.0)
        assert token not in str(info.value)

    @pytest.mark.parametrize(
        "data",
        [
            None,
            [],
            {"expires_in": 7200},
            {"access_token": "", "expires_in": 7200},
            {"access_token": 5, "expires_in": 7200},
        ],
    )
    def test_missing_token(self, data: object) -> None:
        """An answer without a token string is AuthFailed."""
        with pytest.raises(AuthFailed, match="without"):
            token_from_envelope(Envelope(200, "", None, "rq", data), obtained_at=0.0)

    @pytest.mark.parametrize("expires_in", [None, 0, -5, "7200", True, float("inf")])
    def test_bad_lifetime(self, jwt: Jwt, expires_in: object) -> None:
        """An answer without a positive finite expires_in is AuthFailed."""
        data = {"access_token": jwt({"scoped_userpool_id": "p"}), "expires_in": expires_in}
        with pytest.raises(AuthFailed, match="expires_in"):
            token_from_envelope(Envelope(200, "", None, None, data), obtained_at=0.0)

    def test_unreadable_token(self) -> None:
        """A token that is not a JWT is AuthFailed without quoting it."""
        data = {"access_token": "opaque-token-value", "expires_in": 10}
        with pytest.raises(AuthFailed, match="cannot be read") as info:
            token_from_envelope(Envelope(200, "", None, None, data), obtained_at=0.0)
        assert "opaque-token-value" not in str(info.value)


class Minter:
    """A fetch function that counts calls and can be held open."""

    def __init__(self, clock: Callable[[], float], lifetime: float = 100.0) -> None:
        self.calls = 0
        self.clock = clock
        self.lifetime = lifetime
        self.gate: anyio.Event | None = None
        self.pool = "pool"

    async def __call__(self) -> ManagementToken:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        await checkpoint()
        return ManagementToken(Secret(f"t{self.calls}"), self.pool, self.clock(), self.lifetime)


class TestTokenSource:
    async def test_first_get_fetches(self, clock: Clock) -> None:
        """The first get() fetches a token."""
        minter = Minter(clock)
        source = TokenSource(minter, clock=clock, refresh_margin=0.1)
        assert (await source.get()).value.reveal() == "t1"
        assert minter.calls == 1

    async def test_reuses_until_the_margin(self, clock: Clock) -> None:
        """A token is reused until margin x lifetime before expiry, then renewed."""
        minter = Minter(clock, lifetime=100.0)
        source = TokenSource(minter, clock=clock, refresh_margin=0.1)
        await source.get()
        clock.advance(89.9)
        assert (await source.get()).value.reveal() == "t1"
        clock.advance(0.1)
        assert (await source.get()).value.reveal() == "t2"
        assert minter.calls == 2

    async def test_zero_margin_renews_at_expiry(self, clock: Clock) -> None:
        """With margin 0 the token is used for its whole lifetime."""
        minter = Minter(clock, lifetime=100.0)
        source = TokenSource(minter, clock=clock, refresh_margin=0.0)
        await source.get()
        clock.advance(99.99)
        await source.get()
        clock.advance(0.01)
        await source.get()
        assert minter.calls == 2

    async def test_single_flight(self, clock: Clock) -> None:
        """64 concurrent callers while no token exists cause exactly one fetch."""
        minter = Minter(clock)
        minter.gate = anyio.Event()
        source = TokenSource(minter, clock=clock, refresh_margin=0.1)
        seen: list[str] = []

        async def caller() -> None:
            seen.append((await source.get()).value.reveal())

        async with anyio.create_task_group() as tg:
            for _ in range(64):
                tg.start_soon(caller)
            await wait_all_tasks_blocked()
            minter.gate.set()
        assert minter.calls == 1
        assert seen == ["t1"] * 64

    async def test_invalidate_forces_a_fetch(self, clock: Clock) -> None:
        """After invalidate(token) the next get() fetches a new token."""
        minter = Minter(clock)
        source = TokenSource(minter, clock=clock, refresh_margin=0.1)
        token = await source.get()
        source.invalidate(token)
        assert (await source.get()).value.reveal() == "t2"

    async def test_invalidating_a_stale_token_keeps_the_new_one(self, clock: Clock) -> None:
        """Invalidating an older token does not drop the one another caller already renewed."""
        minter = Minter(clock)
        source = TokenSource(minter, clock=clock, refresh_margin=0.1)
        old = await source.get()
        source.invalidate(old)
        await source.get()
        source.invalidate(old)
        assert (await source.get()).value.reveal() == "t2"
        assert minter.calls == 2

    async def test_failed_fetch_lets_the_next_caller_retry(self, clock: Clock) -> None:
        """A fetch that raises leaves no token, and the next get() tries again."""
        calls = 0

        async def flaky() -> ManagementToken:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise AuthFailed("refused")
            return ManagementToken(Secret("t"), "pool", 0.0, 100.0)

        source = TokenSource(flaky, clock=clock, refresh_margin=0.1)
        with pytest.raises(AuthFailed):
            await source.get()
        assert (await source.get()).value.reveal() == "t"

    async def test_a_renewed_token_of_another_userpool_is_refused(self, clock: Clock) -> None:
        """The key names another pool at renewal (mid-run): AuthFailed, the token not taken."""
        minter = Minter(clock, lifetime=100.0)
        source = TokenSource(minter, clock=clock, refresh_margin=0.1)
        await source.get()
        minter.pool = "another-pool"
        clock.advance(95.0)
        with pytest.raises(AuthFailed, match="scoped to userpool another-pool, not pool"):
            await source.get()
        with pytest.raises(AuthFailed):
            await source.get()

    @pytest.mark.parametrize("margin", [-0.1, 1.0, 2.0])
    def test_margin_must_be_a_fraction(self, clock: Clock, margin: float) -> None:
        """refresh_margin outside [0, 1) is a programming error."""
        with pytest.raises(ValueError, match="refresh_margin"):
            TokenSource(Minter(clock), clock=clock, refresh_margin=margin)
