"""The auth state machine, challenges, tokens and credentials: fed by hand, no network."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imageprep.model.errors import AuthenticationError, ConfigurationError
from imageprep.registry.auth import Authenticator, TokenFetch, repository_scope
from imageprep.registry.challenge import parse_challenge
from imageprep.registry.credentials import (
    Credential,
    CredentialStore,
    default_auth_files,
    parse_registry_credentials,
    read_auth_file,
)
from imageprep.registry.tokens import TokenCache, parse_timestamp, token_from_reply

REGISTRY = "registry.example:5000"
SCOPE = repository_scope("tripleo/nova-api")
BEARER = 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:tripleo/nova-api:pull"'
SECRET = "hunter2-very-secret"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def token_reply(token: str = "tok-1", **extra: object) -> bytes:
    return json.dumps({"token": token, **extra}).encode()


def authenticator(
    credentials: dict[str, Credential] | None = None,
    clock: Clock | None = None,
    cache: TokenCache | None = None,
) -> Authenticator:
    return Authenticator(CredentialStore(credentials or {}), cache or TokenCache(), clock=clock or Clock())


# --- challenges ----------------------------------------------------------------------------------


def test_bearer_challenge_params_are_parsed_with_commas_inside_quotes() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push",'
        'error="invalid_token"'
    )
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example/token"
    assert challenge.service == "reg"
    assert challenge.scope == "repository:a/b:pull,push"
    assert challenge.error == "invalid_token"


def test_challenge_accepts_spaces_case_and_bare_tokens() -> None:
    challenge = parse_challenge('BEARER  Realm = "https://a/t" ,  Service=reg, error=insufficient_scope')
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://a/t"
    assert challenge.service == "reg"
    assert challenge.error == "insufficient_scope"


def test_challenge_unescapes_quoted_pairs() -> None:
    challenge = parse_challenge(r'Basic realm="say \"hi\""')
    assert challenge is not None and challenge.realm == 'say "hi"'


def test_first_of_several_challenges_is_used() -> None:
    challenge = parse_challenge('Bearer realm="https://a/t",service="s", Basic realm="other"')
    assert challenge is not None
    assert (challenge.scheme, challenge.realm, challenge.service) == ("bearer", "https://a/t", "s")


def test_empty_challenge_has_no_scheme() -> None:
    assert parse_challenge("") is None
    assert parse_challenge("   ") is None


# --- bearer flow -----------------------------------------------------------------------------------


def test_unknown_registry_is_tried_anonymously_first() -> None:
    assert authenticator().authorization(REGISTRY, SCOPE) is None


def test_bearer_challenge_asks_for_a_token_with_service_scope_and_basic_credentials() -> None:
    auth = authenticator({REGISTRY: Credential("foo", "bar")})
    step = auth.challenged(REGISTRY, SCOPE, BEARER, None)
    assert isinstance(step, TokenFetch)
    assert step.url == "https://auth.example/token"
    assert step.params == (("service", "registry.example"), ("scope", SCOPE))
    assert step.authorization == "Basic Zm9vOmJhcg=="


def test_push_scope_and_extra_challenge_scope_are_both_requested() -> None:
    push = repository_scope("tripleo/nova-api", "pull,push")
    step = authenticator().challenged(REGISTRY, push, BEARER, None)
    assert isinstance(step, TokenFetch)
    assert ("scope", push) in step.params
    assert ("scope", "repository:tripleo/nova-api:pull") in step.params
    assert step.authorization is None  # anonymous token


def test_token_is_cached_and_reused_until_it_expires() -> None:
    clock = Clock()
    auth = authenticator(clock=clock)
    step = auth.challenged(REGISTRY, SCOPE, BEARER, None)
    assert isinstance(step, TokenFetch)
    assert auth.token_received(step, 200, token_reply("abc", expires_in=300)) == "Bearer abc"
    assert auth.authorization(REGISTRY, SCOPE) == "Bearer abc"
    clock.now += 200
    assert auth.authorization(REGISTRY, SCOPE) == "Bearer abc"
    clock.now += 200
    again = auth.authorization(REGISTRY, SCOPE)
    assert isinstance(again, TokenFetch), "an expired token must be fetched again, up front"


def test_token_for_another_scope_is_not_reused() -> None:
    auth = authenticator()
    step = auth.challenged(REGISTRY, SCOPE, BEARER, None)
    assert isinstance(step, TokenFetch)
    auth.token_received(step, 200, token_reply("abc", expires_in=300))
    assert isinstance(auth.authorization(REGISTRY, repository_scope("other/repo")), TokenFetch)


def test_access_token_field_is_accepted() -> None:
    auth = authenticator()
    step = auth.challenged(REGISTRY, SCOPE, BEARER, None)
    assert isinstance(step, TokenFetch)
    assert auth.token_received(step, 200, json.dumps({"access_token": "xyz"}).encode()) == "Bearer xyz"


def test_reply_without_token_is_an_authentication_error() -> None:
    auth = authenticator()
    step = auth.challenged(REGISTRY, SCOPE, BEARER, None)
    assert isinstance(step, TokenFetch)
    with pytest.raises(AuthenticationError, match="without a token"):
        auth.token_received(step, 200, b'{"expires_in": 60}')


def test_expiry_uses_issued_at_plus_expires_in() -> None:
    now = parse_timestamp("2024-01-01T12:00:00Z")
    assert now is not None
    token = token_from_reply(token_reply(expires_in=600, issued_at="2024-01-01T11:55:00Z"), now, where="test")
    assert token.valid(now + 200)
    assert not token.valid(now + 300)


def test_expires_at_in_the_past_is_not_used_again() -> None:
    clock = Clock(parse_timestamp("2024-01-01T12:00:00+00:00") or 0.0)
    auth = authenticator(clock=clock)
    step = auth.challenged(REGISTRY, SCOPE, BEARER, None)
    assert isinstance(step, TokenFetch)
    assert (
        auth.token_received(step, 200, token_reply("old", expires_at="2024-01-01T11:00:00")) == "Bearer old"
    )
    assert isinstance(auth.authorization(REGISTRY, SCOPE), TokenFetch)


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01T13:00:00Z",
        "2024-01-01T13:00:00.123456789Z",
        "2024-01-01T15:00:00+02:00",
        "2024-01-01T13:00:00",
    ],
)
def test_expires_at_formats_are_understood(text: str) -> None:
    assert parse_timestamp(text) == pytest.approx(parse_timestamp("2024-01-01T13:00:00+00:00"), abs=1)


def test_refused_token_is_refreshed_once() -> None:
    auth = authenticator()
    step = auth.challenged(REGISTRY, SCOPE, BEARER, None)
    assert isinstance(step, TokenFetch)
    header = auth.token_received(step, 200, token_reply("stale", expires_in=300))
    refresh = auth.challenged(REGISTRY, SCOPE, BEARER + ',error="invalid_token"', header)
    assert isinstance(refresh, TokenFetch), "a refused token must be replaced"
    assert isinstance(auth.authorization(REGISTRY, SCOPE), TokenFetch), "the refused token was dropped"


def test_insufficient_scope_with_a_token_is_an_error_naming_the_user_not_the_password() -> None:
    auth = authenticator({REGISTRY: Credential("operator", SECRET)})
    step = auth.challenged(REGISTRY, SCOPE, BEARER, None)
    assert isinstance(step, TokenFetch)
    header = auth.token_received(step, 200, token_reply("t"))
    with pytest.raises(AuthenticationError) as caught:
        auth.challenged(REGISTRY, SCOPE, BEARER + ',error="insufficient_scope"', header)
    assert "operator" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_token_server_refusal_is_an_authentication_error_without_the_password() -> None:
    auth = authenticator({REGISTRY: Credential("operator", SECRET)})
    step = auth.challenged(REGISTRY, SCOPE, BEARER, None)
    assert isinstance(step, TokenFetch)
    with pytest.raises(AuthenticationError) as caught:
        auth.token_received(step, 401, b"")
    assert REGISTRY in str(caught.value) and "auth.example" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(step)


def test_bearer_challenge_without_realm_is_refused() -> None:
    with pytest.raises(AuthenticationError, match="realm"):
        authenticator().challenged(REGISTRY, SCOPE, 'Bearer service="x"', None)


def test_401_without_challenge_and_unknown_schemes_are_errors() -> None:
    with pytest.raises(AuthenticationError, match="without saying how"):
        authenticator().challenged(REGISTRY, SCOPE, None, None)
    with pytest.raises(AuthenticationError, match="(?i)negotiate"):
        authenticator().challenged(REGISTRY, SCOPE, "Negotiate", None)


def test_token_cache_is_shared_between_authenticators_and_threads() -> None:
    cache = TokenCache()
    first = authenticator(cache=cache)
    step = first.challenged(REGISTRY, SCOPE, BEARER, None)
    assert isinstance(step, TokenFetch)
    first.token_received(step, 200, token_reply("shared", expires_in=300))
    second = authenticator(cache=cache)
    second.challenged(REGISTRY, repository_scope("x/y"), BEARER, None)  # learns the scheme
    seen: list[object] = []
    threads = [
        threading.Thread(target=lambda: seen.append(second.authorization(REGISTRY, SCOPE))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == ["Bearer shared"] * 8


# --- basic flow ------------------------------------------------------------------------------------


def test_basic_header_is_base64_of_user_colon_password() -> None:
    assert Credential("foo", "bar").basic_header() == "Basic Zm9vOmJhcg=="


def test_basic_challenge_uses_credentials_and_then_sends_them_up_front() -> None:
    auth = authenticator({REGISTRY: Credential("foo", "bar")})
    assert auth.challenged(REGISTRY, SCOPE, 'Basic realm="registry"', None) == "Basic Zm9vOmJhcg=="
    assert auth.authorization(REGISTRY, repository_scope("any/repo")) == "Basic Zm9vOmJhcg=="


def test_basic_challenge_without_credentials_says_what_to_configure() -> None:
    with pytest.raises(AuthenticationError) as caught:
        authenticator().challenged(REGISTRY, SCOPE, 'Basic realm="registry"', None)
    assert REGISTRY in str(caught.value)
    assert "ContainerImageRegistryCredentials" in str(caught.value)


def test_refused_basic_credentials_are_not_retried_and_not_leaked() -> None:
    auth = authenticator({REGISTRY: Credential("foo", SECRET)})
    header = auth.challenged(REGISTRY, SCOPE, 'Basic realm="registry"', None)
    assert isinstance(header, str)
    with pytest.raises(AuthenticationError) as caught:
        auth.challenged(REGISTRY, SCOPE, 'Basic realm="registry"', header)
    assert "'foo'" in str(caught.value)
    assert SECRET not in str(caught.value)


# --- credentials -----------------------------------------------------------------------------------


def test_registry_credentials_parameter_gives_one_login_per_host() -> None:
    parsed = parse_registry_credentials(
        {"quay.io": {"me": SECRET}, "https://index.docker.io/v1/": {"u": "p"}}
    )
    assert parsed["quay.io"] == Credential("me", SECRET)
    assert parsed["docker.io"] == Credential("u", "p")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"quay.io": {"a": SECRET, "b": SECRET}}, "exactly one"),
        ({"quay.io": {}}, "exactly one"),
        ({"quay.io": SECRET}, "must be a mapping"),
        ({"quay.io": {"a": 12345}}, "must be a string"),
        ({"quay.io": {"": SECRET}}, "username"),
        ([SECRET], "must be a mapping"),
    ],
)
def test_invalid_registry_credentials_are_configuration_errors_without_passwords(
    value: object, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        parse_registry_credentials(value)
    assert SECRET not in str(caught.value)
    assert "12345" not in str(caught.value)


def test_credential_repr_hides_the_password() -> None:
    assert SECRET not in repr(Credential("me", SECRET))
    assert SECRET not in repr(CredentialStore({"quay.io": Credential("me", SECRET)}))


def _auth_file(path: Path, auths: dict[str, object]) -> Path:
    path.write_text(json.dumps({"auths": auths}))
    return path


def test_auth_file_auth_field_is_base64_user_and_password(tmp_path: Path) -> None:
    encoded = base64.b64encode(b"user:pa:ss").decode()
    path = _auth_file(
        tmp_path / "auth.json",
        {
            "quay.io": {"auth": encoded},
            "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
            "registry.example:5000/namespace": {"username": "u2", "password": "p2"},
            "helper.example": {"identitytoken": "opaque"},
        },
    )
    assert read_auth_file(path) == {
        "quay.io": Credential("user", "pa:ss"),
        "docker.io": Credential("hub", "pw"),
        "registry.example:5000": Credential("u2", "p2"),
    }


def test_missing_auth_file_is_empty_and_broken_one_is_named(tmp_path: Path) -> None:
    assert read_auth_file(tmp_path / "absent.json") == {}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigurationError, match="broken.json"):
        read_auth_file(broken)
    bad = _auth_file(tmp_path / "bad.json", {"quay.io": {"auth": "!!!not-base64"}})
    with pytest.raises(ConfigurationError, match="not base64"):
        read_auth_file(bad)


def test_explicit_credentials_win_over_auth_files_and_earlier_files_over_later(tmp_path: Path) -> None:
    first = _auth_file(tmp_path / "first.json", {"a.example": {"username": "file1", "password": "x"}})
    second = _auth_file(
        tmp_path / "second.json",
        {
            "a.example": {"username": "file2", "password": "x"},
            "b.example": {"username": "b", "password": "y"},
        },
    )
    store = CredentialStore.from_parameters({"c.example": {"explicit": "z"}}, [first, second])
    assert store.lookup("a.example") == Credential("file1", "x")
    assert store.lookup("b.example") == Credential("b", "y")
    assert store.lookup("c.example") == Credential("explicit", "z")
    assert store.lookup("nothing.example") is None
    store = CredentialStore.from_parameters({"a.example": {"explicit": "z"}}, [first])
    assert store.lookup("a.example") == Credential("explicit", "z")


def test_docker_hub_login_answers_for_its_api_host() -> None:
    store = CredentialStore.from_parameters({"docker.io": {"u": "p"}})
    assert store.lookup("registry-1.docker.io") == Credential("u", "p")


def test_default_auth_files_follow_the_containers_order(tmp_path: Path) -> None:
    environ = {"REGISTRY_AUTH_FILE": "/etc/custom.json", "XDG_RUNTIME_DIR": "/run/user/1000"}
    assert default_auth_files(environ, tmp_path) == [
        Path("/etc/custom.json"),
        Path("/run/user/1000/containers/auth.json"),
        tmp_path / ".docker" / "config.json",
    ]
    assert default_auth_files({}, tmp_path) == [tmp_path / ".docker" / "config.json"]


_PARAM_NAMES = st.sampled_from(["realm", "service", "scope", "error"])
_VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@given(st.sampled_from(["Bearer", "bearer", "Basic"]), st.dictionaries(_PARAM_NAMES, _VALUES, max_size=4))
def test_any_quoted_challenge_parses_back_to_its_parameters(scheme: str, params: dict[str, str]) -> None:
    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    header = scheme + " " + ",".join(f"{name}={quote(value)}" for name, value in params.items())
    challenge = parse_challenge(header)
    assert challenge is not None
    assert challenge.scheme == scheme.lower()
    assert dict(challenge.params) == params
