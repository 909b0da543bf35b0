"""The gateway connection state machine, with bytes and an injected clock only.

The client side is websockets' own sans-I/O ClientProtocol, so the bytes on the wire are what
a real client sends and parses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from miaou.gateway.frames import CloseCode, Op, dispatch_frame
from miaou.gateway.protocol import (
    AUTHENTICATE_TIMEOUT_MS,
    CLOSE_TIMEOUT_MS,
    IDENTIFY_TIMEOUT_MS,
    MAX_FRAME_BYTES,
    RATE_FRAMES,
    GatewayConnection,
    Identify,
    PresenceUpdate,
    Resume,
    State,
)

HEARTBEAT = 1000


class Pair:
    """A server connection and a websockets client, wired by hand."""

    def __init__(self, path: str = "/gateway?v=1", heartbeat_ms: int = HEARTBEAT) -> None:
        self.now = 0
        self.server = GatewayConnection(self.now, heartbeat_ms=heartbeat_ms)
        self.client = ClientProtocol(parse_uri(f"ws://127.0.0.1:9{path}"), max_size=None)
        self.client.send_request(self.client.connect())
        self.response: Response | None = None
        self.frames: list[Frame] = []
        self.to_server()

    def to_server(self) -> None:
        for data in self.client.data_to_send():
            if data:
                self.server.receive_data(data, self.now)
        self.to_client()

    def to_client(self) -> None:
        for data in self.server.data_to_send():
            self.client.receive_data(data)
        for event in self.client.events_received():
            if isinstance(event, Response):
                self.response = event
            else:
                self.frames.append(event)

    def send(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.client.send_text(text.encode())
        self.to_server()

    def received(self) -> list[dict[str, Any]]:
        out = [json.loads(f.data) for f in self.frames if f.opcode is Opcode.TEXT]
        self.frames = [f for f in self.frames if f.opcode is not Opcode.TEXT]
        return out

    def close_code(self) -> int | None:
        closes = [f for f in self.frames if f.opcode is Opcode.CLOSE]
        return int.from_bytes(closes[-1].data[:2], "big") if closes else None

    def tick(self, ms: int) -> None:
        self.now += ms
        self.server.handle_timer(self.now)
        self.to_client()

    def identify(self) -> None:
        self.received()  # HELLO
        self.send({"op": 2, "d": {"token": "mia_token"}})
        assert self.server.requests() == [Identify(token="mia_token")]
        self.server.accept_session(dispatch_frame("READY", b"{}", None, None), self.now)
        self.to_client()
        assert [f["t"] for f in self.received()] == ["READY"]


def test_handshake_then_hello_with_the_interval() -> None:
    pair = Pair()
    assert pair.response is not None and pair.response.status_code == 101
    assert pair.received() == [
        {"op": Op.HELLO, "t": None, "s": None, "d": {"heartbeat_interval": HEARTBEAT}}
    ]
    assert pair.server.state is State.WAITING


def test_no_compression_is_negotiated_so_frames_can_be_shared() -> None:
    pair = Pair()
    assert pair.response is not None
    assert "Sec-WebSocket-Extensions" not in pair.response.headers


def test_other_paths_get_404_and_the_connection_closes() -> None:
    pair = Pair("/elsewhere")
    assert pair.response is not None and pair.response.status_code == 404
    assert pair.server.closed


def test_identify_ready_then_dispatches_flow() -> None:
    pair = Pair()
    pair.received()
    pair.identify()
    frame = dispatch_frame("MESSAGE_CREATE", b'{"id":"1"}', 7, "guild:1")
    pair.server.send(frame)
    pair.to_client()
    assert pair.received() == [
        {"op": 0, "t": "MESSAGE_CREATE", "s": 7, "st": "guild:1", "d": {"id": "1"}}
    ]


def test_dispatches_are_held_back_until_ready() -> None:
    pair = Pair()
    pair.received()
    pair.server.send(dispatch_frame("MESSAGE_CREATE", b"{}", 1, "guild:1"))
    pair.to_client()
    assert pair.received() == []


def test_resume_request_carries_positions() -> None:
    pair = Pair()
    pair.send({"op": 6, "d": {"token": "t", "positions": {"guild:1": 5, "user:2": 0}}})
    assert pair.server.requests() == [Resume(token="t", positions={"guild:1": 5, "user:2": 0})]
    assert pair.server.state is State.AUTHENTICATING


def test_invalid_session_lets_the_client_identify_afresh() -> None:
    pair = Pair()
    pair.received()
    pair.send({"op": 6, "d": {"token": "t", "positions": {"guild:1": 5}}})
    pair.server.requests()
    pair.server.invalid_session(pair.now)
    pair.to_client()
    assert pair.received() == [{"op": Op.INVALID_SESSION, "t": None, "s": None, "d": False}]
    pair.identify()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("not json", CloseCode.DECODE_ERROR),
        ("[1, 2]", CloseCode.DECODE_ERROR),
        ({"op": "two"}, CloseCode.DECODE_ERROR),
        ({"op": 2, "d": "token"}, CloseCode.DECODE_ERROR),
        ({"op": 2, "d": {"token": ""}}, CloseCode.AUTHENTICATION_FAILED),
        ({"op": 2, "d": {"token": "x" * 300}}, CloseCode.AUTHENTICATION_FAILED),
        ({"op": 2, "d": {"token": "t", "presence": {"status": "asleep"}}}, CloseCode.DECODE_ERROR),
        ({"op": 6, "d": {"token": "t", "positions": {"guild:1": -1}}}, CloseCode.DECODE_ERROR),
        ({"op": 6, "d": {"token": "t", "positions": {"guild:1": True}}}, CloseCode.DECODE_ERROR),
        ({"op": 6, "d": {"token": "t", "positions": {"g" * 65: 1}}}, CloseCode.DECODE_ERROR),
        ({"op": 6, "d": {"token": "t", "positions": [1]}}, CloseCode.DECODE_ERROR),
        ({"op": 3, "d": {"status": "idle"}}, CloseCode.NOT_AUTHENTICATED),
        ({"op": 0, "d": None}, CloseCode.NOT_AUTHENTICATED),
    ],
)
def test_bad_frames_before_ready_close_with_their_code(payload: Any, code: CloseCode) -> None:
    pair = Pair()
    pair.send(payload)
    assert pair.close_code() == code
    assert pair.server.requests() == []
    assert pair.server.state is State.CLOSING


def test_after_ready_unknown_ops_and_second_identify_are_refused() -> None:
    pair = Pair()
    pair.identify()
    pair.send({"op": 99})
    assert pair.close_code() == CloseCode.UNKNOWN_OPCODE
    other = Pair()
    other.identify()
    other.send({"op": 2, "d": {"token": "again"}})
    assert other.close_code() == CloseCode.ALREADY_AUTHENTICATED


def test_presence_update_after_ready() -> None:
    pair = Pair()
    pair.identify()
    pair.send({"op": 3, "d": {"status": "dnd"}})
    assert pair.server.requests() == [PresenceUpdate("dnd")]


def test_binary_frames_are_refused() -> None:
    pair = Pair()
    pair.client.send_binary(b"\x00\x01")
    pair.to_server()
    assert pair.close_code() == CloseCode.DECODE_ERROR


def test_a_frame_over_the_limit_closes_with_1009() -> None:
    pair = Pair()
    pair.identify()
    pair.send(json.dumps({"op": 1, "d": "x" * MAX_FRAME_BYTES}))
    assert pair.close_code() == 1009
    assert pair.server.closed  # websockets half-closes at once on a protocol failure


def test_fragmented_messages_are_assembled() -> None:
    pair = Pair()
    pair.received()
    text = json.dumps({"op": 2, "d": {"token": "frag"}}).encode()
    pair.client.send_text(text[:5], fin=False)
    pair.client.send_continuation(text[5:], fin=True)
    pair.to_server()
    assert pair.server.requests() == [Identify(token="frag")]


def test_heartbeat_is_acknowledged_and_keeps_the_session() -> None:
    pair = Pair()
    pair.identify()
    for _ in range(5):
        pair.tick(HEARTBEAT)
        pair.send({"op": 1, "d": None})
        assert pair.received() == [{"op": Op.HEARTBEAT_ACK, "t": None, "s": None, "d": None}]
    assert pair.server.state is State.READY


def test_a_silent_client_times_out_with_4009() -> None:
    pair = Pair()
    pair.identify()
    pair.tick(HEARTBEAT * 3 // 2 - 1)
    assert pair.server.state is State.READY
    pair.tick(1)
    assert pair.close_code() == CloseCode.SESSION_TIMED_OUT
    # The client never answers the close: the socket is dropped after the close timeout.
    pair.tick(CLOSE_TIMEOUT_MS)
    assert pair.server.closed


def test_no_identify_in_time_closes_with_4003() -> None:
    pair = Pair()
    pair.tick(IDENTIFY_TIMEOUT_MS)
    assert pair.close_code() == CloseCode.NOT_AUTHENTICATED


def test_a_slow_node_is_not_the_clients_fault() -> None:
    pair = Pair()
    pair.received()
    pair.tick(IDENTIFY_TIMEOUT_MS - 1)
    pair.send({"op": 2, "d": {"token": "mia_token"}})
    pair.tick(IDENTIFY_TIMEOUT_MS)  # the node is still checking the token: no 4003
    assert pair.close_code() is None and pair.server.state is State.AUTHENTICATING
    pair.tick(AUTHENTICATE_TIMEOUT_MS - IDENTIFY_TIMEOUT_MS)  # but not for ever
    assert pair.close_code() == CloseCode.UNKNOWN_ERROR


def test_deadline_is_what_the_caller_must_wake_for() -> None:
    pair = Pair()
    pair.identify()
    assert pair.server.deadline == pair.now + HEARTBEAT * 3 // 2
    pair.tick(500)
    pair.send({"op": 1})
    assert pair.server.deadline == pair.now + HEARTBEAT * 3 // 2


def test_more_than_the_rate_closes_with_4008_and_the_window_resets() -> None:
    pair = Pair()
    pair.identify()
    for _ in range(RATE_FRAMES - 1):  # IDENTIFY counted as one
        pair.send({"op": 1})
    assert pair.close_code() is None
    pair.send({"op": 1})
    assert pair.close_code() == CloseCode.RATE_LIMITED

    calm = Pair(heartbeat_ms=100_000)
    calm.identify()
    for _ in range(3):  # each minute starts a new window
        for _ in range(RATE_FRAMES - 1):
            calm.send({"op": 1})
        calm.tick(60_000)
        calm.send({"op": 1})
    assert calm.close_code() is None


def test_client_close_is_echoed_and_the_server_closes_tcp() -> None:
    pair = Pair()
    pair.identify()
    pair.client.send_close(1000, "bye")
    pair.to_server()
    assert pair.close_code() == 1000
    assert pair.server.closed


def test_reconnect_sends_op7_then_1001() -> None:
    pair = Pair()
    pair.identify()
    pair.server.reconnect(pair.now)
    pair.to_client()
    assert pair.received() == [{"op": Op.RECONNECT, "t": None, "s": None, "d": None}]
    assert pair.close_code() == CloseCode.GOING_AWAY


def test_pings_are_answered_with_their_data() -> None:
    pair = Pair()
    pair.identify()
    pair.client.send_ping(b"hi")
    pair.to_server()
    assert [(f.opcode, f.data) for f in pair.frames] == [(Opcode.PONG, b"hi")]


def test_one_dispatch_frame_is_the_same_bytes_for_every_connection() -> None:
    frame = dispatch_frame("TYPING_START", b'{"channel_id":"3"}', None, "guild:1")
    pairs = [Pair() for _ in range(3)]
    for pair in pairs:
        pair.identify()
        pair.server.send(frame)
        out = pair.server.data_to_send()
        assert out == [frame]
        pair.client.receive_data(out[0])
        pair.to_client()
        assert pair.received()[0]["d"] == {"channel_id": "3"}


def test_presence_updates_have_their_own_smaller_rate() -> None:
    pair = Pair(heartbeat_ms=100_000)
    pair.identify()
    for status in ["idle", "dnd", "online", "idle", "dnd"]:
        pair.send({"op": 3, "d": {"status": status}})
    assert len(pair.server.requests()) == 5 and pair.close_code() is None
    pair.send({"op": 3, "d": {"status": "online"}})
    assert pair.close_code() == CloseCode.RATE_LIMITED


# -- frames after the handshake, read by ``miaou.gateway.wire`` ------------------------------
def client_frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=True)


def raw_close(code: int, reason: bytes = b"") -> bytes:
    return client_frame(Opcode.CLOSE, code.to_bytes(2, "big") + reason)


def test_the_handshake_object_is_dropped_once_answered() -> None:
    pair = Pair()
    assert pair.server.ws is None  # ~1.6 KB per idle connection otherwise


def test_frames_split_anywhere_across_reads_are_reassembled() -> None:
    pair = Pair()
    pair.received()
    wire = client_frame(Opcode.TEXT, json.dumps({"op": 2, "d": {"token": "bytewise"}}).encode())
    wire += client_frame(Opcode.TEXT, b'{"op": 1}')
    for i in range(len(wire)):
        pair.server.receive_data(wire[i : i + 1], pair.now)
    assert pair.server.requests() == [Identify(token="bytewise")]
    assert pair.server.state is State.AUTHENTICATING


def test_a_frame_sent_with_the_request_is_read_after_the_handshake() -> None:
    server = GatewayConnection(0, heartbeat_ms=HEARTBEAT)
    client = ClientProtocol(parse_uri("ws://127.0.0.1:9/gateway"))
    client.send_request(client.connect())
    (request,) = client.data_to_send()
    identify = client_frame(Opcode.TEXT, b'{"op": 2, "d": {"token": "eager"}}')
    server.receive_data(request[:20], 0)
    server.receive_data(request[20:] + identify, 0)
    assert server.requests() == [Identify(token="eager")]


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (client_frame(Opcode.CONT, b"x"), 1002),  # a continuation with nothing to continue
        (client_frame(Opcode.TEXT, b"{", fin=False) + client_frame(Opcode.TEXT, b"}"), 1002),
        (Frame(Opcode.TEXT, b'{"op": 1}').serialize(mask=False), 1002),  # clients must mask
        (raw_close(999), 1002),  # not a close code
        (raw_close(1000, b"\xff\xfe"), 1007),  # a reason that is not UTF-8
        (client_frame(Opcode.TEXT, b"x" * 60_000, fin=False)
         + client_frame(Opcode.CONT, b"x" * 10_000), 1009),  # fragments over the limit
    ],
    # Masked frames are random bytes: named ids keep collection identical across processes.
    ids=["lone-continuation", "text-inside-fragments", "unmasked", "bad-close-code",
         "close-reason-not-utf8", "fragments-over-limit"],
)  # fmt: skip
def test_protocol_errors_fail_the_connection_with_their_code(wire: bytes, code: int) -> None:
    pair = Pair()
    pair.identify()
    pair.server.receive_data(wire, pair.now)
    pair.to_client()
    assert pair.close_code() == code
    assert pair.server.closed
    pair.server.receive_data(client_frame(Opcode.TEXT, b'{"op": 1}'), pair.now)
    assert pair.server.data_to_send() == []  # nothing after the end


def test_a_close_without_a_code_is_echoed_empty() -> None:
    pair = Pair()
    pair.identify()
    pair.server.receive_data(client_frame(Opcode.CLOSE, b""), pair.now)
    assert pair.server.data_to_send() == [Frame(Opcode.CLOSE, b"").serialize(mask=False)]
    assert pair.server.closed and pair.server.close_code is None


def test_the_client_answering_our_close_ends_the_connection() -> None:
    pair = Pair()
    pair.identify()
    pair.server.reconnect(pair.now)
    pair.to_client()
    assert pair.server.state is State.CLOSING
    pair.to_server()  # websockets' client answers the close frame
    assert pair.server.closed and pair.server.close_code == CloseCode.GOING_AWAY


def test_eof_ends_the_connection() -> None:
    pair = Pair()
    pair.identify()
    pair.server.receive_eof(pair.now)
    assert pair.server.closed and pair.server.deadline is None
