"""Configuration: secrets that never print, credentials from env or a private file, safe hosts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bulkresign.config import (
    DEFAULT_HOST,
    Credentials,
    Secret,
    Timeouts,
    load_credentials,
    resolve_host,
)
from bulkresign.errors import ConfigError

SECRET = "s3cr3t-value-4711"


def private_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


class TestSecret:
    def test_repr_and_str_hide_the_value(self) -> None:
        """repr, str and f-string formatting of a Secret all show '***'."""
        secret = Secret(SECRET)
        assert repr(secret) == "***"
        assert str(secret) == "***"
        assert f"{secret} {secret!r} {secret!s}" == "*** *** ***"

    def test_reveal_returns_the_value(self) -> None:
        """reveal() is the one way to get the secret back."""
        assert Secret(SECRET).reveal() == SECRET

    def test_credentials_repr_hides_the_secret(self) -> None:
        """A Credentials repr shows the key ID but not the secret."""
        text = repr(Credentials("key-id", Secret(SECRET)))
        assert "key-id" in text
        assert SECRET not in text

    def test_secret_is_frozen(self) -> None:
        """A Secret cannot be changed after creation."""
        secret = Secret(SECRET)
        with pytest.raises(AttributeError):
            secret._value = "other"  # type: ignore[misc]

    def test_equal_secrets_compare_equal(self) -> None:
        """Two Secrets with the same value are equal and hash alike."""
        assert Secret(SECRET) == Secret(SECRET)
        assert hash(Secret(SECRET)) == hash(Secret(SECRET))
        assert Secret(SECRET) != Secret("other")


class TestLoadCredentialsFromEnvironment:
    def test_both_variables(self) -> None:
        """GENAUTH_ACCESS_KEY_ID and GENAUTH_ACCESS_KEY_SECRET give the credentials."""
        creds = load_credentials(
            {"GENAUTH_ACCESS_KEY_ID": "kid", "GENAUTH_ACCESS_KEY_SECRET": SECRET}
        )
        assert creds.access_key_id == "kid"
        assert creds.access_key_secret.reveal() == SECRET

    def test_only_one_variable_names_the_missing_one(self) -> None:
        """Setting only the ID is an error that names the secret variable."""
        with pytest.raises(ConfigError, match="GENAUTH_ACCESS_KEY_SECRET is not"):
            load_credentials({"GENAUTH_ACCESS_KEY_ID": "kid"})

    def test_only_the_secret_names_the_id(self) -> None:
        """Setting only the secret is an error that names the ID variable, not the secret."""
        with pytest.raises(ConfigError, match="GENAUTH_ACCESS_KEY_ID is not") as info:
            load_credentials({"GENAUTH_ACCESS_KEY_SECRET": SECRET})
        assert SECRET not in str(info.value)

    def test_nothing_configured_gives_a_hint(self) -> None:
        """With no credentials anywhere the error says how to provide them."""
        with pytest.raises(ConfigError, match="GENAUTH_CREDENTIALS_FILE"):
            load_credentials({})

    def test_credentials_file_variable(self, tmp_path: Path) -> None:
        """GENAUTH_CREDENTIALS_FILE points at a credentials file."""
        path = private_file(
            tmp_path / "creds.json", f'{{"accessKeyId": "kid", "accessKeySecret": "{SECRET}"}}'
        )
        creds = load_credentials({"GENAUTH_CREDENTIALS_FILE": str(path)})
        assert creds.access_key_secret.reveal() == SECRET

    def test_explicit_file_wins_over_environment(self, tmp_path: Path) -> None:
        """A file passed as the argument takes precedence over the env variables."""
        path = private_file(
            tmp_path / "creds.json", '{"accessKeyId": "from-file", "accessKeySecret": "x"}'
        )
        env = {"GENAUTH_ACCESS_KEY_ID": "from-env", "GENAUTH_ACCESS_KEY_SECRET": SECRET}
        assert load_credentials(env, path).access_key_id == "from-file"


class TestLoadCredentialsFromFile:
    def test_json(self, tmp_path: Path) -> None:
        """A JSON object with accessKeyId and accessKeySecret is read."""
        path = private_file(
            tmp_path / "c.json", f'{{"accessKeyId": " kid ", "accessKeySecret": "{SECRET}"}}\n'
        )
        creds = load_credentials({}, path)
        assert (creds.access_key_id, creds.access_key_secret.reveal()) == ("kid", SECRET)

    def test_key_value_lines(self, tmp_path: Path) -> None:
        """KEY=VALUE lines with comments, blank lines, export and quotes are read."""
        text = (
            "# GenAuth key\n\n"
            "export GENAUTH_ACCESS_KEY_ID=kid\r\n"
            f"GENAUTH_ACCESS_KEY_SECRET = '{SECRET}'\n"
            "OTHER=ignored\n"
        )
        creds = load_credentials({}, private_file(tmp_path / "c.env", text))
        assert (creds.access_key_id, creds.access_key_secret.reveal()) == ("kid", SECRET)

    def test_group_readable_file_is_refused(self, tmp_path: Path) -> None:
        """A credentials file others can read is refused with a chmod hint."""
        path = private_file(tmp_path / "c.json", '{"accessKeyId":"a","accessKeySecret":"b"}', 0o644)
        with pytest.raises(ConfigError, match="chmod 600"):
            load_credentials({}, path)

    def test_missing_file_is_named(self, tmp_path: Path) -> None:
        """A credentials file that does not exist is a one-line error naming it."""
        path = tmp_path / "absent.json"
        with pytest.raises(ConfigError, match="absent.json: credentials file not found"):
            load_credentials({}, path)

    def test_invalid_json_does_not_echo_the_content(self, tmp_path: Path) -> None:
        """Broken JSON is reported without quoting the file, which holds the secret."""
        path = private_file(tmp_path / "c.json", f'{{"accessKeySecret": "{SECRET}",}}')
        with pytest.raises(ConfigError, match="not valid JSON") as info:
            load_credentials({}, path)
        assert SECRET not in str(info.value)

    def test_malformed_line_is_numbered_not_echoed(self, tmp_path: Path) -> None:
        """A line that is not KEY=VALUE is named by number, without its text."""
        path = private_file(tmp_path / "c.env", f"GENAUTH_ACCESS_KEY_ID=kid\n{SECRET}\n")
        with pytest.raises(ConfigError, match=r"c\.env:2: expected KEY=VALUE") as info:
            load_credentials({}, path)
        assert SECRET not in str(info.value)

    def test_missing_secret_is_named(self, tmp_path: Path) -> None:
        """A file without the secret says which value is missing."""
        path = private_file(tmp_path / "c.env", "GENAUTH_ACCESS_KEY_ID=kid\n")
        with pytest.raises(ConfigError, match="no access key secret"):
            load_credentials({}, path)

    def test_non_string_json_value(self, tmp_path: Path) -> None:
        """A JSON secret that is not a string is refused by name."""
        path = private_file(tmp_path / "c.json", '{"accessKeyId": "k", "accessKeySecret": 5}')
        with pytest.raises(ConfigError, match="accessKeySecret must be a string"):
            load_credentials({}, path)


class TestResolveHost:
    def test_default(self) -> None:
        """Without --host or GENAUTH_HOST the public GenAuth host is used."""
        assert resolve_host(None, {}) == DEFAULT_HOST

    def test_environment(self) -> None:
        """GENAUTH_HOST is used when --host is absent."""
        assert resolve_host(None, {"GENAUTH_HOST": "https://a.example"}) == "https://a.example"

    def test_cli_wins(self) -> None:
        """--host takes precedence over GENAUTH_HOST."""
        env = {"GENAUTH_HOST": "https://a.example"}
        assert resolve_host("https://b.example", env) == "https://b.example"

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("https://api.genauth.ai", "https://api.genauth.ai"),
            ("https://api.genauth.ai/", "https://api.genauth.ai"),
            ("HTTPS://API.GenAuth.AI", "https://api.genauth.ai"),
            ("https://core.example.com:8443", "https://core.example.com:8443"),
            ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
            ("http://127.5.6.7", "http://127.5.6.7"),
            ("http://localhost:8787/", "http://localhost:8787"),
            ("http://[::1]:8787", "http://[::1]:8787"),
            ("https://10.0.0.5", "https://10.0.0.5"),
            ("  https://api.genauth.ai  ", "https://api.genauth.ai"),
        ],
    )
    def test_accepted(self, given: str, expected: str) -> None:
        """Valid origins are normalized to scheme://host[:port] without a trailing slash."""
        assert resolve_host(given, {}) == expected

    @pytest.mark.parametrize(
        ("given", "reason"),
        [
            ("http://api.genauth.ai", "loopback"),
            ("http://10.0.0.5:8787", "loopback"),
            ("http://localhost.example.com", "loopback"),
            ("http://[::2]", "loopback"),
            ("api.genauth.ai", "https://"),
            ("localhost:8787", "https://"),
            ("ftp://api.genauth.ai", "https://"),
            ("https://", "https://"),
            ("https://api.genauth.ai/v3", "origin only"),
            ("https://api.genauth.ai?x=1", "origin only"),
            ("https://api.genauth.ai?", "origin only"),
            ("https://api.genauth.ai#frag", "origin only"),
            ("https://user:pw@api.genauth.ai", "user:password"),
            ("https://api.genauth.ai:99999", "not a valid URL"),
            ("https://api genauth.ai", "spaces"),
            ("https://bad_host!.example", "not a valid host name"),
            ("", "empty"),
        ],
    )
    def test_refused(self, given: str, reason: str) -> None:
        """Unsafe or malformed hosts are a ConfigError naming the host and the reason."""
        with pytest.raises(ConfigError, match=reason) as info:
            resolve_host(given, {})
        shown = given.strip().replace("user:pw@", "***@")
        assert repr(shown) in str(info.value)

    @pytest.mark.parametrize(
        "host", ["https://ak:s3cret-value@api.genauth.ai", "http://ak:s3cret-value@127.0.0.1@x"]
    )
    def test_a_password_in_the_host_is_never_quoted(self, host: str) -> None:
        """A user:password@ in the host is refused without being quoted back (CI logs)."""
        with pytest.raises(ConfigError, match=r"\*\*\*@") as info:
            resolve_host(None, {"GENAUTH_HOST": host})
        assert "s3cret" not in str(info.value)

    def test_refusal_names_the_environment_variable(self) -> None:
        """A bad GENAUTH_HOST is reported under that name."""
        with pytest.raises(ConfigError, match="GENAUTH_HOST 'http://example.com'"):
            resolve_host(None, {"GENAUTH_HOST": "http://example.com"})


class TestTimeouts:
    def test_defaults(self) -> None:
        """The defaults are 5 s connect, 30 s read, 60 s total."""
        assert Timeouts() == Timeouts(connect=5.0, read=30.0, total=60.0)

    @pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan")])
    def test_non_positive_is_refused(self, bad: float) -> None:
        """A timeout that is not a positive finite number is a ConfigError."""
        with pytest.raises(ConfigError, match="read timeout must be a positive"):
            Timeouts(read=bad)
