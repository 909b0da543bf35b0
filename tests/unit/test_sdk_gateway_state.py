"""The SDK gateway client's protocol logic, without sockets: GatewayState (frames in, actions
out), the bounded EventQueue, the backoff schedule and the frame codec."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from miaou.sdk import GatewayClient, GatewayClosed, GatewayError, GatewayEvent
from miaou.sdk.gateway import (
    Deliver,
    Established,
    EventQueue,
    GatewayState,
    Op,
    Reconnect,
    Send,
    StartHeartbeat,
    backoff_delay,
    decode_frame,
    encode_frame,
    gateway_url,
)

TOKEN = "tok"


def dispatch(t: str, s: int | None, stream: str | None, d: Any = None) -> dict[str, Any]:
    return {"op": 0, "t": t, "s": s, "st": stream, "d": d if d is not None else {}}


def hello(interval_ms: int = 41250) -> dict[str, Any]:
    return {"op": 10, "d": {"heartbeat_interval": interval_ms}}


def ready(positions: dict[str, int], session_id: str = "sess") -> dict[str, Any]:
    d = {"session_id": session_id, "user": {"id": "7"}, "guilds": [], "positions": positions}
    return {"op": 0, "t": "READY", "s": None, "st": None, "d": d}


def resumed(positions: dict[str, int]) -> dict[str, Any]:
    return {"op": 0, "t": "RESUMED", "s": None, "st": None, "d": {"positions": positions}}


def delivered(actions: list[Any]) -> list[GatewayEvent]:
    return [a.event for a in actions if isinstance(a, Deliver)]


def sent(actions: list[Any]) -> list[dict[str, Any]]:
    return [a.frame for a in actions if isinstance(a, Send)]


def identified(positions: dict[str, int] | None = None) -> GatewayState:
    """A state after HELLO and READY on its first connection."""
    state = GatewayState(TOKEN)
    state.on_connect()
    state.on_frame(hello())
    state.on_frame(ready(positions or {}))
    return state


# -- handshake ------------------------------------------------------------------------------
def test_hello_starts_heartbeat_and_identifies_a_fresh_client() -> None:
    state = GatewayState(TOKEN)
    state.on_connect()
    actions = state.on_frame(hello(41250))
    assert actions == [
        StartHeartbeat(41.25),
        Send({"op": Op.IDENTIFY, "d": {"token": TOKEN}}),
    ]
    assert not state.established


def test_ready_keeps_session_user_payload_and_positions() -> None:
    state = GatewayState(TOKEN)
    state.on_connect()
    state.on_frame(hello())
    actions = state.on_frame(ready({"guild:42": 1234, "user:7": 5}, session_id="abc"))
    assert [e.t for e in delivered(actions)] == ["READY"]
    assert Established(resumed=False) in actions
    assert state.session_id == "abc"
    assert state.user == {"id": "7"}
    assert state.ready is not None and state.ready["guilds"] == []
    assert state.positions == {"guild:42": 1234, "user:7": 5}
    assert state.established and state.resumable


def test_identify_carries_the_presence() -> None:
    state = GatewayState(TOKEN, presence="dnd")
    state.on_connect()
    assert sent(state.on_frame(hello())) == [
        {"op": 2, "d": {"token": TOKEN, "presence": {"status": "dnd"}}}
    ]
    # Announced in IDENTIFY: READY does not send it again.
    assert sent(state.on_frame(ready({}))) == []


def test_unknown_opcode_is_ignored() -> None:
    assert identified().on_frame({"op": 42, "d": None}) == []


# -- positions and dedupe -------------------------------------------------------------------
def test_positions_are_tracked_per_stream() -> None:
    state = identified({"guild:1": 10})
    state.on_frame(dispatch("MESSAGE_CREATE", 11, "guild:1"))
    state.on_frame(dispatch("MESSAGE_CREATE", 3, "channel:9"))  # a stream new to the client
    state.on_frame(dispatch("MESSAGE_CREATE", 15, "guild:1"))  # gaps are allowed
    state.on_frame(dispatch("GUILD_JOIN", 1, "user:7"))
    assert state.positions == {"guild:1": 15, "channel:9": 3, "user:7": 1}


def test_ephemeral_events_do_not_move_positions() -> None:
    state = identified({"guild:1": 10})
    actions = state.on_frame(dispatch("TYPING_START", None, "guild:1", {"user_id": "3"}))
    assert delivered(actions) == [GatewayEvent("TYPING_START", {"user_id": "3"}, None, "guild:1")]
    state.on_frame(dispatch("PRESENCE_UPDATE", None, None))
    assert state.positions == {"guild:1": 10}


def test_a_dispatch_becomes_an_event_with_its_position_and_stream() -> None:
    state = identified()
    (event,) = delivered(state.on_frame(dispatch("MESSAGE_CREATE", 1, "guild:1", {"id": "5"})))
    assert event == GatewayEvent(t="MESSAGE_CREATE", d={"id": "5"}, s=1, st="guild:1")


def test_replayed_dispatches_are_dropped_and_counted() -> None:
    state = identified({"guild:1": 10})
    assert delivered(state.on_frame(dispatch("MESSAGE_CREATE", 10, "guild:1"))) == []  # = READY
    assert delivered(state.on_frame(dispatch("MESSAGE_CREATE", 4, "guild:1"))) == []  # older
    assert len(delivered(state.on_frame(dispatch("MESSAGE_CREATE", 11, "guild:1")))) == 1
    assert delivered(state.on_frame(dispatch("MESSAGE_CREATE", 11, "guild:1"))) == []  # again
    assert state.duplicates == 3
    assert state.positions == {"guild:1": 11}


@given(
    st.lists(
        st.tuples(st.sampled_from(["guild:1", "guild:2", "channel:3"]), st.integers(1, 30)),
        max_size=200,
    )
)
def test_any_frame_order_delivers_each_stream_strictly_increasing(
    frames: list[tuple[str, int]],
) -> None:
    state = identified()
    got: dict[str, list[int]] = {}
    for stream, position in frames:
        for event in delivered(state.on_frame(dispatch("MESSAGE_CREATE", position, stream))):
            assert event.st is not None and event.s is not None
            got.setdefault(event.st, []).append(event.s)
    for stream, positions in got.items():
        assert positions == sorted(set(positions))
        assert state.positions[stream] == max(p for s, p in frames if s == stream)
    delivered_count = sum(len(p) for p in got.values())
    assert state.duplicates == len(frames) - delivered_count


# -- resume ---------------------------------------------------------------------------------
def test_a_followed_stream_starts_where_the_join_says() -> None:
    state = identified({"user:7": 2, "guild:1": 10})
    follow = {"id": "5", "follow": {"stream": "guild:5", "position": 41}}
    state.on_frame(dispatch("GUILD_JOIN", 3, "user:7", follow))
    # A stream already known keeps its own position.
    state.on_frame(
        dispatch("GUILD_JOIN", 4, "user:7", {"follow": {"stream": "guild:1", "position": 3}})
    )
    state.on_frame(
        dispatch("GUILD_JOIN", 5, "user:7", {"follow": {"stream": "guild:6", "position": "x"}})
    )
    assert state.positions == {"user:7": 5, "guild:1": 10, "guild:5": 41}
    state.on_connect()
    (frame,) = sent(state.on_frame(hello(1000)))
    assert frame["d"]["positions"]["guild:5"] == 41  # a RESUME asks for what came after
    state.on_frame(dispatch("MESSAGE_CREATE", 42, "guild:5"))
    assert state.positions["guild:5"] == 42 and state.duplicates == 0


def test_reconnect_resumes_with_the_positions() -> None:
    state = identified({"guild:1": 10, "user:7": 2})
    state.on_frame(dispatch("MESSAGE_CREATE", 12, "guild:1"))
    state.on_connect()  # a new socket
    assert not state.established
    actions = state.on_frame(hello(1000))
    assert actions[0] == StartHeartbeat(1.0)
    (frame,) = sent(actions)
    assert frame == {"op": 6, "d": {"token": TOKEN, "positions": {"guild:1": 12, "user:7": 2}}}
    # The frame holds a copy: later events do not rewrite what was built.
    state.on_frame(dispatch("MESSAGE_CREATE", 13, "guild:1"))
    assert frame["d"]["positions"]["guild:1"] == 12


def test_resume_frame_is_valid_json_for_the_wire() -> None:
    state = identified({"guild:42": 1234})
    assert msgspec.json.decode(encode_frame(state.resume_frame())) == {
        "op": 6,
        "d": {"token": TOKEN, "positions": {"guild:42": 1234}},
    }


def test_replay_then_resumed_merges_positions() -> None:
    state = identified({"guild:1": 10, "user:7": 2})
    state.on_connect()
    state.on_frame(hello())
    replay = [
        dispatch("MESSAGE_CREATE", 10, "guild:1"),  # a duplicate the node sent anyway
        dispatch("MESSAGE_CREATE", 11, "guild:1"),
        dispatch("MESSAGE_CREATE", 12, "guild:1"),
    ]
    events = [e for frame in replay for e in delivered(state.on_frame(frame))]
    assert [e.s for e in events] == [11, 12]
    assert state.duplicates == 1
    # RESUMED names streams the client did not list (a guild joined meanwhile); a stale
    # value for a listed stream never moves a position back.
    actions = state.on_frame(resumed({"guild:99": 40, "guild:1": 5, "user:7": 3}))
    assert [e.t for e in delivered(actions)] == ["RESUMED"]
    assert Established(resumed=True) in actions
    assert state.positions == {"guild:1": 12, "user:7": 3, "guild:99": 40}
    assert state.established


def test_resumed_announces_the_presence_again() -> None:
    state = GatewayState(TOKEN, presence="idle")
    state.on_connect()
    state.on_frame(hello())
    state.on_frame(ready({}))
    state.on_connect()
    state.on_frame(hello())  # RESUME: no presence field
    assert sent(state.on_frame(resumed({}))) == [{"op": 3, "d": {"status": "idle"}}]


def test_reconnect_opcode_asks_to_reconnect() -> None:
    (action,) = identified().on_frame({"op": 7, "d": None})
    assert isinstance(action, Reconnect)


# -- invalid session ------------------------------------------------------------------------
def test_invalid_session_delivers_session_invalidated_then_identifies() -> None:
    state = identified({"guild:1": 10})
    state.on_frame(dispatch("MESSAGE_CREATE", 11, "guild:1"))
    state.on_connect()
    assert sent(state.on_frame(hello()))[0]["op"] == Op.RESUME
    actions = state.on_frame({"op": 9, "d": False})
    invalidated = {"reason": "invalid_session", "previous_positions": {"guild:1": 11}}
    assert actions == [
        Deliver(GatewayEvent("SESSION_INVALIDATED", invalidated)),
        Send({"op": 2, "d": {"token": TOKEN}}),
    ]
    assert state.positions == {}
    assert state.session_id is None
    assert not state.resumable
    # A later connection IDENTIFYs too, until a READY makes the session resumable again.
    state.on_connect()
    assert sent(state.on_frame(hello()))[0]["op"] == Op.IDENTIFY
    state.on_frame(ready({"guild:1": 50}, session_id="new"))
    assert state.positions == {"guild:1": 50}
    assert state.resumable and state.session_id == "new"


def test_positions_too_many_for_a_resume_frame_mean_a_fresh_identify() -> None:
    state = identified({f"guild:{n:020d}": n + 1 for n in range(3000)})  # > 64 KiB as RESUME
    state.on_connect()
    actions = state.on_frame(hello())
    (event,) = delivered(actions)
    assert event.t == "SESSION_INVALIDATED" and event.d["reason"] == "resume_too_large"
    assert len(event.d["previous_positions"]) == 3000
    assert sent(actions) == [{"op": 2, "d": {"token": TOKEN}}]
    assert state.positions == {} and not state.resumable


def test_a_resume_refused_as_malformed_is_not_retried() -> None:
    state = identified({"guild:1": 4})
    state.on_connect()
    state.on_frame(hello())  # RESUME sent
    (action,) = state.on_close(4002)
    assert isinstance(action, Deliver)
    assert action.event.d == {"reason": "resume_refused", "previous_positions": {"guild:1": 4}}
    state.on_connect()
    assert sent(state.on_frame(hello()))[0]["op"] == Op.IDENTIFY


def test_other_closes_keep_the_session_resumable() -> None:
    state = identified({"guild:1": 4})
    assert state.on_close(4002) == []  # after READY: not a refused RESUME
    state.on_connect()
    state.on_frame(hello())
    assert state.on_close(4000) == [] and state.on_close(None) == []
    state.on_connect()
    assert sent(state.on_frame(hello()))[0]["op"] == Op.RESUME


# -- heartbeat ------------------------------------------------------------------------------
def test_heartbeat_without_ack_means_reconnect() -> None:
    state = identified()
    assert state.heartbeat_tick() == Send({"op": 1, "d": None})
    assert state.on_frame({"op": 11, "d": None}) == []
    assert state.heartbeat_tick() == Send({"op": 1, "d": None})
    assert isinstance(state.heartbeat_tick(), Reconnect)  # the last beat was never acked
    state.on_connect()  # a new connection starts clean
    assert isinstance(state.heartbeat_tick(), Send)


def test_node_requested_heartbeat_is_answered() -> None:
    assert identified().on_frame({"op": 1, "d": None}) == [Send({"op": 1, "d": None})]


# -- presence -------------------------------------------------------------------------------
def test_presence_before_ready_is_sent_once_ready() -> None:
    state = GatewayState(TOKEN)
    state.on_connect()
    state.on_frame(hello())
    assert state.set_presence("idle") is None  # not authenticated yet: held
    assert sent(state.on_frame(ready({}))) == [{"op": 3, "d": {"status": "idle"}}]
    assert state.set_presence("dnd") == {"op": 3, "d": {"status": "dnd"}}


def test_presence_status_is_checked() -> None:
    with pytest.raises(ValueError):
        identified().set_presence("busy")
    with pytest.raises(ValueError):
        GatewayState(TOKEN, presence="away")


# -- malformed frames -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [b'{"op": 0}', "not json", "[1, 2]", '{"t": "X"}', '{"op": "0"}', '{"op": true}'],
)
def test_decode_frame_refuses_what_is_not_a_frame(raw: str | bytes) -> None:
    with pytest.raises(GatewayError):
        decode_frame(raw)


def test_decode_frame_reads_a_frame() -> None:
    assert decode_frame('{"op": 11, "d": null}') == {"op": 11, "d": None}


@pytest.mark.parametrize(
    "frame",
    [
        {"op": 10, "d": None},
        {"op": 10, "d": {"heartbeat_interval": 0}},
        {"op": 10, "d": {"heartbeat_interval": "41250"}},
        {"op": 0, "t": None, "s": 1, "st": "guild:1", "d": {}},
        {"op": 0, "t": "MESSAGE_CREATE", "s": True, "st": "guild:1", "d": {}},
        {"op": 0, "t": "MESSAGE_CREATE", "s": "3", "st": "guild:1", "d": {}},
        {"op": 0, "t": "MESSAGE_CREATE", "s": 3, "st": 42, "d": {}},
        {"op": 0, "t": "READY", "s": None, "st": None, "d": None},
    ],
)
def test_malformed_frames_raise(frame: dict[str, Any]) -> None:
    state = GatewayState(TOKEN)
    state.on_connect()
    with pytest.raises(GatewayError):
        state.on_frame(frame)


# -- the bounded queue ----------------------------------------------------------------------
def ev(n: int) -> GatewayEvent:
    return GatewayEvent("MESSAGE_CREATE", {"n": n}, n, "guild:1")


def test_full_queue_drops_the_oldest_and_counts() -> None:
    queue = EventQueue(3)
    for n in range(1, 6):
        queue.put(ev(n))
    assert len(queue) == 3
    assert queue.dropped == 2
    assert [queue.get_nowait() for _ in range(4)] == [ev(3), ev(4), ev(5), None]


async def test_get_waits_for_the_next_event() -> None:
    queue = EventQueue(10)
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.put(ev(1))
    assert await waiter == ev(1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await queue.get()


async def test_close_delivers_what_is_buffered_then_the_error() -> None:
    queue = EventQueue(10)
    queue.put(ev(1))
    queue.close(GatewayError("gone"))
    queue.put(ev(2))  # after close: ignored
    assert await queue.get() == ev(1)
    with pytest.raises(GatewayError, match="gone"):
        await queue.get()


async def test_clean_close_wakes_waiters_with_gateway_closed() -> None:
    queue = EventQueue(10)
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.close()
    with pytest.raises(GatewayClosed):
        await waiter


async def test_find_takes_the_match_and_leaves_the_rest_in_order() -> None:
    queue = EventQueue(10)
    for n in (1, 2, 3):
        queue.put(ev(n))
    assert await queue.find(lambda e: e.d["n"] == 2) == ev(2)
    finder = asyncio.create_task(queue.find(lambda e: e.d["n"] == 5))
    await asyncio.sleep(0)
    queue.put(ev(4))
    await asyncio.sleep(0)
    assert not finder.done()
    queue.put(ev(5))
    queue.put(ev(6))
    assert await finder == ev(5)
    assert [queue.get_nowait() for _ in range(5)] == [ev(1), ev(3), ev(4), ev(6), None]


async def test_find_tests_each_event_once() -> None:
    queue = EventQueue(10)
    seen: list[int] = []

    def predicate(event: GatewayEvent) -> bool:
        seen.append(event.d["n"])
        return bool(event.d["n"] == 4)

    queue.put(ev(1))
    finder = asyncio.create_task(queue.find(predicate))
    for n in (2, 3, 4):
        await asyncio.sleep(0)
        queue.put(ev(n))
    assert await finder == ev(4)
    assert seen == [1, 2, 3, 4]


def test_queue_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        EventQueue(0)


# -- backoff --------------------------------------------------------------------------------
def test_backoff_starts_at_a_tenth_of_a_second_and_doubles_to_the_cap() -> None:
    ceilings = [backoff_delay(n, cap=10.0, jitter=1.0) for n in range(10)]
    assert ceilings[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert ceilings[-1] == 10.0
    assert ceilings == sorted(ceilings)
    assert backoff_delay(0, jitter=0.0) == pytest.approx(0.05)


@given(st.integers(0, 10_000), st.floats(0.0, 1.0), st.floats(0.2, 60.0))
def test_backoff_stays_within_bounds(attempt: int, jitter: float, cap: float) -> None:
    delay = backoff_delay(attempt, cap=cap, jitter=jitter)
    ceiling = min(cap, 0.1 * 2.0**attempt) if attempt < 64 else cap
    assert ceiling / 2 <= delay <= ceiling <= cap


# -- odds and ends --------------------------------------------------------------------------
def test_gateway_url_is_made_absolute_with_a_websocket_scheme() -> None:
    base = "http://127.0.0.1:8080"
    assert gateway_url(base, "ws://127.0.0.1:8080/gateway") == "ws://127.0.0.1:8080/gateway"
    assert gateway_url(base, "/gateway") == "ws://127.0.0.1:8080/gateway"
    assert gateway_url("https://chat.example/", "/gateway") == "wss://chat.example/gateway"


def test_gateway_event_is_frozen() -> None:
    event = GatewayEvent(t="READY", d={})
    assert (event.s, event.st) == (None, None)
    with pytest.raises(AttributeError):
        event.t = "X"  # type: ignore[misc]


async def test_a_closed_client_ends_its_consumers() -> None:
    gw = GatewayClient("ws://127.0.0.1:9/gateway", TOKEN)
    assert not gw.connected and not gw.closed
    with pytest.raises(TimeoutError):
        await gw.next_event(timeout=0.01)
    consumer = asyncio.create_task(anext(gw.events(), None))
    await asyncio.sleep(0)
    await gw.close()
    await gw.close()  # idempotent
    assert await consumer is None  # events() ended cleanly
    assert gw.closed
    with pytest.raises(GatewayClosed):
        await gw.send_presence("idle")
    with pytest.raises(GatewayClosed):
        await gw.connect()


def test_client_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        GatewayClient("ws://x/gateway", TOKEN, max_backoff=0)
    with pytest.raises(ValueError):
        GatewayClient("ws://x/gateway", TOKEN, max_reconnects=-1)
    with pytest.raises(ValueError):
        GatewayClient("ws://x/gateway", TOKEN, queue_size=0)
