"""How the hub writes broadcast frames (``Hub.push`` / ``Hub._flush``): once per loop pass,
a frame alone written at once to each connection, several queued per connection and written
in one write, in order; connections holding frames, not READY or too slow handled as before.

Sessions are the real ``transport.Session`` over a transport that records its writes.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from miaou.bus.memory import MemoryBus
from miaou.gateway.audience import Audience
from miaou.gateway.deadlines import Deadlines
from miaou.gateway.frames import CloseCode
from miaou.gateway.hub import Hub
from miaou.gateway.protocol import State
from miaou.gateway.transport import Session, protocol_class

BOUND = 65_536


class Recorder:
    """A transport that keeps what is written; ``buffered`` plays the unsent bytes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def sessions(count: int) -> tuple[Hub, list[Session], list[Recorder]]:
    hub = Hub(None, MemoryBus())  # type: ignore[arg-type]  # no stream is loaded here
    gateway: Any = SimpleNamespace(
        settings=SimpleNamespace(gateway_heartbeat_ms=41_250), hub=hub, deadlines=Deadlines(),
        send_buffer_bytes=BOUND, slow_consumers=0, connections=0, ended=lambda s: None,
    )  # fmt: skip
    cls = protocol_class(gateway)
    made, transports = [], []
    for _ in range(count):
        session, transport = cls(), Recorder()
        session.connection_made(transport)  # type: ignore[arg-type]
        session.conn.ws = None
        session.conn.state = State.AUTHENTICATING  # as after a good IDENTIFY
        session.conn.accept_session(b"READY", 0)
        session.conn.data_to_send()  # the READY frame: written before these tests start
        made.append(session)
        transports.append(transport)
    return hub, made, transports


async def one_pass() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_a_frame_alone_in_its_pass_is_written_to_each_once() -> None:
    hub, made, transports = sessions(3)
    assert hub.push(made, b"one") == 3
    assert [t.writes for t in transports] == [[], [], []]  # not before the pass ends
    await one_pass()
    assert [t.writes for t in transports] == [[b"one"], [b"one"], [b"one"]]


async def test_frames_of_one_pass_go_out_in_one_write_per_connection_in_order() -> None:
    hub, made, transports = sessions(3)
    hub.push(made, b"one")
    hub.push(made[:2], b"two")
    hub.push([made[0]], b"three")
    await one_pass()
    assert [t.writes for t in transports] == [[b"onetwothree"], [b"onetwo"], [b"one"]]
    hub.push(made, b"four")  # the next pass: written on its own
    await one_pass()
    assert [t.writes[-1] for t in transports] == [b"four"] * 3


async def test_holding_sessions_keep_the_frame_and_closed_ones_drop_it() -> None:
    hub, made, transports = sessions(3)
    holding, closing, live = made
    holding.hold()
    closing.conn.state = State.CLOSING
    hub.push(made, b"one")
    await one_pass()
    assert holding.held == [b"one"] and transports[0].writes == []
    assert transports[1].writes == []
    assert transports[2].writes == [b"one"]
    assert live.open


async def test_a_frame_alone_follows_output_not_yet_written() -> None:
    hub, made, transports = sessions(1)
    made[0].conn.send(b"earlier")  # queued, not taken: the frame must come after it
    hub.push(made, b"one")
    await one_pass()
    assert transports[0].writes == [b"earlierone"]


async def test_a_connection_past_the_buffer_bound_is_cut_off_on_either_path() -> None:
    for frames in ([b"one"], [b"one", b"two"]):
        hub, made, transports = sessions(2)
        transports[0].buffered = BOUND + 1
        for frame in frames:
            hub.push(made, frame)
        await one_pass()
        slow, fine = made
        assert slow.conn.close_code == CloseCode.SLOW_CONSUMER
        assert slow.gateway.slow_consumers == 1
        assert transports[1].writes == [b"".join(frames)] and fine.open


# -- an Audience: the transports of sessions that take frames now, in one loop -------------
def ready_audience(count: int) -> tuple[Hub, list[Session], list[Recorder], Audience]:
    hub, made, transports = sessions(count)
    for session in made:
        # As after READY: nothing queued, nothing held (write_pushed: flush would also
        # file the heartbeat deadline, timed here from 0, already past).
        session.write_pushed()
    assert all(s.direct is not None for s in made)
    return hub, made, transports, Audience(made)


async def test_an_audience_writes_to_sessions_that_take_frames_and_spares_the_others() -> None:
    hub, made, transports, audience = ready_audience(4)
    hub.push(audience, b"one")
    await one_pass()
    assert [t.writes for t in transports] == [[b"one"]] * 4
    holding, closing, lost, _ = made
    holding.hold()
    closing.conn.close(CloseCode.GOING_AWAY, 0)
    closing.write_pushed()
    written = list(transports[1].writes)  # its close frame
    lost.connection_lost(None)
    hub.push(audience, b"two")
    await one_pass()
    assert holding.held == [b"two"] and transports[0].writes == [b"one"]
    assert transports[1].writes == written
    assert transports[2].writes == [b"one"]
    assert transports[3].writes == [b"one", b"two"]


async def test_a_session_joins_an_audiences_loop_once_ready_and_its_frames_stay_in_order() -> None:
    hub, made, transports, audience = ready_audience(2)
    late = made[1]
    late.hold()  # a RESUME being built: live frames wait
    hub.push(audience, b"one")
    await one_pass()
    assert late.held == [b"one"]
    held, late.held = late.held, None
    late.conn.send(b"replay")
    for frame in held:
        late.conn.send(frame)
    late.write_pushed()
    assert late.direct is not None
    hub.push(audience, b"two")
    await one_pass()
    assert transports[1].writes == [b"replayone", b"two"]
    assert transports[0].writes == [b"one", b"two"]


async def test_a_slow_consumer_in_an_audience_is_cut_off_and_written_no_more() -> None:
    hub, made, transports, audience = ready_audience(2)
    transports[0].buffered = BOUND + 1
    hub.push(audience, b"one")
    await one_pass()
    slow, fine = made
    assert slow.conn.close_code == CloseCode.SLOW_CONSUMER and slow.direct is None
    assert slow.gateway.slow_consumers == 1
    after_cut = len(transports[0].writes)  # the frame, then the close frame
    hub.push(audience, b"two")
    await one_pass()
    assert len(transports[0].writes) == after_cut
    assert transports[1].writes == [b"one", b"two"] and fine.open
