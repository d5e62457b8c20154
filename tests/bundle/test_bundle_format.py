"""The bundle format's pure parts: frames, names, the archive size, the zstd frame walk."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from kei.adapters.files.tarsafe import frame_problem
from kei.app.bundle.archive import BundleWriter
from kei.app.bundle.layout import segment_name, tar_size, unsafe_name
from kei.app.bundle.segments import FrameReader, encode_frame
from kei.errors import BundleError

rows = st.tuples(
    st.integers(1, 2**62), st.binary(max_size=40), st.integers(0, 2**62), st.binary(max_size=30),
    st.binary(max_size=300), st.integers(0, 2**62), st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
)  # fmt: skip


@given(st.lists(rows, max_size=20), st.integers(1, 97))
def test_frames_read_back_whatever_the_chunking(batch: list[tuple[object, ...]], step: int) -> None:
    data = b"".join(encode_frame(r) for r in batch)
    reader = FrameReader("segments/x.kseg", max_frame=1 << 20)
    out = []
    for at in range(0, len(data), step):
        out += reader.feed(data[at : at + step])
    reader.finish()
    assert out == batch


def test_a_segment_cut_inside_a_frame_is_refused() -> None:
    data = encode_frame((1, b"s", 1, b"t", b"x", 0, bytes(32), bytes(32)))
    reader = FrameReader("segments/x.kseg", max_frame=1 << 20)
    assert reader.feed(data[:-1]) == []
    with pytest.raises(BundleError, match="ends inside a frame"):
        reader.finish()


def test_an_oversized_or_misshapen_frame_is_refused() -> None:
    with pytest.raises(BundleError, match="exceeds the limit"):
        FrameReader("s", max_frame=10).feed((11).to_bytes(4, "big") + bytes(11))
    with pytest.raises(BundleError, match="not a stored event"):
        FrameReader("s", max_frame=10).feed((1).to_bytes(4, "big") + b"\x90")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("/etc/passwd", "absolute path"),
        ("C:evil", "absolute path"),
        ("segments/../x", "path climbs out with '..'"),
        ("..", "path climbs out with '..'"),
        ("a//b", "path is not in canonical form"),
        ("./a", "path is not in canonical form"),
        ("a\\b", "path is not in canonical form"),
        ("proof/ä", "path has characters outside [A-Za-z0-9._/-]"),
        ("", "empty name"),
        (segment_name(7), None),
        ("proof/keys.json", None),
    ],
)
def test_unsafe_names(name: str, why: str | None) -> None:
    assert unsafe_name(name) == why


def test_tar_size_is_the_size_the_writer_produces(tmp_path: Path) -> None:
    sizes = [0, 1, 511, 512, 513, 20_000]
    writer = BundleWriter(tmp_path / "x.tar.zst")
    for i, size in enumerate(sizes):
        writer.add(f"proof/f{i}", size, io.BytesIO(bytes(size)))
    writer.commit()
    raw = zstandard.ZstdDecompressor().stream_reader((tmp_path / "x.tar.zst").open("rb")).read()
    assert len(raw) == tar_size(sizes)


def test_the_frame_walk_finds_cuts_and_trailing_bytes(tmp_path: Path) -> None:
    whole = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(bytes(300_000) * 2)
    for data, expected in [
        (whole, None),
        (whole + whole, None),
        (whole[:-1], "past the end"),
        (whole[:-4], "past the end"),
        (whole[:5], "ends inside"),
        (whole + b"junk", "does not start a zstd frame"),
    ]:
        problem = frame_problem(io.BytesIO(data), len(data))
        assert (problem is None) if expected is None else expected in (problem or ""), problem
