"""Run Command's output in memory: the cap, UTF-8, masking, and the chunks it uploads."""

from __future__ import annotations

import json

import pytest

from bosun_agent import protocol
from bosun_agent.command_output import MASK, RunOutput, SecretMasker, StreamCapture


def captured(*reads: bytes, limit: int = 1000, secrets: tuple[str, ...] = ()) -> StreamCapture:
    capture = StreamCapture(limit, secrets)
    for data in reads:
        capture.feed(data)
    capture.finish()
    return capture


def test_output_within_the_limit_is_kept_whole() -> None:
    capture = captured(b"hello\n", b"world\n")
    assert capture.unsent() == "hello\nworld\n"
    assert (capture.length, capture.dropped_bytes) == (12, 0)


def test_invalid_utf8_bytes_become_replacement_characters() -> None:
    assert captured(b"ok \xff\xfe end").unsent() == "ok \ufffd\ufffd end"


def test_a_character_split_between_two_reads_is_decoded_whole() -> None:
    euro = "€".encode()
    assert captured(b"price " + euro[:1], euro[1:] + b" 5").unsent() == "price € 5"


def test_output_over_the_limit_is_dropped_and_counted_without_splitting_a_character() -> None:
    capture = captured(b"abc" + "é".encode() + b"xyz", limit=4)  # the cut falls inside é
    assert capture.unsent() == "abc"
    assert capture.kept_bytes == 3
    assert capture.dropped_bytes == 2 + 3


def test_nothing_is_kept_after_the_limit_even_when_a_later_read_would_fit() -> None:
    capture = captured(b"12345678", b"9", limit=5)
    assert capture.unsent() == "12345"
    assert capture.dropped_bytes == 4


def test_fifty_megabytes_over_the_limit_keep_only_the_limit_in_memory() -> None:
    capture = StreamCapture(100_000)
    read = b"y\n" * 32768  # 64 KiB, one pipe read
    for _ in range(800):
        capture.feed(read)
    capture.finish()
    assert len(capture.unsent()) == 100_000
    assert capture.dropped_bytes == 800 * len(read) - 100_000


@pytest.mark.parametrize("secret", ["hunter2", "s", "pässwörd", "x" * 300])
def test_a_secret_is_masked_wherever_the_reads_split_it(secret: str) -> None:
    text = f"before {secret} middle {secret}{secret} after"
    data = text.encode()
    expected = text.replace(secret, MASK)
    for cut in range(len(data) + 1):
        for second_cut in (cut, min(cut + 3, len(data))):
            reads = (data[:cut], data[cut:second_cut], data[second_cut:])
            assert captured(*reads, secrets=(secret,)).unsent() == expected, (cut, second_cut)


def test_one_byte_reads_never_leak_a_secret() -> None:
    text = "token=abc123xyz; again abc123xyz"
    capture = captured(*(bytes([b]) for b in text.encode()), secrets=("abc123xyz",))
    assert capture.unsent() == "token=****; again ****"


def test_where_one_secret_begins_another_the_longer_one_is_masked_whole() -> None:
    masker = SecretMasker(["abc", "abcdef"])
    released = masker.feed("x abc") + masker.feed("def y abc z")
    assert released + masker.finish() == f"x {MASK} y {MASK} z"


def test_lengths_and_offsets_count_the_masked_text() -> None:
    capture = captured(b"pw=supersecret\n", secrets=("supersecret",))
    assert capture.unsent() == "pw=****\n"
    assert capture.length == len("pw=****\n")


def test_confirmed_text_is_forgotten_and_the_rest_keeps_its_offset() -> None:
    capture = captured(b"0123456789")
    capture.confirm(4)
    assert (capture.confirmed, capture.unsent()) == (4, "456789")
    capture.confirm(2)  # an older confirmation changes nothing
    assert capture.to_wire() == {"length": 10, "dropped_bytes": 0, "offset": 4, "data": "456789"}


def test_chunks_start_where_the_server_s_text_ends_and_stay_within_the_chunk_size() -> None:
    output = RunOutput(1_000_000)
    output.stream(0, "stdout").write("a" * 150_000)
    output.stream(0, "stdout").confirm(10_000)
    output.stream(1, "stderr").write("b" * 10)
    chunks = output.pending_chunks()
    size = protocol.MAX_OUTPUT_CHUNK_CHARS
    assert [(c.step, c.stream, c.offset, len(c.data)) for c in chunks] == [
        (0, "stdout", 10_000, size),
        (0, "stdout", 10_000 + size, size),
        (0, "stdout", 10_000 + 2 * size, 140_000 - 2 * size),
        (1, "stderr", 0, 10),
    ]
    output.confirm(chunks)
    assert output.unsent_chars() == 0 and output.pending_chunks() == []


@pytest.mark.parametrize("character", ["\x01", "😀", '"'])
def test_an_upload_body_stays_within_the_body_limit_however_the_text_encodes(
    character: str,
) -> None:
    output = RunOutput(10_000_000)
    output.stream(0, "stdout").write(character * 300_000)
    sent = 0
    while output.unsent_chars():
        chunks = output.pending_chunks()
        body = json.dumps(
            {"chunks": [c.to_wire() for c in chunks]}, separators=(",", ":"), ensure_ascii=False
        ).encode()
        assert len(body) <= protocol.MAX_BODY_BYTES
        assert all(len(c.data) <= protocol.MAX_OUTPUT_CHUNK_CHARS for c in chunks)
        assert chunks[0].offset == sent
        sent += sum(len(c.data) for c in chunks)
        output.confirm(chunks)
    assert sent == 300_000


def test_unsent_output_fits_a_reply_only_within_a_chunk_per_stream_and_the_budget() -> None:
    output = RunOutput(1_000_000)
    output.stream(0, "stdout").write("x" * 1000)
    assert output.tails_fit(10_000)
    assert not output.tails_fit(500)
    output.stream(0, "stderr").write("y" * (protocol.MAX_OUTPUT_CHUNK_CHARS + 1))
    assert not output.tails_fit(10_000_000)
    allowances = output.tail_allowances(50_000)
    assert allowances[(0, "stderr")] <= protocol.MAX_OUTPUT_CHUNK_CHARS
    assert allowances[(0, "stderr")] + allowances[(0, "stdout")] <= 50_000
    assert allowances[(0, "stdout")] == 1000


def test_an_upload_carries_at_most_the_chunks_the_server_takes_at_once() -> None:
    output = RunOutput(1_000)
    for step in range(50):
        output.stream(step, "stdout").write("out")
        output.stream(step, "stderr").write("err")
    first = output.pending_chunks()
    assert len(first) == protocol.MAX_OUTPUT_CHUNKS
    output.confirm(first)
    assert len(output.pending_chunks()) == 100 - protocol.MAX_OUTPUT_CHUNKS
