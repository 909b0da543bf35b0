"""channel_sight: which rule events can change who sees a channel, the before/after diff per
viewer, the frames it makes, and the book of channel payloads they carry."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from test_guild_view import (
    ADMINU,
    ALICE,
    BOB,
    CAROL,
    CATEGORY,
    GENERAL,
    NOW,
    OWNER,
    SECRET,
    SECRET_THREAD,
    THREAD,
    VIP,
    G,
    P,
    channel_event,
    guild_event,
    make_view,
    member_event,
    ow,
    role_delete_event,
    role_event,
    thread_event,
)

from miaou.chat.permissions import DEFAULT_EVERYONE, RoleInfo
from miaou.gateway.channel_sight import (
    WATCHED,
    Before,
    ChannelBook,
    changes_sight,
    sight_diff,
)
from miaou.gateway.gating import KNOWN_TYPES
from miaou.gateway.guild_view import GuildView, MemberRecord

STREAM = f"guild:{G}"
SECRET_OWS = [ow(G, 0, deny=P.VIEW_CHANNEL), ow(VIP, 0, allow=P.VIEW_CHANNEL)]
BOB_MUTED = channel_event(GENERAL, overwrites=[ow(BOB, 1, deny=P.SEND_MESSAGES)])
BOB_BLIND = channel_event(GENERAL, overwrites=[ow(BOB, 1, deny=P.VIEW_CHANNEL)])


def book() -> ChannelBook:
    """The channels (not threads) of make_view(), as READY lists them."""
    found = ChannelBook()
    for cid, ows in ((GENERAL, []), (SECRET, SECRET_OWS), (CATEGORY, [])):
        found.apply("CHANNEL_CREATE", channel_event(cid, overwrites=ows))
    return found


def run(
    view: GuildView, channels: ChannelBook, event: str, payload: Any, users: list[int]
) -> dict[int, list[tuple[str, int]]]:
    """What the hub does: snapshot if the event may change sight, apply, diff. Per user
    who gets derived frames: (event, channel id) in order."""
    before = Before.in_view(view, users, NOW) if changes_sight(view, event, payload) else None
    view.apply(event, payload)
    channels.apply(event, payload)
    if before is None:
        return {}
    out = {}
    for index, frames in channels.derived(view, before, users, NOW, STREAM):
        decoded = [msgspec.json.decode(f[f.index(b"{") :]) for f in frames]
        assert all(d["s"] is None and d["st"] == STREAM for d in decoded)
        out[users[index]] = [(d["t"], int(d["d"]["id"])) for d in decoded]
    return out


USERS = [OWNER, ALICE, BOB, CAROL, ADMINU]


def test_only_guild_events_that_can_change_rules_are_watched() -> None:
    assert WATCHED <= KNOWN_TYPES
    assert "MESSAGE_CREATE" not in WATCHED and "TYPING_START" not in WATCHED


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        # A role: only VIEW_CHANNEL and ADMINISTRATOR bits matter.
        ("GUILD_ROLE_UPDATE", role_event(G, DEFAULT_EVERYONE & ~P.ADD_REACTIONS), False),
        ("GUILD_ROLE_UPDATE", role_event(G, DEFAULT_EVERYONE & ~P.VIEW_CHANNEL), True),
        ("GUILD_ROLE_UPDATE", role_event(VIP, P.ADMINISTRATOR), True),
        ("GUILD_ROLE_UPDATE", role_event(VIP, 0, position=5), False),  # a move
        ("GUILD_ROLE_UPDATE", role_event(77, 0), True),  # unknown: assume it does
        ("GUILD_ROLE_DELETE", role_delete_event(VIP), True),
        ("GUILD_ROLE_DELETE", role_delete_event(77), False),
        # A member: their roles, not their nick or timeout.
        ("GUILD_MEMBER_UPDATE", member_event(ALICE, [VIP]), True),
        ("GUILD_MEMBER_UPDATE", member_event(BOB, [VIP]), False),
        ("GUILD_MEMBER_UPDATE", member_event(BOB, [VIP], until=NOW + 60_000), False),
        ("GUILD_MEMBER_UPDATE", member_event(12345, [VIP]), False),  # not a member
        # A channel: the VIEW_CHANNEL bits of its overwrites; a reorder's has none.
        ("CHANNEL_UPDATE", channel_event(SECRET, overwrites=SECRET_OWS), False),
        ("CHANNEL_UPDATE", channel_event(SECRET), False),
        ("CHANNEL_UPDATE", BOB_MUTED, False),
        ("CHANNEL_UPDATE", BOB_BLIND, True),
        ("CHANNEL_UPDATE", channel_event(SECRET, overwrites=SECRET_OWS[:1]), True),
        # The guild: its owner only.
        ("GUILD_UPDATE", guild_event(OWNER), False),
        ("GUILD_UPDATE", guild_event(ALICE), True),
        # The others show or hide a channel by themselves, or nothing.
        ("CHANNEL_CREATE", channel_event(99), False),
        ("CHANNEL_DELETE", channel_event(SECRET), False),
        ("GUILD_ROLE_CREATE", role_event(77, P.ADMINISTRATOR), False),
    ],
)
def test_changes_sight(event: str, payload: Any, expected: bool) -> None:
    assert changes_sight(make_view(), event, payload) is expected


def test_a_member_given_a_role_sees_the_channel_it_opens() -> None:
    view, channels = make_view(), book()
    got = run(view, channels, "GUILD_MEMBER_UPDATE", member_event(ALICE, [VIP]), USERS)
    assert got == {ALICE: [("CHANNEL_CREATE", SECRET)]}  # not its thread: channels only
    got = run(view, channels, "GUILD_MEMBER_UPDATE", member_event(ALICE, []), USERS)
    assert got == {ALICE: [("CHANNEL_DELETE", SECRET)]}


def test_everyone_losing_view_hides_what_no_other_role_opens() -> None:
    view, channels = make_view(), book()
    hidden = DEFAULT_EVERYONE & ~P.VIEW_CHANNEL
    got = run(view, channels, "GUILD_ROLE_UPDATE", role_event(G, hidden), USERS)
    # In display order (every position is 0 here: by id). BOB keeps SECRET through VIP.
    lost_all = [("CHANNEL_DELETE", GENERAL), ("CHANNEL_DELETE", SECRET),
                ("CHANNEL_DELETE", CATEGORY)]  # fmt: skip
    assert got == {
        ALICE: [e for e in lost_all if e[1] != SECRET],
        CAROL: [e for e in lost_all if e[1] != SECRET],
        BOB: [e for e in lost_all if e[1] != SECRET],
    }
    got = run(view, channels, "GUILD_ROLE_UPDATE", role_event(G, DEFAULT_EVERYONE), USERS)
    assert set(got) == {ALICE, BOB, CAROL}
    assert got[BOB] == [("CHANNEL_CREATE", GENERAL), ("CHANNEL_CREATE", CATEGORY)]


def test_an_overwrite_change_shows_and_hides_the_channel_itself() -> None:
    view, channels = make_view(), book()
    payload = channel_event(SECRET, overwrites=[ow(VIP, 0, allow=P.VIEW_CHANNEL)])
    got = run(view, channels, "CHANNEL_UPDATE", payload, USERS)
    assert got == {ALICE: [("CHANNEL_CREATE", SECRET)], CAROL: [("CHANNEL_CREATE", SECRET)]}
    # The frame carries the channel as the event left it.
    assert channels.channels[SECRET]["permission_overwrites"][0]["id"] == str(VIP)


def test_a_new_owner_sees_all_and_the_old_one_is_a_member_again() -> None:
    view, channels = make_view(), book()
    got = run(view, channels, "GUILD_UPDATE", guild_event(ALICE), USERS)
    assert got == {ALICE: [("CHANNEL_CREATE", SECRET)], OWNER: [("CHANNEL_DELETE", SECRET)]}


def test_a_diff_is_computed_once_per_pair_of_viewer_sets() -> None:
    # 200 members on one shared viewer: one frozen copy, one diff, the same frame objects.
    members = [MemberRecord(1000 + i) for i in range(200)]
    roles = [RoleInfo(id=G, position=0, permissions=int(DEFAULT_EVERYONE))]
    view = GuildView(G, OWNER, roles, members, [])
    channels = ChannelBook()
    for cid in (GENERAL, SECRET):
        view.apply("CHANNEL_CREATE", channel_event(cid))
        channels.apply("CHANNEL_CREATE", channel_event(cid))
    users = [m.user_id for m in members]
    before = Before.in_view(view, users, NOW)
    assert len({id(s) for s in before.seen}) == 1
    payload = role_event(G, DEFAULT_EVERYONE & ~P.VIEW_CHANNEL)
    view.apply("GUILD_ROLE_UPDATE", payload)
    out = list(channels.derived(view, before, users, NOW, STREAM))
    assert [i for i, _ in out] == list(range(200))
    assert len({id(frames) for _, frames in out}) == 1  # one list, shared


def test_sight_diff_leaves_threads_and_unknown_ids_out() -> None:
    channels = {GENERAL: {}, SECRET: {}}
    before = frozenset({GENERAL, THREAD})
    assert sight_diff(before, {SECRET, SECRET_THREAD}, channels) == ([SECRET], [GENERAL])
    assert sight_diff(before, set(before), channels) == ([], [])


def test_the_book_keeps_channels_not_threads_and_keeps_overwrites_a_reorder_omits() -> None:
    channels = book()
    channels.apply("THREAD_CREATE", thread_event(THREAD, GENERAL))
    channels.apply("CHANNEL_UPDATE", channel_event(SECRET))  # a reorder: no overwrites
    assert sorted(channels.channels) == sorted([GENERAL, SECRET, CATEGORY])
    kept = channels.channels[SECRET]["permission_overwrites"]
    assert [o["id"] for o in kept] == [str(G), str(VIP)]
    channels.apply("CHANNEL_DELETE", channel_event(SECRET))
    assert SECRET not in channels.channels
    channels.apply("GUILD_DELETE", {"id": str(G)})
    assert channels.channels == {}


def test_members_outside_the_view_get_nothing() -> None:
    view, channels = make_view(), book()
    before = Before.in_view(view, [12345, ALICE], NOW)
    assert before.seen[0] is None
    view.apply("GUILD_MEMBER_UPDATE", member_event(ALICE, [VIP]))
    view.apply("GUILD_MEMBER_REMOVE", {"guild_id": str(G), "user": {"id": str(ALICE)}})
    assert list(channels.derived(view, before, [12345, ALICE], NOW, STREAM)) == []
