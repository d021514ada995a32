"""Classification: every raw outcome of a call lands on exactly one branch of the error tree."""

from __future__ import annotations

import asyncio
import inspect
import ssl
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
import aiohttp.client_exceptions
import orjson
import pytest
from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bulkresign.classify import CallOutcome, classify_exception, classify_response, outcome_of
from bulkresign.envelope import (
    MAX_RETRY_AFTER,
    Envelope,
    parse_envelope,
    parse_retry_after,
    retry_after_from,
)
from bulkresign.errors import (
    ApiError,
    AuthFailed,
    ConnectFailed,
    Fatal,
    InDoubt,
    NotApplied,
    PermissionDenied,
    Rejected,
    Throttled,
    TLSFailed,
)
from bulkresign.transport import RawResponse

WHAT = "POST /api/v3/resign-user-batch"
NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()

_KEY = ConnectionKey("api.genauth.test", 443, True, True, None, None, None, None)
_INFO = RequestInfo(
    URL("https://api.genauth.test/api/v3/get-user-batch?userIds=a@b.example"),
    "GET",
    CIMultiDictProxy(CIMultiDict({"authorization": "Bearer TOKEN-IN-HEADERS"})),
)


def _refused() -> OSError:
    return ConnectionRefusedError(111, "Connection refused")


# Every exception that can surface from an aiohttp request, with the class it must become:
# (name, factory, after a POST, after a GET).
EXCEPTIONS: list[tuple[str, Callable[[], BaseException], type[ApiError], type[ApiError]]] = [
    (
        "ClientConnectorError",
        lambda: aiohttp.ClientConnectorError(_KEY, _refused()),
        ConnectFailed,
        ConnectFailed,
    ),
    (
        "ClientConnectorDNSError",
        lambda: aiohttp.ClientConnectorDNSError(_KEY, OSError(-2, "Name or service not known")),
        ConnectFailed,
        ConnectFailed,
    ),
    (
        "ClientProxyConnectionError",
        lambda: aiohttp.ClientProxyConnectionError(_KEY, _refused()),
        ConnectFailed,
        ConnectFailed,
    ),
    (
        "UnixClientConnectorError",
        lambda: aiohttp.client_exceptions.UnixClientConnectorError("/tmp/s", _KEY, _refused()),
        ConnectFailed,
        ConnectFailed,
    ),
    (
        "ConnectionTimeoutError",
        lambda: aiohttp.ConnectionTimeoutError("Connection timeout to host"),
        ConnectFailed,
        ConnectFailed,
    ),
    ("ConnectionRefusedError", _refused, ConnectFailed, ConnectFailed),
    (
        "ClientConnectorCertificateError",
        lambda: aiohttp.ClientConnectorCertificateError(
            _KEY, ssl.SSLCertVerificationError(1, "certificate verify failed")
        ),
        TLSFailed,
        TLSFailed,
    ),
    (
        "ClientConnectorSSLError",
        lambda: aiohttp.ClientConnectorSSLError(_KEY, ssl.SSLError(1, "wrong version number")),
        TLSFailed,
        TLSFailed,
    ),
    (
        "ClientSSLError",
        lambda: aiohttp.ClientSSLError(_KEY, ssl.SSLError(1, "handshake failure")),
        TLSFailed,
        TLSFailed,
    ),
    (
        "ServerFingerprintMismatch",
        lambda: aiohttp.ServerFingerprintMismatch(b"a" * 32, b"b" * 32, "h", 443),
        TLSFailed,
        TLSFailed,
    ),
    (
        "SSLCertVerificationError",
        lambda: ssl.SSLCertVerificationError(1, "certificate verify failed"),
        TLSFailed,
        TLSFailed,
    ),
    (
        "ServerTimeoutError",
        lambda: aiohttp.ServerTimeoutError("Timeout on reading data from socket"),
        InDoubt,
        NotApplied,
    ),
    (
        "SocketTimeoutError",
        lambda: aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
        InDoubt,
        NotApplied,
    ),
    ("ServerDisconnectedError", aiohttp.ServerDisconnectedError, InDoubt, NotApplied),
    ("ServerConnectionError", aiohttp.ServerConnectionError, InDoubt, NotApplied),
    ("ClientConnectionError", aiohttp.ClientConnectionError, InDoubt, NotApplied),
    ("ClientOSError", lambda: aiohttp.ClientOSError(32, "Broken pipe"), InDoubt, NotApplied),
    ("ClientConnectionResetError", aiohttp.ClientConnectionResetError, InDoubt, NotApplied),
    (
        "ConnectionResetError",
        lambda: ConnectionResetError(104, "Connection reset by peer"),
        InDoubt,
        NotApplied,
    ),
    ("BrokenPipeError", lambda: BrokenPipeError(32, "Broken pipe"), InDoubt, NotApplied),
    ("OSError", lambda: OSError(5, "I/O error"), InDoubt, NotApplied),
    ("ssl.SSLError", lambda: ssl.SSLError(1, "bad record mac"), InDoubt, NotApplied),
    (
        "ClientPayloadError",
        lambda: aiohttp.ClientPayloadError("Response payload is not completed"),
        InDoubt,
        NotApplied,
    ),
    (
        "ClientResponseError",
        lambda: aiohttp.ClientResponseError(_INFO, (), status=400, message="Bad status line"),
        InDoubt,
        NotApplied,
    ),
    (
        "ContentTypeError",
        lambda: aiohttp.ContentTypeError(_INFO, (), message="unexpected mimetype"),
        InDoubt,
        NotApplied,
    ),
    (
        "TooManyRedirects",
        lambda: aiohttp.TooManyRedirects(_INFO, (), status=302),
        InDoubt,
        NotApplied,
    ),
    (
        "WSServerHandshakeError",
        lambda: aiohttp.WSServerHandshakeError(_INFO, ()),
        InDoubt,
        NotApplied,
    ),
    (
        "ClientHttpProxyError",
        lambda: aiohttp.ClientHttpProxyError(_INFO, (), status=407),
        ConnectFailed,
        ConnectFailed,
    ),
    (
        "UploadAbortedError",
        aiohttp.client_exceptions.UploadAbortedError,
        InDoubt,
        NotApplied,
    ),
    ("RedirectClientError", aiohttp.RedirectClientError, InDoubt, NotApplied),
    (
        "InvalidUrlRedirectClientError",
        lambda: aiohttp.InvalidUrlRedirectClientError("//x", "bad redirect"),
        InDoubt,
        NotApplied,
    ),
    (
        "NonHttpUrlRedirectClientError",
        lambda: aiohttp.NonHttpUrlRedirectClientError("ftp://x"),
        InDoubt,
        NotApplied,
    ),
    ("InvalidURL", lambda: aiohttp.InvalidURL("https://"), Fatal, Fatal),
    ("InvalidUrlClientError", lambda: aiohttp.InvalidUrlClientError("https://"), Fatal, Fatal),
    ("NonHttpUrlClientError", lambda: aiohttp.NonHttpUrlClientError("ftp://x"), Fatal, Fatal),
    ("ClientError", aiohttp.ClientError, InDoubt, NotApplied),
    ("asyncio.TimeoutError", asyncio.TimeoutError, InDoubt, NotApplied),
    ("TimeoutError", TimeoutError, InDoubt, NotApplied),
]


class TestClassifyException:
    @pytest.mark.parametrize(
        ("factory", "after_post", "after_get"),
        [pytest.param(f, p, g, id=name) for name, f, p, g in EXCEPTIONS],
    )
    def test_table(
        self,
        factory: Callable[[], BaseException],
        after_post: type[ApiError],
        after_get: type[ApiError],
    ) -> None:
        """Each transport exception maps to its class for a POST and for a GET."""
        post = classify_exception(factory(), what=WHAT, idempotent=False)
        get = classify_exception(factory(), what="GET /x", idempotent=True)
        assert type(post) is after_post
        assert type(get) is after_get

    def test_table_covers_every_aiohttp_client_error(self) -> None:
        """Every ClientError subclass aiohttp exports is in the table and classified."""
        exported = {
            name
            for name in aiohttp.client_exceptions.__all__
            if inspect.isclass(obj := getattr(aiohttp.client_exceptions, name))
            and issubclass(obj, aiohttp.ClientError)
        }
        assert exported <= {name for name, *_ in EXCEPTIONS}

    @pytest.mark.parametrize(
        "exc",
        [ValueError("x"), KeyError("k"), asyncio.CancelledError(), KeyboardInterrupt()],
        ids=type,
    )
    def test_programming_errors_and_cancellation_are_not_classified(
        self, exc: BaseException
    ) -> None:
        """Anything that is not a network failure is left for the caller to re-raise."""
        assert classify_exception(exc, what=WHAT, idempotent=False) is None

    def test_message_names_the_call_and_the_cause(self) -> None:
        """The message names the call and the exception class and says it may have applied."""
        error = classify_exception(aiohttp.ServerDisconnectedError(), what=WHAT, idempotent=False)
        assert error is not None
        assert str(error).startswith(WHAT)
        assert "ServerDisconnectedError" in str(error)
        assert "may have been applied" in str(error)

    def test_connect_failure_says_nothing_was_sent(self) -> None:
        """A connect failure names the host and says nothing was sent."""
        exc = aiohttp.ClientConnectorError(_KEY, _refused())
        error = classify_exception(exc, what=WHAT, idempotent=False)
        assert error is not None
        assert "api.genauth.test:443" in str(error)
        assert "nothing was sent" in str(error)

    def test_timeout_text_with_the_url_is_not_quoted(self) -> None:
        """A connect timeout's text quotes the URL (user IDs in the query); it stays out."""
        exc = aiohttp.ConnectionTimeoutError(
            "Connection timeout to host https://h/x?userIds=a@b.example"
        )
        error = classify_exception(exc, what="GET /x", idempotent=True)
        assert "a@b.example" not in str(error)
        assert "ConnectionTimeoutError" in str(error)

    def test_reset_names_the_os_reason(self) -> None:
        """A reset's OS reason is shown: it names no URL."""
        exc = aiohttp.ClientOSError(104, "Connection reset by peer")
        assert "Connection reset by peer" in str(
            classify_exception(exc, what=WHAT, idempotent=False)
        )

    def test_response_error_text_is_not_quoted(self) -> None:
        """A ClientResponseError's text (URL with user IDs, request headers) stays out."""
        exc = aiohttp.ClientResponseError(_INFO, (), status=400, message="Bad status line")
        error = classify_exception(exc, what="GET /x", idempotent=True)
        assert "a@b.example" not in str(error)
        assert "TOKEN-IN-HEADERS" not in str(error)


def raw(status: int, body: bytes | dict[str, object] = b"", **headers: str) -> RawResponse:
    content = orjson.dumps(body) if isinstance(body, dict) else body
    return RawResponse(status, {k.replace("_", "-"): v for k, v in headers.items()}, content)


def env(code: int, **extra: object) -> dict[str, object]:
    return {"statusCode": code, "message": f"m{code}", **extra}


# (id, response, class after a POST, class after a GET); None means success.
RESPONSES: list[tuple[str, RawResponse, type[ApiError] | None, type[ApiError] | None]] = [
    ("200 ok", raw(200, env(200, data={"success": True})), None, None),
    ("envelope 400", raw(200, env(400, message="参数 userIds 格式错误")), Rejected, Rejected),
    ("envelope 404/2004", raw(200, env(404, apiCode=2004)), Rejected, Rejected),
    ("envelope 409", raw(200, env(409)), Rejected, Rejected),
    ("envelope 422", raw(200, env(422)), Rejected, Rejected),
    ("envelope 402", raw(200, env(402)), Rejected, Rejected),
    ("envelope 499", raw(200, env(499)), Rejected, Rejected),
    ("envelope 401", raw(200, env(401, apiCode=2020)), AuthFailed, AuthFailed),
    ("envelope 403", raw(200, env(403)), PermissionDenied, PermissionDenied),
    ("envelope 429", raw(200, env(429)), Throttled, Throttled),
    ("envelope 500", raw(200, env(500)), InDoubt, NotApplied),
    ("envelope 503", raw(200, env(503)), InDoubt, NotApplied),
    ("envelope 504", raw(200, env(504)), InDoubt, NotApplied),
    ("envelope 601", raw(200, env(601)), InDoubt, NotApplied),
    ("envelope 201", raw(200, env(201)), InDoubt, NotApplied),
    ("http 429 envelope", raw(429, env(429)), Throttled, Throttled),
    ("http 429 bare", raw(429, b"Too Many Requests"), Throttled, Throttled),
    ("http 401 bare", raw(401, b"Unauthorized"), AuthFailed, AuthFailed),
    ("http 403 html", raw(403, b"<html>denied</html>"), PermissionDenied, PermissionDenied),
    ("http 400 envelope", raw(400, env(400)), Rejected, Rejected),
    ("http 404 html", raw(404, b"<html>Not Found</html>"), Rejected, Rejected),
    ("http 413", raw(413, b""), Rejected, Rejected),
    ("http 500 envelope", raw(500, env(500)), InDoubt, NotApplied),
    ("http 502 html", raw(502, b"<html>Bad Gateway</html>"), InDoubt, NotApplied),
    ("http 503", raw(503, b"", retry_after="5"), InDoubt, NotApplied),
    ("http 504 envelope 200", raw(504, env(200)), InDoubt, NotApplied),
    ("http 301", raw(301, b"", location="https://x"), InDoubt, NotApplied),
    ("http 204 empty", raw(204, b""), InDoubt, NotApplied),
    ("200 empty", raw(200, b""), InDoubt, NotApplied),
    ("200 html", raw(200, b"<html>maintenance</html>"), InDoubt, NotApplied),
    ("200 truncated json", raw(200, b'{"statusCode": 200, "mess'), InDoubt, NotApplied),
    ("200 json array", raw(200, b"[1, 2]"), InDoubt, NotApplied),
    ("200 no statusCode", raw(200, {"message": "ok", "data": {}}), InDoubt, NotApplied),
    ("200 string statusCode", raw(200, {"statusCode": "200"}), InDoubt, NotApplied),
    ("200 bool statusCode", raw(200, {"statusCode": True}), InDoubt, NotApplied),
]


class TestClassifyResponse:
    @pytest.mark.parametrize(
        ("response", "after_post", "after_get"),
        [pytest.param(r, p, g, id=name) for name, r, p, g in RESPONSES],
    )
    def test_table(
        self,
        response: RawResponse,
        after_post: type[ApiError] | None,
        after_get: type[ApiError] | None,
    ) -> None:
        """Each response maps to success or its class, for a POST and for a GET."""
        post = classify_response(response, what=WHAT, idempotent=False, now=NOW)
        get = classify_response(response, what="GET /x", idempotent=True, now=NOW)
        assert (type(post) is Envelope) if after_post is None else (type(post) is after_post)
        assert (type(get) is Envelope) if after_get is None else (type(get) is after_get)

    def test_every_status_is_classified(self) -> None:
        """Every HTTP status 100..599, with or without an envelope, gives a verdict."""
        for status in range(100, 600):
            for body in (b"", orjson.dumps(env(200))):
                verdict = classify_response(raw(status, body), what=WHAT, idempotent=False, now=NOW)
                assert isinstance(verdict, Envelope | ApiError)
                assert isinstance(verdict, Envelope) == (200 <= status < 300 and body != b"")

    def test_rejected_carries_the_envelope_fields(self) -> None:
        """A business error carries statusCode, apiCode, message and requestId."""
        response = raw(200, env(404, apiCode=2004, requestId="rq-1", message="user not found"))
        error = classify_response(response, what=WHAT, idempotent=False, now=NOW)
        assert isinstance(error, Rejected)
        assert (error.status_code, error.api_code, error.request_id) == (404, 2004, "rq-1")
        assert error.http_status == 200
        assert str(error) == f"{WHAT}: statusCode 404, apiCode 2004: user not found"

    def test_in_doubt_carries_the_request_id(self) -> None:
        """A 5xx envelope keeps its requestId on the InDoubt error."""
        response = raw(200, env(500, requestId="rq-5"))
        error = classify_response(response, what=WHAT, idempotent=False, now=NOW)
        assert isinstance(error, InDoubt)
        assert error.request_id == "rq-5"

    def test_throttled_reads_retry_after(self) -> None:
        """HTTP 429 with Retry-After: 7 is Throttled with retry_after 7."""
        error = classify_response(
            raw(429, env(429), retry_after="7"), what=WHAT, idempotent=False, now=NOW
        )
        assert isinstance(error, Throttled)
        assert error.retry_after == 7.0

    def test_throttled_without_header_has_no_retry_after(self) -> None:
        """A body statusCode 429 without the header leaves retry_after None."""
        error = classify_response(raw(200, env(429)), what=WHAT, idempotent=False, now=NOW)
        assert isinstance(error, Throttled)
        assert error.retry_after is None

    def test_html_body_is_not_quoted(self) -> None:
        """A non-JSON body is summarized by status, never quoted."""
        error = classify_response(
            raw(502, b"<html>secret page</html>"), what=WHAT, idempotent=False, now=NOW
        )
        assert "secret page" not in str(error)
        assert "HTTP 502 without a JSON envelope" in str(error)

    def test_server_message_is_one_line_and_whole(self) -> None:
        """A server message is flattened to one line, and kept whole: the session cuts it once
        it is scrubbed of secrets (test_client's TestSecrecy)."""
        response = raw(200, env(400, message="line1\nline2\r\t" + "x" * 1000))
        error = classify_response(response, what=WHAT, idempotent=False, now=NOW)
        assert "\n" not in str(error)
        assert str(error).endswith("line1 line2 " + "x" * 1000)


class TestParseEnvelope:
    def test_fields(self) -> None:
        """statusCode, message, apiCode, requestId and data are read."""
        body = orjson.dumps(env(404, apiCode=2004, requestId="r", data=[1]))
        assert parse_envelope(body) == Envelope(404, "m404", 2004, "r", [1])

    def test_absent_optional_fields(self) -> None:
        """A minimal envelope has no apiCode, no requestId and no data."""
        assert parse_envelope(b'{"statusCode": 200}') == Envelope(200, "", None, None, None)

    def test_float_status_code(self) -> None:
        """An integral float statusCode is accepted."""
        envelope = parse_envelope(b'{"statusCode": 200.0}')
        assert envelope is not None and envelope.status_code == 200

    @pytest.mark.parametrize("body", [b"", b"null", b"[]", b"{", b'"x"', b'{"statusCode": 1.5}'])
    def test_not_an_envelope(self, body: bytes) -> None:
        """Anything but an object with an integer statusCode is no envelope."""
        assert parse_envelope(body) is None


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("0", 0.0),
            ("7", 7.0),
            (" 120 ", 120.0),
            ("300", 300.0),
            ("301", MAX_RETRY_AFTER),
            ("99999999999999999999", MAX_RETRY_AFTER),
            ("Wed, 01 Jan 2025 12:00:30 GMT", 30.0),
            ("Wednesday, 01-Jan-25 12:01:00 GMT", 60.0),
            ("Wed Jan  1 12:00:10 2025", 10.0),
            ("Wed, 01 Jan 2025 11:59:00 GMT", 0.0),
            ("Wed, 01 Jan 2025 14:00:00 GMT", MAX_RETRY_AFTER),
        ],
    )
    def test_valid(self, value: str, expected: float) -> None:
        """delay-seconds and every HTTP-date form give the pause, clipped to 0..cap."""
        assert parse_retry_after(value, now=NOW) == expected

    @pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "5s", "٣", "0x10", "+5"])
    def test_garbage_is_absent(self, value: str | None) -> None:
        """A missing, negative, fractional or non-ASCII value counts as no Retry-After."""
        assert parse_retry_after(value, now=NOW) is None

    def test_custom_cap(self) -> None:
        """The cap is a parameter."""
        assert parse_retry_after("60", now=NOW, cap=10.0) == 10.0

    def test_date_is_measured_against_the_response_date(self) -> None:
        """An HTTP-date is relative to the response's Date header, cancelling clock skew."""
        headers = {
            "date": "Wed, 01 Jan 2025 13:00:00 GMT",
            "retry-after": "Wed, 01 Jan 2025 13:00:20 GMT",
        }
        assert retry_after_from(headers, now=NOW) == 20.0

    def test_unparseable_date_header_falls_back_to_now(self) -> None:
        """A garbage Date header falls back to the local clock."""
        headers = {"date": "yesterday", "retry-after": "Wed, 01 Jan 2025 12:00:05 GMT"}
        assert retry_after_from(headers, now=NOW) == 5.0


class TestOutcomeOf:
    @pytest.mark.parametrize(
        ("error", "outcome"),
        [
            (None, CallOutcome.OK),
            (Throttled("t"), CallOutcome.THROTTLED),
            (ConnectFailed("c"), CallOutcome.CONNECT_FAILED),
            (NotApplied("n"), CallOutcome.NOT_APPLIED),
            (Rejected("r"), CallOutcome.REJECTED),
            (InDoubt("i"), CallOutcome.IN_DOUBT),
            (AuthFailed("a"), CallOutcome.AUTH_FAILED),
            (PermissionDenied("p"), CallOutcome.PERMISSION_DENIED),
            (TLSFailed("t"), CallOutcome.TLS_FAILED),
            (Fatal("f"), CallOutcome.FATAL),
        ],
    )
    def test_each_error_has_its_outcome(self, error: ApiError | None, outcome: CallOutcome) -> None:
        """Each error class counts under its own outcome."""
        assert outcome_of(error) is outcome
