"""Which requests go through which proxy: the variables and the NO_PROXY rules of curl and requests."""

from __future__ import annotations

import pytest

from imageprep.model.errors import ConfigurationError
from imageprep.registry.proxy import Proxy, ProxyConfig

PROXIED = {"HTTPS_PROXY": "http://proxy.example:3128", "HTTP_PROXY": "http://proxy.example:3128"}


@pytest.mark.parametrize(
    ("no_proxy", "url", "direct"),
    [
        ("", "https://quay.io/v2/", False),
        ("*", "https://quay.io/v2/", True),
        ("quay.io", "https://quay.io/v2/", True),
        ("quay.io", "https://cdn.quay.io/blob", True),  # a host name covers its subdomains
        (".quay.io", "https://quay.io/v2/", True),  # a leading dot changes nothing
        (".quay.io", "https://cdn.quay.io/blob", True),
        ("quay.io", "https://notquay.io/v2/", False),  # a suffix only at a dot
        ("QUAY.IO", "https://quay.io/v2/", True),  # names are case-insensitive
        ("quay.io.", "https://quay.io/v2/", True),
        ("example.com, quay.io ,other", "https://quay.io/v2/", True),  # a comma list, spaces allowed
        ("192.168.24.1", "http://192.168.24.1:8787/v2/", True),
        ("192.168.24.1", "http://192.168.24.10:8787/v2/", False),
        ("192.168.24.0/24", "http://192.168.24.10:8787/v2/", True),  # CIDR ranges
        ("10.0.0.0/8", "http://192.168.24.10:8787/v2/", False),
        ("fd00::/8", "http://[fd00::5]:8787/v2/", True),
        ("::1", "http://[::1]:5000/v2/", True),
        ("[::1]:5000", "http://[::1]:5000/v2/", True),
        ("[::1]:5000", "http://[::1]:5001/v2/", False),
        ("registry.local:5000", "https://registry.local:5000/v2/", True),  # host:port matches that port
        ("registry.local:5000", "https://registry.local/v2/", False),
        ("registry.local:443", "https://registry.local/v2/", True),  # the scheme's default port
        ("127.0.0.1", "http://localhost:5000/v2/", False),  # no name resolution: localhost is a name
    ],
)
def test_no_proxy_rules(no_proxy: str, url: str, direct: bool) -> None:
    config = ProxyConfig.from_environ({**PROXIED, "NO_PROXY": no_proxy})
    assert (config.proxy_for(url) is None) is direct


def test_https_and_http_urls_use_their_own_variable() -> None:
    config = ProxyConfig.from_environ({"HTTPS_PROXY": "http://secure:1", "HTTP_PROXY": "http://plain:2"})
    assert str(config.proxy_for("https://quay.io/v2/")) == "http://secure:1"
    assert str(config.proxy_for("http://quay.io/v2/")) == "http://plain:2"
    only_https = ProxyConfig.from_environ({"HTTPS_PROXY": "http://secure:1"})
    assert only_https.proxy_for("http://quay.io/v2/") is None


def test_lower_case_wins_and_all_proxy_is_the_fallback() -> None:
    both = ProxyConfig.from_environ({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"})
    assert str(both.proxy_for("https://quay.io/")) == "http://lower:1"
    fallback = ProxyConfig.from_environ({"ALL_PROXY": "http://all:3"})
    assert str(fallback.proxy_for("https://quay.io/")) == "http://all:3"
    assert str(fallback.proxy_for("http://quay.io/")) == "http://all:3"
    lower_no = ProxyConfig.from_environ({**PROXIED, "no_proxy": "quay.io", "NO_PROXY": ""})
    assert lower_no.proxy_for("https://quay.io/") is None


def test_no_variables_no_proxy() -> None:
    assert not ProxyConfig.from_environ({}).active
    assert ProxyConfig.from_environ({}).proxy_for("https://quay.io/") is None


def test_a_proxy_without_scheme_is_http_and_gets_its_default_port() -> None:
    assert Proxy.parse("proxy.example", "HTTPS_PROXY").url == "http://proxy.example:80"
    assert Proxy.parse("https://proxy.example", "HTTPS_PROXY").url == "https://proxy.example:443"
    assert Proxy.parse("proxy.example:3128/", "HTTPS_PROXY").url == "http://proxy.example:3128"


def test_credentials_in_the_url_are_used_but_never_shown() -> None:
    proxy = Proxy.parse("http://us%40er:p%3Ass@proxy.example:3128", "HTTPS_PROXY")
    assert proxy.auth == ("us@er", "p:ss")
    assert "p:ss" not in str(proxy) and "p:ss" not in repr(proxy) and "p%3Ass" not in repr(proxy)
    assert proxy.url == "http://proxy.example:3128"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("socks5://proxy.example:1080", "socks5:// proxy"),
        ("http://:3128", "not a proxy URL"),
        ("http://proxy.example:notaport", "not a proxy URL"),
    ],
)
def test_unusable_proxy_values_are_errors_naming_the_variable(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        ProxyConfig.from_environ({"HTTPS_PROXY": value})
    assert "HTTPS_PROXY" in str(caught.value)


def test_a_bad_proxy_value_never_shows_its_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ProxyConfig.from_environ({"HTTPS_PROXY": "http://user:hunter2@proxy.example:bad"})
    assert "hunter2" not in str(caught.value)
