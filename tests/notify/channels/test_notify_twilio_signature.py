"""``check_twilio_signature`` against Twilio's documented examples and what breaks it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fakes import twilio_signature as documented_signature
from kei.adapters.notify.sms import check_twilio_signature, twilio_signature

TOKEN = "12345"  # the auth token of Twilio's documentation examples
CALL = {
    "CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
    "From": "+12349013030", "To": "+18005551212",
}  # fmt: skip


def test_twilios_documented_example() -> None:
    """twilio.com/docs/usage/security: this URL and these parameters, signed with 12345."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(url, CALL, TOKEN) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert check_twilio_signature(url, CALL, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", TOKEN)


def test_twilio_pythons_own_test_vector() -> None:
    """twilio-python's tests/unit/test_request_validator.py."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {**CALL, "From": "+14158675309", "Caller": "+14158675309"}
    assert check_twilio_signature(url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TOKEN)


def test_anything_changed_fails_the_check() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    good = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert not check_twilio_signature(url, {**CALL, "Digits": "1235"}, good, TOKEN)
    assert not check_twilio_signature(url, {**CALL, "Extra": ""}, good, TOKEN)
    assert not check_twilio_signature(url + "&x=1", CALL, good, TOKEN)
    assert not check_twilio_signature(url, CALL, good, "12346")
    assert not check_twilio_signature(url, CALL, good[:-1], TOKEN)
    assert not check_twilio_signature(url, CALL, "", TOKEN)
    assert not check_twilio_signature(url, CALL, "ü" * 28, TOKEN)


def test_the_url_may_be_signed_with_or_without_its_default_port() -> None:
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    bare, ported = "https://kei.example/notify", "https://kei.example:443/notify"
    for signed in (bare, ported):
        signature = twilio_signature(signed, params, TOKEN)
        assert check_twilio_signature(bare, params, signature, TOKEN)
        assert check_twilio_signature(ported, params, signature, TOKEN)
    signature = twilio_signature(bare, params, TOKEN)
    assert not check_twilio_signature("https://kei.example/other", params, signature, TOKEN)
    assert not check_twilio_signature("http://kei.example/notify", params, signature, TOKEN)
    assert not check_twilio_signature("https://kei.example.org/notify", params, signature, TOKEN)


def test_repeated_parameters_are_sorted_by_name_then_value() -> None:
    pairs = [("b", "2"), ("a", "z"), ("a", "y")]
    assert twilio_signature("https://x.example/", pairs, TOKEN) == twilio_signature(
        "https://x.example/", {"a": ["y", "z"], "b": "2"}, TOKEN
    )


@given(
    params=st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=20), max_size=8),
    token=st.text(min_size=1, max_size=40),
)
def test_kei_signs_as_a_separate_implementation_of_the_documented_rule(
    params: dict[str, str], token: str
) -> None:
    url = "https://kei.example/notify/twilio?x=1"
    signature = documented_signature(url, params, token)
    assert twilio_signature(url, params, token) == signature
    assert check_twilio_signature(url, params, signature, token)
