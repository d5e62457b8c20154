"""Golden tests: the exact bytes each channel sends, per severity, are upstream's
kei-notify-* payloads (research §3.1), and the defects fixed on purpose are pinned too:
length limits cut on a character boundary, Discord's ``wait=true``, the GSM-7 SMS."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kei.adapters.notify import discord, gsm7, slack, sms, telegram
from kei.adapters.notify.text import ELLIPSIS, cut, measure
from kei.domain.notify import SEVERITIES, Notification, Severity

SUBJECT, BODY = "Agent a1 failed", "exit code 1 after 3 attempts"

SLACK_COLOURS = {"info": "#3b82f6", "success": "good", "warn": "warning", "error": "danger"}
DISCORD_COLOURS = {"info": 3447003, "success": 3066993, "warn": 15844367, "error": 15158332}
TELEGRAM_EMOJI = {"info": "\u2139\ufe0f", "success": "\u2705", "warn": "\u26a0\ufe0f", "error": "\U0001f6a8"}  # fmt: skip
SMS_PREFIXES = {"info": "[i]", "success": "[+]", "warn": "[!]", "error": "[x]"}


def note(severity: Severity = "info", subject: str = SUBJECT, body: str = BODY) -> Notification:
    return Notification(subject=subject, body_text=body, severity=severity)


def channels() -> tuple[slack.SlackChannel, discord.DiscordChannel, telegram.TelegramChannel, sms.SmsChannel]:  # fmt: skip
    return (
        slack.SlackChannel("s", "https://hooks.example.com/services/T1/B1/" + "x" * 24),
        discord.DiscordChannel("d", "https://discord.example.com/api/webhooks/1/" + "y" * 68),
        telegram.TelegramChannel("t", "123456789:" + "z" * 35, "12345"),
        sms.SmsChannel("m", "AC" + "0" * 32, "1" * 32, "+15005550006", "+15005550001"),
    )


@pytest.mark.parametrize("severity", SEVERITIES)
def test_slack_sends_upstreams_json_byte_for_byte(severity: Severity) -> None:
    colour = SLACK_COLOURS[severity]
    expected = (
        f'{{"text":"{SUBJECT}","attachments":[{{"color":"{colour}",'
        f'"title":"{SUBJECT}","text":"{BODY}"}}]}}'
    ).encode()
    assert channels()[0].request_bytes(note(severity)) == expected


@pytest.mark.parametrize("severity", SEVERITIES)
def test_discord_sends_upstreams_json_byte_for_byte(severity: Severity) -> None:
    colour = DISCORD_COLOURS[severity]
    expected = (
        f'{{"content":"{SUBJECT}","embeds":[{{"title":"{SUBJECT}",'
        f'"description":"{BODY}","color":{colour}}}]}}'
    ).encode()
    assert channels()[1].request_bytes(note(severity)) == expected


@pytest.mark.parametrize("severity", SEVERITIES)
def test_telegram_sends_upstreams_html_byte_for_byte(severity: Severity) -> None:
    text = f"<b>{SUBJECT}</b>\\n\\n{TELEGRAM_EMOJI[severity]} {BODY}"
    expected = f'{{"chat_id":12345,"text":"{text}","parse_mode":"HTML"}}'.encode()
    assert channels()[2].request_bytes(note(severity)) == expected


@pytest.mark.parametrize("severity", SEVERITIES)
def test_sms_sends_upstreams_form_with_a_gsm7_separator(severity: Severity) -> None:
    sent = channels()[3].request_bytes(note(severity))
    assert parse_qsl(sent.decode()) == [
        ("To", "+15005550001"),
        ("From", "+15005550006"),
        ("Body", f"{SMS_PREFIXES[severity]} {SUBJECT} - {BODY}"),
    ]
    assert sent.startswith(b"To=%2B15005550001&From=%2B15005550006&Body=")


def test_body_html_tags_and_nothing_else_are_sent() -> None:
    plain = note("warn")
    rich = Notification(
        subject=SUBJECT, body_text=BODY, severity="warn", body_html="<p>x</p>", tags=("a", "b")
    )
    for channel in channels():
        assert channel.request_bytes(rich) == channel.request_bytes(plain)


def test_telegram_escapes_three_characters_in_subject_and_body() -> None:
    payload = telegram.telegram_payload(note("info", "a<b>&c", "x > y & \"z\" 'w'"), "1")
    assert payload["text"] == "<b>a&lt;b&gt;&amp;c</b>\n\n\u2139\ufe0f x &gt; y &amp; \"z\" 'w'"


@pytest.mark.parametrize(
    ("chat_id", "sent"),
    [("12345", 12345), ("-1001234567890", -1001234567890), ("+7", 7), ("@ops_channel", "@ops_channel"),
     ("9223372036854775807", 9223372036854775807), ("9223372036854775808", "9223372036854775808"),
     ("1_000", "1_000"), (" 5", " 5"), ("٣", "٣")],
)  # fmt: skip
def test_telegram_chat_id_is_a_number_when_it_parses_as_i64(chat_id: str, sent: object) -> None:
    assert telegram.telegram_payload(note(), chat_id)["chat_id"] == sent


def test_discord_asks_to_wait_for_the_saved_message() -> None:
    base = "https://discord.com/api/webhooks/1/tok"
    assert discord.with_wait(base) == base + "?wait=true"
    assert discord.with_wait(base + "?thread_id=9") == base + "?thread_id=9&wait=true"
    assert discord.with_wait(base + "?wait=false") == base + "?wait=true"


# -- the SMS: GSM-7 instead of upstream's UCS-2 ----------------------------------------------


def test_upstreams_em_dash_made_every_sms_ucs2_and_kei_keeps_gsm7() -> None:
    body = "x" * 120
    upstream = f"[!] {SUBJECT} \u2014 {body}"
    ours = sms.sms_text(note("warn", body=body))
    assert not gsm7.is_gsm7(upstream) and gsm7.segments(upstream) == 3
    assert gsm7.is_gsm7(ours) and gsm7.segments(ours) == 1


def test_typographic_lookalikes_become_gsm7_only_when_that_makes_the_message_gsm7() -> None:
    fancy = note("error", "Build \u201cmain\u201d failed \u2013 again\u2026", "it\u2019s\u00a0red")
    assert sms.sms_text(fancy) == '[x] Build "main" failed - again... - it\'s red'
    with_emoji = note("error", "Build \u201cmain\u201d \U0001f525", "x")
    assert sms.sms_text(with_emoji) == "[x] Build \u201cmain\u201d \U0001f525 - x"
    assert sms.sms_text(note("info", "Привет", "мир")) == "[i] Привет - мир"


def test_segments_follow_gsm_03_38() -> None:
    assert gsm7.segments("a" * 160) == 1 and gsm7.segments("a" * 161) == 2
    assert gsm7.segments("€" * 80) == 1 and gsm7.segments("€" * 81) == 2  # two septets each
    assert gsm7.segments("é" * 160) == 1  # é is in the basic table
    assert gsm7.segments("ç" * 70) == 1 and gsm7.segments("ç" * 71) == 2  # ç is not: UCS-2


def test_sms_is_cut_to_1500_bytes_with_a_gsm7_mark() -> None:
    text = sms.sms_text(note("warn", body="é" * 2000))
    assert len(text.encode()) <= 1500 and text.endswith("...") and gsm7.is_gsm7(text)
    emoji = sms.sms_text(note("warn", body="\U0001f525" * 1000))
    assert len(emoji.encode()) <= 1500 and emoji.endswith("...")


# -- length limits ---------------------------------------------------------------------------


def test_discord_limits_content_title_and_description() -> None:
    payload = discord.discord_payload(note(subject="s" * 3000, body="b" * 5000))
    embed = payload["embeds"][0]
    assert len(payload["content"]) == 2000 and payload["content"].endswith(ELLIPSIS)
    assert len(embed["title"]) == 256 and len(embed["description"]) == 4096


def test_slack_limits_keep_the_whole_message_under_40000_characters() -> None:
    payload = slack.slack_payload(note(subject="s" * 50_000, body="b" * 50_000))
    attachment = payload["attachments"][0]
    total = len(payload["text"]) + len(attachment["title"]) + len(attachment["text"])
    assert total <= 40_000 and attachment["text"].endswith(ELLIPSIS)


@given(subject=st.text(max_size=3000), body=st.text(max_size=6000))
def test_telegram_text_always_fits_4096_utf16_units_after_parsing(subject: str, body: str) -> None:
    from fakes import telegram_visible_text

    payload = telegram.telegram_payload(note("warn", subject, body), "1")
    visible = telegram_visible_text(payload["text"])
    assert visible is not None and measure(visible, "utf16") <= 4096
    if measure(subject + body, "utf16") + 5 <= 4096:
        assert visible == f"{subject}\n\n\u26a0\ufe0f {body}"


@given(text=st.text(), limit=st.integers(min_value=1, max_value=300),
       unit=st.sampled_from(["chars", "utf16", "utf8"]))  # fmt: skip
def test_a_cut_fits_its_limit_and_keeps_a_prefix(text: str, limit: int, unit: str) -> None:
    out = cut(text, limit, unit)  # type: ignore[arg-type]
    assert measure(out, unit) <= limit  # type: ignore[arg-type]
    if measure(text, unit) <= limit:  # type: ignore[arg-type]
        assert out == text
    elif measure(ELLIPSIS, unit) > limit:  # type: ignore[arg-type]
        assert out == ""  # not even the mark fits
    else:
        assert out.endswith(ELLIPSIS) and text.startswith(out[: -len(ELLIPSIS)])


def test_a_lone_surrogate_is_sent_as_a_question_mark_not_a_crash() -> None:
    bad = note("info", "a\ud800b", "c\udfffd")
    for channel in channels():
        sent = channel.request_bytes(bad)
        assert b"a?b" in sent or b"a%3Fb" in sent
    assert json.loads(channels()[0].request_bytes(bad))["text"] == "a?b"
