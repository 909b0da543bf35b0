"""GuildView: who may see which channel, from plain data, kept current by event payloads.

Payloads are built the way the chat services publish them: the wire Structs of
``miaou.chat.models`` through ``msgspec.to_builtins`` (channels.py, threads.py, roles.py,
members.py, guilds.py), or the message Structs themselves (messages.py, reactions.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miaou.accounts.models import User
from miaou.chat.message_models import Message, MessageDeleted
from miaou.chat.models import Channel, ChannelType, Guild, Member, Role
from miaou.chat.models import Overwrite as WireOverwrite
from miaou.chat.permissions import (
    ALL,
    DEFAULT_EVERYONE,
    MemberInfo,
    Overwrite,
    Permission,
    RoleInfo,
    compute_permissions,
)
from miaou.gateway.gating import NOBODY, Gate, Scope, Timing, gate
from miaou.gateway.guild_view import ChannelInfo, GuildView, MemberRecord

P = Permission
G = 1000  # the guild, and its @everyone role
MOD, VIP, ADMIN = 1, 2, 3
OWNER, ALICE, BOB, CAROL, ADMINU = 500, 501, 502, 503, 504
GENERAL, SECRET, CATEGORY = 10, 11, 12
THREAD, PRIVATE, SECRET_THREAD = 20, 21, 22
NOW = 1_700_000_000_000
TEXT, PUBLIC_T, PRIVATE_T = (
    ChannelType.GUILD_TEXT,
    ChannelType.PUBLIC_THREAD,
    ChannelType.PRIVATE_THREAD,
)
THREAD_TYPES = {int(ChannelType.PUBLIC_THREAD), int(ChannelType.PRIVATE_THREAD),
                int(ChannelType.ANNOUNCEMENT_THREAD)}  # fmt: skip


# ----------------------------------------------------------------------------- payloads
def _user(uid: int) -> User:
    return User(id=str(uid), username=f"u{uid}", display_name=None, bio="", created_at=0)


def ow(target: int, kind: int, allow: int = 0, deny: int = 0) -> Overwrite:
    return Overwrite(id=target, type=kind, allow=int(allow), deny=int(deny))  # type: ignore[arg-type]


def channel_event(
    cid: int, kind: int = TEXT, overwrites: list[Overwrite] | None = None, parent: int | None = None
) -> dict[str, Any]:
    """channels.py ChannelService._event: channel_view(row, overwrites) to builtins."""
    wire = None
    if overwrites is not None:
        wire = [WireOverwrite(id=str(o.id), type=o.type, allow=str(o.allow), deny=str(o.deny))
                for o in overwrites]  # fmt: skip
    channel = Channel(
        id=str(cid),
        type=int(kind),
        guild_id=str(G),
        name=f"c{cid}",
        parent_id=str(parent) if parent else None,
        permission_overwrites=wire,
    )
    return msgspec.to_builtins(channel)  # type: ignore[no-any-return]


def thread_event(tid: int, parent: int, kind: int = PUBLIC_T, owner: int = ALICE) -> dict[str, Any]:
    """threads.py ThreadService._event: channel_view(row) without overwrites."""
    thread = Channel(
        id=str(tid),
        type=int(kind),
        guild_id=str(G),
        name=f"t{tid}",
        parent_id=str(parent),
        owner_id=str(owner),
        message_count=0,
        thread_metadata={
            "archived": False,
            "locked": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": NOW,
        },
    )
    return msgspec.to_builtins(thread)  # type: ignore[no-any-return]


def thread_members_event(tid: int, added: list[int] = [], removed: list[int] = []) -> Any:  # noqa: B006
    return {"id": str(tid), "guild_id": str(G), "added_member_ids": [str(a) for a in added],
            "removed_member_ids": [str(r) for r in removed]}  # fmt: skip


def role_event(rid: int, permissions: int, position: int = 1) -> dict[str, Any]:
    role = Role(id=str(rid), name=f"r{rid}", color=0, position=position, hoist=False,
                mentionable=False, permissions=str(int(permissions)))  # fmt: skip
    return {"guild_id": str(G), "role": msgspec.to_builtins(role)}


def role_delete_event(rid: int) -> dict[str, Any]:
    return {"guild_id": str(G), "role_id": str(rid)}


def member_event(uid: int, roles: list[int] = [], until: int | None = None) -> dict[str, Any]:  # noqa: B006
    member = Member(user=_user(uid), nick=None, roles=sorted(str(r) for r in roles), joined_at=0,
                    temporary=False, communication_disabled_until=until)  # fmt: skip
    return {"guild_id": str(G), **msgspec.to_builtins(member)}


def leave_event(uid: int) -> dict[str, Any]:
    """GUILD_MEMBER_REMOVE, GUILD_BAN_ADD (members.py)."""
    return {"guild_id": str(G), "user": {"id": str(uid)}}


def guild_event(owner: int) -> dict[str, Any]:
    guild = Guild(id=str(G), name="g", description="", icon=None, owner_id=str(owner),
                  system_channel_id=None, roles=[], member_count=5, created_at=0)  # fmt: skip
    return msgspec.to_builtins(guild)  # type: ignore[no-any-return]


def message(cid: int) -> Message:
    return Message(id="77", channel_id=str(cid), guild_id=str(G), author=_user(ALICE),
                   content="hi", timestamp=NOW, edited_timestamp=None, mentions=[],
                   mention_roles=[], mention_everyone=False, pinned=False, type=0,
                   attachments=[])  # fmt: skip


# ----------------------------------------------------------------------------- the guild
def make_view() -> GuildView:
    """@everyone talks; VIP sees #secret; MOD manages threads; ADMIN is admin.

    general (10): no overwrites; its public thread (20) and a private thread (21) of ALICE;
    secret (11): @everyone denied, VIP allowed; its public thread (22); a category (12).
    """
    roles = [
        RoleInfo(id=G, position=0, permissions=int(DEFAULT_EVERYONE)),
        RoleInfo(id=MOD, position=1, permissions=int(P.MANAGE_THREADS)),
        RoleInfo(id=VIP, position=2, permissions=0),
        RoleInfo(id=ADMIN, position=3, permissions=int(P.ADMINISTRATOR)),
    ]
    members = [
        MemberRecord(OWNER), MemberRecord(ALICE), MemberRecord(BOB, (VIP,)),
        MemberRecord(CAROL, (MOD,)), MemberRecord(ADMINU, (ADMIN,)),
    ]  # fmt: skip
    channels = [
        ChannelInfo(GENERAL, TEXT, CATEGORY),
        ChannelInfo(SECRET, TEXT, None, (ow(G, 0, deny=P.VIEW_CHANNEL),
                                         ow(VIP, 0, allow=P.VIEW_CHANNEL))),
        ChannelInfo(CATEGORY, ChannelType.GUILD_CATEGORY),
        ChannelInfo(THREAD, PUBLIC_T, GENERAL),
        ChannelInfo(PRIVATE, PRIVATE_T, GENERAL, thread_members=frozenset({ALICE})),
        ChannelInfo(SECRET_THREAD, PUBLIC_T, SECRET),
    ]  # fmt: skip
    return GuildView(G, OWNER, roles, members, channels)


def seen(view: GuildView, uid: int) -> set[int]:
    every = [GENERAL, SECRET, CATEGORY, THREAD, PRIVATE, SECRET_THREAD, 30, 31, 99]
    found = {c for c in every if view.can_view(uid, c, NOW)}
    assert sorted(found) == view.visible_channels(uid, NOW)
    return found


EVERYTHING = {GENERAL, SECRET, CATEGORY, THREAD, PRIVATE, SECRET_THREAD}
PLAIN = {GENERAL, CATEGORY, THREAD}


def test_the_guild_as_loaded() -> None:
    view = make_view()
    assert seen(view, OWNER) == EVERYTHING
    assert seen(view, ADMINU) == EVERYTHING
    assert seen(view, ALICE) == PLAIN | {PRIVATE}  # a member of the private thread
    assert seen(view, BOB) == PLAIN | {SECRET, SECRET_THREAD}  # the thread inherits #secret
    assert seen(view, CAROL) == PLAIN | {PRIVATE}  # MANAGE_THREADS
    assert view.member_count == 5 and view.is_member(BOB) and not view.is_member(999)
    assert not view.can_view(999, GENERAL, NOW) and seen(view, 999) == set()


def test_a_role_permission_change_hides_and_shows() -> None:
    view = make_view()
    assert seen(view, ALICE) == PLAIN | {PRIVATE}  # cached now
    view.apply("GUILD_ROLE_UPDATE", role_event(G, DEFAULT_EVERYONE & ~P.VIEW_CHANNEL, 0))
    assert seen(view, ALICE) == set()
    assert seen(view, BOB) == {SECRET, SECRET_THREAD}  # VIP's allow on #secret grants it
    view.apply("GUILD_ROLE_UPDATE", role_event(VIP, P.VIEW_CHANNEL, 2))
    assert seen(view, BOB) == PLAIN | {SECRET, SECRET_THREAD}
    assert seen(view, ALICE) == set()
    assert seen(view, OWNER) == EVERYTHING
    view.apply("GUILD_ROLE_UPDATE", role_event(G, DEFAULT_EVERYONE, 0))
    assert seen(view, ALICE) == PLAIN | {PRIVATE}


def test_an_overwrite_change_hides_a_channel_and_its_threads() -> None:
    view = make_view()
    assert seen(view, ALICE) == PLAIN | {PRIVATE}
    deny_alice = [ow(ALICE, 1, deny=P.VIEW_CHANNEL)]
    view.apply("CHANNEL_UPDATE", channel_event(GENERAL, overwrites=deny_alice))
    assert seen(view, ALICE) == {CATEGORY}  # the threads go with their parent
    assert seen(view, BOB) == PLAIN | {SECRET, SECRET_THREAD}  # nobody else is touched
    view.apply("CHANNEL_UPDATE", channel_event(GENERAL, overwrites=[]))
    assert seen(view, ALICE) == PLAIN | {PRIVATE}
    # @everyone opened on #secret: everyone sees it and its thread.
    view.apply("CHANNEL_UPDATE", channel_event(SECRET, overwrites=[]))
    assert seen(view, ALICE) == PLAIN | {PRIVATE, SECRET, SECRET_THREAD}


def test_a_reorder_update_without_overwrites_keeps_them() -> None:
    view = make_view()
    assert SECRET not in seen(view, ALICE)
    view.apply("CHANNEL_UPDATE", channel_event(SECRET, overwrites=None))  # channels.py reorder
    assert SECRET not in seen(view, ALICE)
    assert SECRET in seen(view, BOB)


def test_member_roles_added_and_removed() -> None:
    view = make_view()
    assert SECRET not in seen(view, ALICE)
    view.apply("GUILD_MEMBER_UPDATE", member_event(ALICE, [VIP]))
    assert seen(view, ALICE) == PLAIN | {PRIVATE, SECRET, SECRET_THREAD}
    view.apply("GUILD_MEMBER_UPDATE", member_event(ALICE, [ADMIN]))
    assert seen(view, ALICE) == EVERYTHING
    view.apply("GUILD_MEMBER_UPDATE", member_event(ALICE, []))
    assert seen(view, ALICE) == PLAIN | {PRIVATE}
    assert seen(view, BOB) == PLAIN | {SECRET, SECRET_THREAD}  # shared the VIP viewer


def test_an_update_never_makes_a_member() -> None:
    view = make_view()
    view.apply("GUILD_MEMBER_UPDATE", member_event(999, [ADMIN]))
    assert not view.is_member(999)


@pytest.mark.parametrize("event", ["GUILD_MEMBER_REMOVE", "GUILD_BAN_ADD"])
def test_removed_or_banned_members_see_nothing(event: str) -> None:
    view = make_view()
    assert seen(view, BOB)
    view.apply(event, leave_event(BOB))
    assert not view.is_member(BOB) and view.member_count == 4
    assert seen(view, BOB) == set()
    view.apply("GUILD_MEMBER_ADD", member_event(BOB))
    assert seen(view, BOB) == PLAIN


def test_owner_bypasses_everything_and_ownership_moves() -> None:
    view = make_view()
    view.apply("CHANNEL_UPDATE", channel_event(GENERAL, overwrites=[
        ow(G, 0, deny=P.VIEW_CHANNEL), ow(OWNER, 1, deny=P.VIEW_CHANNEL)]))  # fmt: skip
    assert seen(view, OWNER) == EVERYTHING
    assert seen(view, ALICE) == {CATEGORY}
    view.apply("GUILD_UPDATE", guild_event(ALICE))
    assert seen(view, ALICE) == EVERYTHING
    assert seen(view, OWNER) == {CATEGORY}  # its own overwrite now applies


def test_admin_ignores_overwrites_even_its_own() -> None:
    view = make_view()
    view.apply("CHANNEL_UPDATE", channel_event(SECRET, overwrites=[
        ow(ADMINU, 1, deny=P.VIEW_CHANNEL), ow(ADMIN, 0, deny=int(ALL))]))  # fmt: skip
    assert SECRET in seen(view, ADMINU)


def test_private_threads_need_membership_or_manage_threads() -> None:
    view = make_view()
    assert PRIVATE not in seen(view, BOB)
    view.apply("THREAD_MEMBERS_UPDATE", thread_members_event(PRIVATE, added=[BOB]))
    assert PRIVATE in seen(view, BOB)
    view.apply("THREAD_MEMBERS_UPDATE", thread_members_event(PRIVATE, removed=[ALICE]))
    assert PRIVATE not in seen(view, ALICE)
    assert PRIVATE in seen(view, CAROL)  # MANAGE_THREADS
    # A new private thread: its creator joined it in the creating transaction.
    view.apply("THREAD_CREATE", thread_event(31, GENERAL, PRIVATE_T, owner=BOB))
    assert 31 in seen(view, BOB) and 31 not in seen(view, ALICE) and 31 in seen(view, CAROL)
    # Membership in a private thread of a channel one cannot see grants nothing.
    view.apply("THREAD_CREATE", thread_event(30, SECRET, PRIVATE_T, owner=BOB))
    view.apply("THREAD_MEMBERS_UPDATE", thread_members_event(30, added=[ALICE]))
    assert 30 in seen(view, BOB) and 30 not in seen(view, ALICE)


def test_a_timed_out_member_keeps_view_but_not_manage_threads() -> None:
    view = make_view()
    assert PRIVATE in seen(view, CAROL)
    view.apply("GUILD_MEMBER_UPDATE", member_event(CAROL, [MOD], until=NOW + 60_000))
    assert seen(view, CAROL) == PLAIN
    assert view.can_view(CAROL, PRIVATE, NOW + 60_000)  # the timeout is over
    view.apply("GUILD_MEMBER_UPDATE", member_event(CAROL, [MOD], until=None))
    assert seen(view, CAROL) == PLAIN | {PRIVATE}


def test_new_threads_and_channels_are_seen_by_those_who_see_their_parent() -> None:
    view = make_view()
    assert seen(view, ALICE) and seen(view, BOB)  # cached
    view.apply("THREAD_CREATE", thread_event(30, SECRET))
    view.apply("CHANNEL_CREATE", channel_event(31, overwrites=[ow(VIP, 0, deny=P.VIEW_CHANNEL)]))
    assert 30 in seen(view, BOB) and 30 not in seen(view, ALICE)
    assert 31 in seen(view, ALICE) and 31 not in seen(view, BOB)
    view.apply("THREAD_DELETE", {"id": "30", "guild_id": str(G), "parent_id": str(SECRET),
                                 "type": int(PUBLIC_T)})  # fmt: skip
    assert 30 not in seen(view, BOB)


def test_a_deleted_channel_takes_its_threads() -> None:
    view = make_view()
    assert seen(view, OWNER) == EVERYTHING
    view.apply("CHANNEL_DELETE", channel_event(GENERAL, overwrites=[]))
    assert seen(view, OWNER) == {SECRET, CATEGORY, SECRET_THREAD}
    assert seen(view, ALICE) == {CATEGORY}


def test_a_deleted_role_stops_granting_and_matching() -> None:
    view = make_view()
    view.apply("CHANNEL_UPDATE", channel_event(GENERAL, overwrites=[
        ow(VIP, 0, deny=P.VIEW_CHANNEL)]))  # fmt: skip
    assert seen(view, BOB) == {CATEGORY, SECRET, SECRET_THREAD}
    view.apply("GUILD_ROLE_DELETE", role_delete_event(VIP))
    assert seen(view, BOB) == PLAIN  # neither its allow on #secret nor its deny on #general


def test_a_guild_delete_empties_the_view() -> None:
    view = make_view()
    view.apply("GUILD_DELETE", {"id": str(G)})
    assert view.deleted and view.member_count == 0 and not view.can_view(OWNER, GENERAL, NOW)


def test_struct_payloads_are_read_like_dicts() -> None:
    view = make_view()
    channel = Channel(id=str(GENERAL), type=0, guild_id=str(G), permission_overwrites=[
        WireOverwrite(id=str(G), type=0, allow="0", deny=str(int(P.VIEW_CHANNEL)))])  # fmt: skip
    view.apply("CHANNEL_UPDATE", channel)
    assert GENERAL not in seen(view, ALICE)


def test_members_with_the_same_roles_share_one_viewer() -> None:
    roles = [RoleInfo(id=G, position=0, permissions=int(DEFAULT_EVERYONE))]
    members = [MemberRecord(uid) for uid in range(10_001, 20_001)]
    channels = [ChannelInfo(c, TEXT) for c in range(1, 200)]
    view = GuildView(G, 1, roles, members, channels)
    assert len({id(view._members[m.user_id]) for m in members}) == 1
    users = [m.user_id for m in members]
    assert view.deliver("MESSAGE_CREATE", message(5), users, NOW) == users  # fills the cache
    started = time.perf_counter()
    assert all(view.can_view(u, 5, NOW) for u in users)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.05, f"{elapsed * 1e3:.2f} ms for 10,000 checks"


# ----------------------------------------------------------------------------- gating
@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        ("MESSAGE_CREATE", message(GENERAL), Gate(Scope.CHANNEL, GENERAL)),
        ("MESSAGE_DELETE", MessageDeleted(id="1", channel_id="11", guild_id=str(G)),
         Gate(Scope.CHANNEL, SECRET)),
        ("MESSAGE_REACTION_ADD", {"channel_id": "10"}, Gate(Scope.CHANNEL, GENERAL)),
        ("INVITE_DELETE", {"code": "x", "guild_id": "1000", "channel_id": "11"},
         Gate(Scope.CHANNEL, SECRET)),
        ("CHANNEL_CREATE", channel_event(31), Gate(Scope.CHANNEL, 31, Timing.AFTER)),
        ("CHANNEL_UPDATE", channel_event(GENERAL), Gate(Scope.CHANNEL, GENERAL, Timing.EITHER)),
        ("CHANNEL_DELETE", channel_event(GENERAL), Gate(Scope.CHANNEL, GENERAL, Timing.BEFORE)),
        ("THREAD_CREATE", thread_event(30, GENERAL), Gate(Scope.CHANNEL, 30, Timing.AFTER)),
        ("THREAD_MEMBERS_UPDATE", thread_members_event(PRIVATE, [BOB]),
         Gate(Scope.CHANNEL, PRIVATE, Timing.EITHER)),
        ("GUILD_ROLE_UPDATE", role_event(VIP, 0), Gate(Scope.MEMBERS)),
        ("GUILD_MEMBER_ADD", member_event(BOB), Gate(Scope.MEMBERS, timing=Timing.AFTER)),
        ("GUILD_MEMBER_REMOVE", leave_event(BOB), Gate(Scope.MEMBERS, user_id=BOB)),
        ("GUILD_BAN_ADD", leave_event(BOB), Gate(Scope.MEMBERS, user_id=BOB)),
        ("SOMETHING_NEW", {"channel_id": "10"}, Gate(Scope.CHANNEL, GENERAL)),
        ("SOMETHING_NEW", {"id": "10"}, NOBODY),
        ("MESSAGE_CREATE", {"channel_id": "ten"}, NOBODY),
        ("CHANNEL_UPDATE", {"channel_id": "10"}, NOBODY),
    ],
)  # fmt: skip
def test_gate(event: str, payload: Any, expected: Gate) -> None:
    assert gate(event, payload) == expected


EVERYONE_USERS = [OWNER, ALICE, BOB, CAROL, ADMINU, 999]


def test_deliver_a_message_to_those_who_see_its_channel() -> None:
    view = make_view()
    assert view.deliver("MESSAGE_CREATE", message(SECRET), EVERYONE_USERS, NOW) == [
        OWNER, BOB, ADMINU]  # fmt: skip
    assert view.deliver("MESSAGE_CREATE", message(PRIVATE), EVERYONE_USERS, NOW) == [
        OWNER, ALICE, CAROL, ADMINU]  # fmt: skip
    assert (
        view.deliver("GUILD_ROLE_CREATE", role_event(7, 0), EVERYONE_USERS, NOW)
        == (EVERYONE_USERS[:-1])
    )


def test_deliver_a_kick_to_the_kicked_and_nothing_after() -> None:
    view = make_view()
    users = EVERYONE_USERS
    assert BOB in view.deliver("GUILD_MEMBER_REMOVE", leave_event(BOB), users, NOW)
    assert BOB in view.deliver("GUILD_BAN_ADD", leave_event(BOB), users, NOW)
    assert BOB not in view.deliver("MESSAGE_CREATE", message(GENERAL), users, NOW)
    assert BOB not in view.deliver("GUILD_ROLE_CREATE", role_event(7, 0), users, NOW)
    assert BOB in view.deliver("GUILD_MEMBER_ADD", member_event(BOB), users, NOW)


def test_deliver_channel_changes_before_and_after() -> None:
    view = make_view()
    users = EVERYONE_USERS
    created = view.deliver("CHANNEL_CREATE", channel_event(31, overwrites=[]), users, NOW)
    assert created == [OWNER, ALICE, BOB, CAROL, ADMINU]
    # ALICE loses #31 with this update: she learns so from it, and gets nothing after it.
    hide = channel_event(31, overwrites=[ow(ALICE, 1, deny=P.VIEW_CHANNEL)])
    assert ALICE in view.deliver("CHANNEL_UPDATE", hide, users, NOW)
    assert ALICE not in view.deliver("MESSAGE_CREATE", message(31), users, NOW)
    show = channel_event(31, overwrites=[])
    assert ALICE in view.deliver("CHANNEL_UPDATE", show, users, NOW)
    assert view.deliver("CHANNEL_DELETE", show, users, NOW) == created
    assert view.deliver("MESSAGE_CREATE", message(31), users, NOW) == []
    # The one added to a private thread gets the update that adds them.
    added = thread_members_event(PRIVATE, added=[BOB])
    assert BOB in view.deliver("THREAD_MEMBERS_UPDATE", added, users, NOW)
    removed = thread_members_event(PRIVATE, removed=[BOB])
    assert BOB in view.deliver("THREAD_MEMBERS_UPDATE", removed, users, NOW)
    assert BOB not in view.deliver("MESSAGE_CREATE", message(PRIVATE), users, NOW)


# ----------------------------------------------------------------------------- properties
USERS = [OWNER, ALICE, BOB, CAROL]
ROLE_IDS = [1, 2, 3, 4]
PARENTS = [10, 11, 12]
THREADS = [20, 21, 22, 23]

bits = st.integers(0, int(ALL)).map(lambda v: v & int(ALL))
# Mostly without ADMINISTRATOR, so that overwrites matter; sometimes with it.
role_bits = st.one_of(bits.map(lambda v: v & ~int(P.ADMINISTRATOR)), bits)
# A few flags, VIEW_CHANNEL and MANAGE_THREADS often among them.
focus = st.sets(
    st.sampled_from([P.VIEW_CHANNEL, P.MANAGE_THREADS, P.SEND_MESSAGES, P.ADMINISTRATOR])
)
small_bits = st.one_of(focus.map(lambda s: sum(int(p) for p in s)), bits)
targets = [(G, 0), *((r, 0) for r in ROLE_IDS), *((u, 1) for u in USERS)]
overwrites = st.lists(
    st.builds(lambda t, a, d: ow(t[0], t[1], a, d), st.sampled_from(targets), small_bits,
              small_bits),
    max_size=5, unique_by=lambda o: o.id,
)  # fmt: skip
until = st.sampled_from([None, NOW - 1, NOW + 1])


@dataclass
class Model:
    """The guild as plain data: what the database would hold."""

    owner: int
    roles: dict[int, int]  # id -> permissions, @everyone included
    members: dict[int, tuple[frozenset[int], int | None]]  # id -> (roles, timeout)
    channels: dict[int, list[Overwrite]]
    threads: dict[int, tuple[int, bool, set[int]]] = field(default_factory=dict)

    def view(self) -> GuildView:
        roles = [RoleInfo(id=r, position=0, permissions=p) for r, p in self.roles.items()]
        members = [MemberRecord(u, tuple(r), t) for u, (r, t) in self.members.items()]
        chans = [ChannelInfo(c, TEXT, None, tuple(o)) for c, o in self.channels.items()]
        chans += [ChannelInfo(t, PRIVATE_T if private else PUBLIC_T, parent,
                              thread_members=frozenset(joined))
                  for t, (parent, private, joined) in self.threads.items()]  # fmt: skip
        return GuildView(G, self.owner, roles, members, chans)

    def expected(self, uid: int, cid: int) -> bool:
        if uid not in self.members:
            return False
        role_ids, timeout = self.members[uid]
        infos = {r: RoleInfo(id=r, position=0, permissions=p) for r, p in self.roles.items()}
        member = MemberInfo(uid, frozenset(r for r in role_ids if r in infos), uid == self.owner)
        timed_out = timeout is not None and timeout > NOW
        if cid in self.channels:
            perms = compute_permissions(member, infos[G], infos, self.channels[cid],
                                        timed_out=timed_out)  # fmt: skip
            return P.VIEW_CHANNEL in perms
        if cid in self.threads:
            parent, private, joined = self.threads[cid]
            perms = compute_permissions(member, infos[G], infos, self.channels[parent],
                                        timed_out=timed_out, thread=True)  # fmt: skip
            if private and P.MANAGE_THREADS not in perms and uid not in joined:
                return False
            return P.VIEW_CHANNEL in perms
        return False

    def check(self, view: GuildView) -> None:
        for uid in [*USERS, 999]:
            for cid in [*PARENTS, *THREADS, 29, 99]:
                assert view.can_view(uid, cid, NOW) == self.expected(uid, cid), (uid, cid)


@st.composite
def models(draw: st.DrawFn) -> Model:
    roles = {G: draw(role_bits), **{r: draw(role_bits) for r in ROLE_IDS}}
    members = {u: (draw(st.frozensets(st.sampled_from(ROLE_IDS))), draw(until)) for u in USERS}
    channels = {c: draw(overwrites) for c in PARENTS}
    threads = {t: (draw(st.sampled_from(PARENTS)), draw(st.booleans()),
                   draw(st.sets(st.sampled_from(USERS)))) for t in THREADS}  # fmt: skip
    return Model(draw(st.sampled_from(USERS)), roles, members, channels, threads)


@settings(max_examples=300, deadline=None)
@given(models())
def test_can_view_is_the_pure_rules(model: Model) -> None:
    model.check(model.view())


def _event(draw: st.DrawFn, model: Model) -> tuple[str, Any]:
    """One random change, applied to the model, and the event the services would publish."""
    kind = draw(st.sampled_from(["role", "role_delete", "overwrites", "member", "leave", "join",
                                 "owner", "thread_members", "thread", "delete"]))  # fmt: skip
    if kind == "role":
        rid = draw(st.sampled_from([r for r in [G, *ROLE_IDS] if r in model.roles]))
        model.roles[rid] = draw(role_bits)
        return "GUILD_ROLE_UPDATE", role_event(rid, model.roles[rid])
    if kind == "role_delete":
        rid = draw(st.sampled_from(ROLE_IDS))
        model.roles.pop(rid, None)
        return "GUILD_ROLE_DELETE", role_delete_event(rid)
    if kind == "overwrites" and model.channels:
        cid = draw(st.sampled_from(sorted(model.channels)))
        model.channels[cid] = draw(overwrites)
        return "CHANNEL_UPDATE", channel_event(cid, overwrites=model.channels[cid])
    if kind in ("member", "join"):
        uid = draw(st.sampled_from(USERS))
        if kind == "member" and uid not in model.members:
            return "GUILD_MEMBER_UPDATE", member_event(uid)  # ignored: not a member
        role_ids = draw(st.frozensets(st.sampled_from([r for r in ROLE_IDS if r in model.roles])))
        model.members[uid] = (role_ids, draw(until))
        kind_ = "GUILD_MEMBER_UPDATE" if kind == "member" else "GUILD_MEMBER_ADD"
        return kind_, member_event(uid, sorted(role_ids), model.members[uid][1])
    if kind == "leave":
        uid = draw(st.sampled_from([u for u in USERS if u != model.owner]))
        model.members.pop(uid, None)
        return draw(st.sampled_from(["GUILD_MEMBER_REMOVE", "GUILD_BAN_ADD"])), leave_event(uid)
    if kind == "owner" and model.owner in model.members:
        model.owner = draw(st.sampled_from(sorted(model.members)))
        return "GUILD_UPDATE", guild_event(model.owner)
    if kind == "thread_members" and model.threads:
        tid = draw(st.sampled_from(sorted(model.threads)))
        added, removed = (
            draw(st.sets(st.sampled_from(USERS))),
            draw(st.sets(st.sampled_from(USERS))),
        )
        model.threads[tid][2].update(added)
        model.threads[tid][2].difference_update(removed)
        return "THREAD_MEMBERS_UPDATE", thread_members_event(tid, sorted(added), sorted(removed))
    free = [t for t in [*THREADS, 29] if t not in model.threads]
    if kind == "thread" and model.channels and free:
        tid = draw(st.sampled_from(free))
        parent, private = draw(st.sampled_from(sorted(model.channels))), draw(st.booleans())
        creator = draw(st.sampled_from(USERS))
        model.threads[tid] = (parent, private, {creator} if private else set())
        return "THREAD_CREATE", thread_event(tid, parent, PRIVATE_T if private else PUBLIC_T,
                                             owner=creator)  # fmt: skip
    if kind == "delete" and model.channels:
        cid = draw(st.sampled_from(sorted(model.channels)))
        del model.channels[cid]
        for tid in [t for t, (parent, _, _) in model.threads.items() if parent == cid]:
            del model.threads[tid]
        return "CHANNEL_DELETE", channel_event(cid, overwrites=[])
    return "MESSAGE_CREATE", message(10)  # changes nothing


@settings(max_examples=200, deadline=None)
@given(models(), st.data())
def test_events_keep_the_view_equal_to_the_pure_rules(model: Model, data: st.DataObject) -> None:
    view = model.view()
    model.check(view)  # every cache filled before the first change
    for _ in range(data.draw(st.integers(1, 12))):
        event, payload = _event(data.draw, model)
        view.apply(event, payload)
        model.check(view)


def test_the_questions_channel_sight_asks_before_an_event_applies() -> None:
    crew = ow(VIP, 0, allow=P.VIEW_CHANNEL)
    view = GuildView(
        G, OWNER,
        [RoleInfo(id=G, position=0, permissions=0),
         RoleInfo(id=VIP, position=1, permissions=int(P.SEND_MESSAGES))],
        [MemberRecord(OWNER), MemberRecord(ALICE, (VIP,))],
        [ChannelInfo(SECRET, int(TEXT), None, (crew,)),
         ChannelInfo(THREAD, int(PUBLIC_T), SECRET, ())],
    )  # fmt: skip
    assert (view.member_role_ids(ALICE), view.member_role_ids(OWNER)) == ((VIP,), ())
    assert view.member_role_ids(BOB) is None
    assert view.role_permissions(VIP) == int(P.SEND_MESSAGES)
    assert view.role_permissions(MOD) is None
    assert view.channel_overwrites(SECRET) == (crew,)
    assert view.channel_overwrites(THREAD) == ()  # a thread's are its parent's
    assert view.channel_overwrites(GENERAL) is None
