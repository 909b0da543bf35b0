"""HeadHeldTransport: an answer's head goes out with its body in one write."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from miaou.http.head_held import HeadHeldTransport


@dataclass
class Recorder:
    """The socket's transport, as far as the cycle uses it: what each call wrote."""

    writes: list[bytes | tuple[bytes, ...]] = field(default_factory=list)
    closed: bool = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, parts: tuple[bytes, ...]) -> None:
        self.writes.append(tuple(parts))  # one write of several buffers

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


@dataclass
class Cycle:
    response_started: bool = False


def held() -> tuple[HeadHeldTransport, Recorder, Cycle]:
    recorder, cycle = Recorder(), Cycle()
    return HeadHeldTransport(recorder, cycle), recorder, cycle  # type: ignore[arg-type]


async def test_head_and_body_go_out_in_one_write() -> None:
    transport, recorder, cycle = held()
    cycle.response_started = True
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert recorder.writes == []
    transport.write(b"{}")
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"more")  # later parts pass straight through
    await asyncio.sleep(0)  # the end-of-pass flush finds nothing held
    assert recorder.writes[1:] == [b"more"]


async def test_a_head_without_a_body_in_the_same_pass_goes_out_at_its_end() -> None:
    transport, recorder, cycle = held()
    cycle.response_started = True
    transport.write(b"head")
    assert recorder.writes == []
    await asyncio.sleep(0)
    assert recorder.writes == [b"head"]
    transport.write(b"body")
    assert recorder.writes == [b"head", b"body"]


async def test_writes_before_the_response_starts_are_not_held() -> None:
    transport, recorder, cycle = held()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert recorder.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    cycle.response_started = True
    transport.write(b"head")
    transport.write(b"body")
    assert recorder.writes[1:] == [b"headbody"]


async def test_closing_writes_a_held_head_first() -> None:
    transport, recorder, cycle = held()
    cycle.response_started = True
    transport.write(b"head")
    transport.close()
    assert recorder.writes == [b"head"] and recorder.closed
    assert transport.is_closing()
    await asyncio.sleep(0)
    assert recorder.writes == [b"head"]  # not twice


async def test_a_large_body_is_not_copied_into_the_head() -> None:
    transport, recorder, cycle = held()
    cycle.response_started = True
    body = bytes(200_000)
    transport.write(b"head")
    transport.write(body)
    assert recorder.writes == [(b"head", body)]
