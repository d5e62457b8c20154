"""``wg show <if> dump`` parsing: the peers, never a key; boringtun's handshake ages;
hostile lines counted, never quoted."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from kei.domain.net.dump import EPOCH_FLOOR_S, handshake_us, is_public_key, parse_dump

NOW_US = 1_800_000_000 * 1_000_000
PRIV = base64.b64encode(bytes(range(32))).decode()
PUB = base64.b64encode(bytes(range(1, 33))).decode()
PEER = base64.b64encode(bytes(range(2, 34))).decode()
PSK = base64.b64encode(bytes(range(3, 35))).decode()


def _dump(*peers: str) -> str:
    return "\n".join([f"{PRIV}\t{PUB}\t51820\toff", *peers]) + "\n"


def test_a_peer_line_is_read_and_keys_are_dropped() -> None:
    line = f"{PEER}\t{PSK}\t10.0.0.2:51820\t10.99.0.0/24,fd00::/64\t1700000000\t1234\t5678\t25"
    found = parse_dump(_dump(line), NOW_US)
    (peer,) = found.peers
    assert peer.peer_id == PEER
    assert peer.endpoint == "10.0.0.2:51820"
    assert peer.addresses == ("10.99.0.0/24", "fd00::/64")
    assert peer.last_seen_us == 1_700_000_000 * 1_000_000
    assert (peer.rx_bytes, peer.tx_bytes) == (1234, 5678)
    assert PRIV not in repr(found) and PSK not in repr(found)


def test_no_endpoint_no_handshake() -> None:
    line = f"{PEER}\t(none)\t(none)\t(none)\t0\t0\t0\toff"
    (peer,) = parse_dump(_dump(line), NOW_US).peers
    assert peer.endpoint is None and peer.addresses == () and peer.last_seen_us is None


def test_a_boringtun_handshake_age_is_taken_before_now() -> None:
    assert handshake_us(7, NOW_US) == NOW_US - 7_000_000
    assert handshake_us(EPOCH_FLOOR_S, NOW_US) == EPOCH_FLOOR_S * 1_000_000
    assert handshake_us(0, NOW_US) is None


def test_bad_lines_are_counted_by_number_never_quoted() -> None:
    bad = [
        f"{PEER}\t{PSK}\t1.2.3.4:1\t(none)\tx\t1\t1\toff",  # not a number
        f"{PSK[:-2]}\t{PSK}\t1.2.3.4:1\t(none)\t1\t1\t1\toff",  # not a key
        f"{PEER}\t{PSK}\t1.2.3.4:1",  # too few columns
        f"{PEER}\t{PSK}\tbad endpoint\t(none)\t1\t1\t1\toff",
    ]
    found = parse_dump(_dump(*bad), NOW_US)
    assert found.peers == () and found.skipped == (2, 3, 4, 5)


def test_the_interface_line_is_never_a_peer() -> None:
    # even when the first line looks like a peer (8 columns), it is dropped unread
    line = f"{PEER}\t{PSK}\t(none)\t(none)\t0\t0\t0\toff"
    assert parse_dump(line + "\n", NOW_US).peers == ()


keys = st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode())
counts = st.integers(min_value=0, max_value=2**63 - 1)


@given(st.lists(st.tuples(keys, keys, counts, counts, counts), max_size=8), keys)
def test_no_private_or_preshared_key_ever_comes_out(
    rows: list[tuple[str, str, int, int, int]], private: str
) -> None:
    lines = [f"{private}\t{PUB}\t51820\toff"]
    lines += [f"{pub}\t{psk}\t(none)\t10.0.0.0/8\t{hs}\t{rx}\t{tx}\toff"
              for pub, psk, hs, rx, tx in rows]  # fmt: skip
    found = parse_dump("\n".join(lines), NOW_US)
    shown = repr(found)
    secrets = ({private} | {psk for _, psk, *_ in rows}) - {pub for pub, *_ in rows} - {PUB}
    assert not any(s in shown for s in secrets)
    assert [p.peer_id for p in found.peers] == [pub for pub, *_ in rows]
    for p, (_, _, hs, rx, tx) in zip(found.peers, rows, strict=True):
        assert (p.rx_bytes, p.tx_bytes) == (rx, tx)
        assert p.last_seen_us == handshake_us(hs, NOW_US)


@given(st.text(max_size=400))
def test_any_text_parses_without_raising_and_yields_only_keys(text: str) -> None:
    found = parse_dump(text, NOW_US)
    assert all(is_public_key(p.peer_id) for p in found.peers)
