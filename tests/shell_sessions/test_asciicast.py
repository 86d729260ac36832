"""Turning relayed bytes into asciicast v2 event lines, and checking event lines."""

from __future__ import annotations

import json

import pytest

from sessions.asciicast import CastEncoder, event_line, header_line, parse_events, resize_line

EURO = "€".encode()  # three bytes: e2 82 ac


def events(lines: bytes) -> list[list]:
    return [json.loads(line) for line in lines.decode().splitlines()]


def test_an_output_read_becomes_one_output_event_line_with_its_time():
    encoder = CastEncoder(input_recorded=True)
    assert encoder.output(1.5, b"hello\r\n") == b'[1.500000, "o", "hello\\r\\n"]\n'


def test_a_character_split_across_two_reads_comes_out_whole_in_the_second_event():
    encoder = CastEncoder(input_recorded=True)
    first = encoder.output(0.1, b"price: " + EURO[:2])
    second = encoder.output(0.2, EURO[2:] + b"5")
    assert events(first) == [[0.1, "o", "price: "]]
    assert events(second) == [[0.2, "o", "€5"]]


def test_a_read_holding_only_the_start_of_a_character_writes_no_event_yet():
    encoder = CastEncoder(input_recorded=True)
    assert encoder.output(0.1, EURO[:1]) == b""
    assert events(encoder.output(0.2, EURO[1:])) == [[0.2, "o", "€"]]


def test_output_and_input_keep_separate_decoders():
    encoder = CastEncoder(input_recorded=True)
    assert encoder.output(0.1, EURO[:1]) == b""
    assert events(encoder.input(0.2, b"ls\r")) == [[0.2, "i", "ls\r"]]
    assert events(encoder.output(0.3, EURO[1:])) == [[0.3, "o", "€"]]


def test_bytes_that_are_not_utf8_become_replacement_characters():
    encoder = CastEncoder(input_recorded=True)
    assert events(encoder.output(0.0, b"a\xffb")) == [[0.0, "o", "a\ufffdb"]]


def test_a_character_left_incomplete_at_the_end_is_flushed_as_a_replacement_character():
    encoder = CastEncoder(input_recorded=True)
    encoder.output(0.1, b"x" + EURO[:2])
    assert events(encoder.finish(0.5)) == [[0.5, "o", "\ufffd"]]
    assert encoder.finish(0.6) == b""


def test_input_is_left_out_when_input_is_not_recorded():
    encoder = CastEncoder(input_recorded=False)
    assert encoder.input(0.1, b"hunter2\r") == b""
    assert encoder.event(0.1, "i", b"secret") == b""
    assert events(encoder.output(0.2, b"ok")) == [[0.2, "o", "ok"]]


def test_a_resize_is_an_r_event_of_columns_by_rows():
    assert events(CastEncoder(input_recorded=True).resize(2.25, 132, 43)) == [[2.25, "r", "132x43"]]
    assert resize_line(0, 80, 24) == b'[0.000000, "r", "80x24"]\n'


def test_control_characters_are_escaped_and_other_text_kept_as_utf8():
    line = event_line(0.0, "o", "\x1b[1mgrüß\x00")
    assert line == '[0.000000, "o", "\\u001b[1mgrüß\\u0000"]\n'.encode()
    assert line.count(b"\n") == 1


def test_an_event_from_an_unknown_stream_or_time_is_refused():
    with pytest.raises(ValueError, match="output or the input"):
        CastEncoder(input_recorded=True).event(0.0, "x", b"a")
    with pytest.raises(ValueError, match="finite"):
        event_line(float("nan"), "o", "a")


def test_the_header_is_asciicast_v2_with_the_terminal_size_and_environment():
    header = json.loads(
        header_line(
            width=80,
            height=24,
            timestamp=1700000000,
            term="xterm-256color",
            login_shell="/bin/bash",
            title="ada on mi-0123456789abcdef0",
        )
    )
    assert header == {
        "version": 2,
        "width": 80,
        "height": 24,
        "timestamp": 1700000000,
        "env": {"TERM": "xterm-256color", "SHELL": "/bin/bash"},
        "title": "ada on mi-0123456789abcdef0",
    }


def test_parsing_counts_events_and_the_utf8_bytes_of_output():
    encoder = CastEncoder(input_recorded=True)
    data = (
        encoder.output(0.1, "grüß\n".encode()) + encoder.input(0.2, b"x") + resize_line(0.3, 1, 1)
    )
    counts = parse_events(data, input_allowed=True)
    assert (counts.events, counts.output_bytes) == (3, len("grüß\n".encode()))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'[0.1, "o", "a"]', "whole lines"),
        (b'[0.1, "o", "\xff"]\n', "not UTF-8"),
        (b"\n", "line 1: not a JSON event"),
        (b'[0.1, "o", "a"]\n{"o": 1}\n', "line 2: an event is"),
        (b'[-1, "o", "a"]\n', "0 or more"),
        (b'[true, "o", "a"]\n', "number of seconds"),
        (b'[NaN, "o", "a"]\n', "not a JSON event"),
        (b'[0, "x", "a"]\n', "unknown event code"),
        (b'[0, "o", 5]\n', "must be text"),
        (b'[0, "r", "wide"]\n', "COLSxROWS"),
        (b'[0, "i", "ls"]\n', "input is not recorded"),
    ],
)
def test_data_that_is_not_event_lines_is_refused_naming_the_line(data, message):
    with pytest.raises(ValueError, match=message):
        parse_events(data, input_allowed=False)
