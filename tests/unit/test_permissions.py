"""Pure permission rules: Discord's bits, overwrite resolution, implicit rules, hierarchy."""

from __future__ import annotations

import math
from functools import reduce
from operator import or_
from typing import Literal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from miaou.chat.permissions import (
    ALL,
    DEFAULT_EVERYONE,
    MISSING_PERMISSIONS,
    NEEDS_SEND,
    NONE,
    OVERWRITE_MEMBER,
    OVERWRITE_ROLE,
    PERMISSIONS_NOT_HELD,
    ROLE_HIERARCHY,
    TARGET_HIERARCHY,
    TARGET_IS_ADMIN,
    TARGET_IS_OWNER,
    TARGET_IS_SELF,
    TIMEOUT_KEEPS,
    MemberInfo,
    ModerationAction,
    Overwrite,
    Permission,
    RoleInfo,
    apply_timeout,
    base_permissions,
    can_grant,
    can_manage_role,
    can_moderate,
    channel_permissions,
    compute_permissions,
    format_permissions,
    highest_position,
    parse_permissions,
    thread_permissions,
)
from miaou.errors import Forbidden, InvalidInput

P = Permission
GUILD = 1000  # also the @everyone role's id
ROLE_IDS = list(range(1, 9))
ME, OTHER = 500, 501
ADMIN = int(P.ADMINISTRATOR)
FLAGS = [p for p in Permission if p is not P.ADMINISTRATOR]


def without_admin(p: int) -> Permission:
    return Permission(p & int(ALL) & ~ADMIN)


# ----------------------------------------------------------------------------- strategies

# Small flag sets hit specific bits; raw integers hit dense fields.
bits = st.one_of(
    st.sets(st.sampled_from(list(Permission))).map(lambda s: reduce(or_, s, NONE)),
    st.integers(0, int(ALL)).map(lambda v: Permission(v & int(ALL))),
)
plain_bits = bits.map(without_admin)
flag = st.sampled_from(FLAGS)
# Overwrites as stored data could be anything; the rules must never leak unknown bits.
raw_bits = st.one_of(plain_bits.map(int), st.integers(0, 2**64 - 1))


@st.composite
def guilds(draw: st.DrawFn) -> tuple[RoleInfo, dict[int, RoleInfo]]:
    """@everyone and eight roles, none of them ADMINISTRATOR."""
    everyone = RoleInfo(id=GUILD, position=0, permissions=int(draw(plain_bits)))
    roles = {
        rid: RoleInfo(id=rid, position=draw(st.integers(1, 10)), permissions=int(draw(plain_bits)))
        for rid in ROLE_IDS
    }
    return everyone, roles


def members(user_id: int = ME, *, min_roles: int = 0) -> st.SearchStrategy[MemberInfo]:
    return st.frozensets(st.sampled_from(ROLE_IDS), min_size=min_roles).map(
        lambda r: MemberInfo(user_id=user_id, role_ids=r)
    )


@st.composite
def overwrite(draw: st.DrawFn) -> Overwrite:
    # Real targets, plus a few mistyped ones (a user id as a role, @everyone as a member)
    # that must match nothing.
    targets: list[tuple[int, Literal[0, 1]]] = [(GUILD, 0), *((r, 0) for r in ROLE_IDS)]
    targets += [(ME, 1), (OTHER, 1), (GUILD, 1), (ME, 0), (3, 1)]
    target, kind = draw(st.sampled_from(targets))
    return Overwrite(id=target, type=kind, allow=draw(raw_bits), deny=draw(raw_bits))


overwrite_lists = st.lists(overwrite(), max_size=8)


def perms_in(
    member: MemberInfo,
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    overwrites: list[Overwrite],
    **kw: bool,
) -> Permission:
    everyone, roles = guild
    return compute_permissions(member, everyone, roles, overwrites, **kw)


def subset(a: int, b: int) -> bool:
    return a & ~b == 0


# ----------------------------------------------------------------------------- flags, wire form


@pytest.mark.parametrize(
    ("flag_", "value"),
    [
        (P.CREATE_INSTANT_INVITE, 0x1),
        (P.ADMINISTRATOR, 0x8),
        (P.VIEW_CHANNEL, 0x400),
        (P.SEND_MESSAGES, 0x800),
        (P.MENTION_EVERYONE, 0x20000),
        (P.MANAGE_ROLES, 0x10000000),
        (P.USE_APPLICATION_COMMANDS, 0x80000000),
        (P.SEND_MESSAGES_IN_THREADS, 0x4000000000),
        (P.MODERATE_MEMBERS, 0x10000000000),
        (P.SEND_VOICE_MESSAGES, 0x400000000000),
        (P.SEND_POLLS, 0x2000000000000),
        (P.BYPASS_SLOWMODE, 0x10000000000000),
    ],
)
def test_bits_are_discords(flag_: Permission, value: int) -> None:
    assert int(flag_) == value


def test_all_is_every_documented_bit_and_nothing_else() -> None:
    # Bits 0..52 except the two Discord leaves undocumented (47, 48).
    assert int(ALL) == (1 << 53) - 1 - (1 << 47) - (1 << 48)
    assert len(list(Permission)) == 51


def test_default_everyone_talks_but_does_not_manage() -> None:
    for p in (P.VIEW_CHANNEL, P.SEND_MESSAGES, P.READ_MESSAGE_HISTORY, P.ADD_REACTIONS):
        assert p in DEFAULT_EVERYONE
    assert P.SEND_MESSAGES_IN_THREADS in DEFAULT_EVERYONE
    forbidden = (
        P.MENTION_EVERYONE | P.ADMINISTRATOR | P.KICK_MEMBERS | P.BAN_MEMBERS | P.MANAGE_GUILD
        | P.MANAGE_ROLES | P.MANAGE_CHANNELS | P.MANAGE_MESSAGES | P.MODERATE_MEMBERS
    )  # fmt: skip
    assert DEFAULT_EVERYONE & forbidden == 0


@given(bits)
def test_wire_form_round_trips(p: Permission) -> None:
    text = format_permissions(p)
    assert text == str(int(p))
    assert parse_permissions(text) == p
    assert parse_permissions(int(p)) == p


@pytest.mark.parametrize(
    "bad",
    ["", "-1", "+8", " 8", "8 ", "8\n", "0x10", "1.0", "1e3", "²", "١٢", "9" * 21, -1, True, False],
)
def test_malformed_bitfields_are_refused(bad: str | int) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_permissions(bad)
    assert error.value.code == "invalid_permissions"
    assert error.value.errors["permissions"]


@given(st.integers(0, 63).filter(lambda b: not (1 << b) & int(ALL)), bits)
def test_unknown_bits_are_refused(bit: int, p: Permission) -> None:
    with pytest.raises(InvalidInput, match="unknown"):
        parse_permissions(str(int(p) | 1 << bit))


def test_errors_name_the_field_asked_for() -> None:
    with pytest.raises(InvalidInput) as error:
        parse_permissions("x", field="deny")
    assert list(error.value.errors) == ["deny"]


# ----------------------------------------------------------------------------- laws


@given(guilds(), members(), overwrite_lists, st.booleans(), st.booleans())
def test_owner_gets_everything_whatever_the_overwrites(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    member: MemberInfo,
    overwrites: list[Overwrite],
    timed_out: bool,
    thread: bool,
) -> None:
    owner = MemberInfo(user_id=ME, role_ids=member.role_ids, is_owner=True)
    assert perms_in(owner, guild, overwrites, timed_out=timed_out, thread=thread) == ALL
    overwrites.append(Overwrite(id=ME, type=OVERWRITE_MEMBER, deny=int(ALL)))
    assert perms_in(owner, guild, overwrites, timed_out=timed_out, thread=thread) == ALL


@given(guilds(), members(min_roles=1), overwrite_lists, st.booleans(), st.data())
def test_administrator_gets_everything_whatever_the_overwrites(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    member: MemberInfo,
    overwrites: list[Overwrite],
    timed_out: bool,
    data: st.DataObject,
) -> None:
    everyone, roles = guild
    rid = data.draw(st.sampled_from(sorted(member.role_ids)))
    roles[rid] = RoleInfo(id=rid, position=roles[rid].position, permissions=ADMIN)
    overwrites.append(Overwrite(id=ME, type=OVERWRITE_MEMBER, deny=int(ALL)))
    assert base_permissions(member, everyone, roles) == ALL
    assert perms_in(member, guild, overwrites, timed_out=timed_out) == ALL


@given(guilds(), members(min_roles=1), overwrite_lists, flag)
def test_member_deny_beats_every_role_allow(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    member: MemberInfo,
    overwrites: list[Overwrite],
    p: Permission,
) -> None:
    overwrites = [o for o in overwrites if not (o.type == OVERWRITE_MEMBER and o.id == ME)]
    overwrites += [Overwrite(id=GUILD, type=OVERWRITE_ROLE, allow=int(p))]
    overwrites += [Overwrite(id=r, type=OVERWRITE_ROLE, allow=int(p)) for r in member.role_ids]
    overwrites += [Overwrite(id=ME, type=OVERWRITE_MEMBER, deny=int(p))]
    assert p not in perms_in(member, guild, overwrites)


@given(guilds(), members(min_roles=1), overwrite_lists, flag)
def test_member_allow_beats_every_role_deny(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    member: MemberInfo,
    overwrites: list[Overwrite],
    p: Permission,
) -> None:
    overwrites = [o for o in overwrites if not (o.type == OVERWRITE_MEMBER and o.id == ME)]
    overwrites += [Overwrite(id=GUILD, type=OVERWRITE_ROLE, deny=int(p))]
    overwrites += [Overwrite(id=r, type=OVERWRITE_ROLE, deny=int(p)) for r in member.role_ids]
    # VIEW_CHANNEL and SEND_MESSAGES too, so the implicit rules cannot hide p.
    allow = p | P.VIEW_CHANNEL | P.SEND_MESSAGES
    overwrites += [Overwrite(id=ME, type=OVERWRITE_MEMBER, allow=int(allow))]
    assert p in perms_in(member, guild, overwrites)


@given(guilds(), members(min_roles=2), flag, st.data())
def test_one_role_allow_beats_other_roles_deny(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    member: MemberInfo,
    p: Permission,
    data: st.DataObject,
) -> None:
    assume(p not in (P.VIEW_CHANNEL, P.SEND_MESSAGES))
    allower = data.draw(st.sampled_from(sorted(member.role_ids)))
    visible = Overwrite(id=GUILD, type=OVERWRITE_ROLE, allow=int(P.VIEW_CHANNEL | P.SEND_MESSAGES))
    denies = [Overwrite(id=r, type=OVERWRITE_ROLE, deny=int(p)) for r in member.role_ids]
    assert p not in perms_in(member, guild, [visible, *denies])  # deny alone does deny
    allow = Overwrite(id=allower, type=OVERWRITE_ROLE, allow=int(p))
    assert p in perms_in(member, guild, [visible, *denies, allow])
    assert p in perms_in(member, guild, [allow, *denies, visible])


@given(guilds(), members())
def test_no_overwrites_leaves_base_after_implicit_rules(
    guild: tuple[RoleInfo, dict[int, RoleInfo]], member: MemberInfo
) -> None:
    everyone, roles = guild
    base = int(everyone.permissions)
    for r in member.role_ids:
        base |= roles[r].permissions
    if not base & P.VIEW_CHANNEL:
        expected = 0
    elif not base & P.SEND_MESSAGES:
        expected = base & ~int(NEEDS_SEND)
    else:
        expected = base
    assert int(perms_in(member, guild, [])) == expected
    assert int(channel_permissions(Permission(base), member, GUILD, [])) == expected


@given(guilds(), members(), overwrite_lists, st.booleans(), st.booleans())
def test_result_is_a_known_subset_and_empty_without_view(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    member: MemberInfo,
    overwrites: list[Overwrite],
    timed_out: bool,
    thread: bool,
) -> None:
    result = perms_in(member, guild, overwrites, timed_out=timed_out, thread=thread)
    assert isinstance(result, Permission)
    assert subset(result, ALL)
    assert P.ADMINISTRATOR not in result  # overwrites cannot hand out the bypass
    assert result == NONE or P.VIEW_CHANNEL in result
    # A base from elsewhere with junk bits still yields only known ones.
    junk = Permission((1 << 63) | (1 << 47) | int(P.VIEW_CHANNEL))
    assert subset(channel_permissions(junk, member, GUILD, overwrites, thread=thread), ALL)
    hidden = [o for o in overwrites if not (o.type == OVERWRITE_MEMBER and o.id == ME)]
    hidden.append(Overwrite(id=ME, type=OVERWRITE_MEMBER, deny=int(P.VIEW_CHANNEL)))
    assert perms_in(member, guild, hidden, timed_out=timed_out, thread=thread) == NONE


@given(
    guilds(),
    members(),
    overwrite_lists.filter(bool),
    plain_bits,
    st.booleans(),
    st.booleans(),
    st.data(),
)
def test_allows_only_add_and_denies_only_remove(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    member: MemberInfo,
    overwrites: list[Overwrite],
    extra: Permission,
    timed_out: bool,
    thread: bool,
    data: st.DataObject,
) -> None:
    i = data.draw(st.integers(0, len(overwrites) - 1))
    ow = overwrites[i]
    before = perms_in(member, guild, overwrites, timed_out=timed_out, thread=thread)
    more = Overwrite(id=ow.id, type=ow.type, allow=ow.allow | int(extra), deny=ow.deny)
    less = Overwrite(id=ow.id, type=ow.type, allow=ow.allow, deny=ow.deny | int(extra))
    kw = {"timed_out": timed_out, "thread": thread}
    assert subset(
        before, perms_in(member, guild, [*overwrites[:i], more, *overwrites[i + 1 :]], **kw)
    )
    assert subset(
        perms_in(member, guild, [*overwrites[:i], less, *overwrites[i + 1 :]], **kw), before
    )


@given(guilds(), members(), overwrite_lists, st.booleans(), st.data())
def test_order_of_overwrites_does_not_matter(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    member: MemberInfo,
    overwrites: list[Overwrite],
    thread: bool,
    data: st.DataObject,
) -> None:
    shuffled = data.draw(st.permutations(overwrites))
    expected = perms_in(member, guild, overwrites, thread=thread)
    assert perms_in(member, guild, shuffled, thread=thread) == expected
    assert perms_in(member, guild, overwrites[::-1], thread=thread) == expected


@given(guilds(), members(), overwrite_lists, raw_bits, raw_bits)
def test_overwrites_match_by_id_and_type_together(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    member: MemberInfo,
    overwrites: list[Overwrite],
    allow: int,
    deny: int,
) -> None:
    # A member-typed overwrite whose id is one of the member's roles (or the guild), and a
    # role-typed one whose id is the member's user id, concern somebody else.
    stray = [
        Overwrite(id=r, type=OVERWRITE_MEMBER, allow=allow, deny=deny) for r in member.role_ids
    ]
    stray += [Overwrite(id=GUILD, type=OVERWRITE_MEMBER, allow=allow, deny=deny)]
    stray += [Overwrite(id=ME, type=OVERWRITE_ROLE, allow=allow, deny=deny)]
    assert perms_in(member, guild, overwrites + stray) == perms_in(member, guild, overwrites)


@given(guilds(), members(), overwrite_lists)
def test_timeout_keeps_only_viewing_and_history(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    member: MemberInfo,
    overwrites: list[Overwrite],
) -> None:
    free = perms_in(member, guild, overwrites)
    timed = perms_in(member, guild, overwrites, timed_out=True)
    assert timed == free & TIMEOUT_KEEPS
    everyone, roles = guild
    assert apply_timeout(base_permissions(member, everyone, roles)) == (
        base_permissions(member, everyone, roles) & TIMEOUT_KEEPS
    )


@given(guilds(), members(), overwrite_lists, st.booleans())
def test_threads_differ_from_the_parent_only_in_what_sending_unlocks(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    member: MemberInfo,
    overwrites: list[Overwrite],
    timed_out: bool,
) -> None:
    in_channel = perms_in(member, guild, overwrites, timed_out=timed_out)
    in_thread = perms_in(member, guild, overwrites, timed_out=timed_out, thread=True)
    assert in_thread & ~NEEDS_SEND == in_channel & ~NEEDS_SEND
    if P.SEND_MESSAGES_IN_THREADS not in in_thread:
        assert in_thread & NEEDS_SEND == NONE
    # The helper on a finished parent result never grants more than the exact computation.
    assert subset(thread_permissions(in_channel), in_thread)


# ----------------------------------------------------------------------------- hierarchy laws

actions = st.sampled_from(["kick", "ban", "nickname", "timeout"])
REQUIRED = {
    "kick": P.KICK_MEMBERS,
    "ban": P.BAN_MEMBERS,
    "nickname": P.MANAGE_NICKNAMES,
    "timeout": P.MODERATE_MEMBERS,
}


@given(guilds(), members(), bits, st.integers(0, 12))
def test_roles_at_or_above_ones_highest_cannot_be_managed(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    actor: MemberInfo,
    actor_perms: Permission,
    position: int,
) -> None:
    everyone, roles = guild
    role = RoleInfo(id=99, position=position, permissions=0)
    verdict = can_manage_role(actor, actor_perms, role, roles, everyone)
    top = highest_position(actor, roles, everyone)
    may = bool(actor_perms & (P.MANAGE_ROLES | P.ADMINISTRATOR))
    assert bool(verdict) == (may and position < top)
    if not verdict:
        assert verdict.reason == (ROLE_HIERARCHY if may else MISSING_PERMISSIONS)
    owner = MemberInfo(user_id=ME, role_ids=actor.role_ids, is_owner=True)
    assert can_manage_role(owner, NONE, role, roles, everyone)


@given(guilds(), members(ME), members(OTHER), bits, actions)
def test_nobody_acts_on_the_owner(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    actor: MemberInfo,
    target: MemberInfo,
    actor_perms: Permission,
    action: ModerationAction,
) -> None:
    everyone, roles = guild
    owner = MemberInfo(user_id=OTHER, role_ids=target.role_ids, is_owner=True)
    verdict = can_moderate(action, actor, owner, ALL, roles, everyone)
    assert not verdict
    assert verdict.reason == TARGET_IS_OWNER
    assert not can_moderate(action, actor, owner, actor_perms, roles, everyone)


@given(guilds(), members(), bits, st.booleans(), st.sampled_from(["kick", "ban", "timeout"]))
def test_nobody_kicks_bans_or_times_out_themselves(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    member: MemberInfo,
    perms: Permission,
    is_owner: bool,
    action: ModerationAction,
) -> None:
    everyone, roles = guild
    me = MemberInfo(user_id=ME, role_ids=member.role_ids, is_owner=is_owner)
    assert not can_moderate(action, me, me, perms, roles, everyone)
    assert can_moderate(action, me, me, ALL, roles, everyone).reason == TARGET_IS_SELF


@given(guilds(), members(ME), members(OTHER), plain_bits, actions)
def test_moderation_needs_a_strictly_higher_role(
    guild: tuple[RoleInfo, dict[int, RoleInfo]],
    actor: MemberInfo,
    target: MemberInfo,
    extra: Permission,
    action: ModerationAction,
) -> None:
    everyone, roles = guild
    with_perm = extra | REQUIRED[action]
    above = highest_position(actor, roles, everyone) > highest_position(target, roles, everyone)
    verdict = can_moderate(action, actor, target, with_perm, roles, everyone)
    assert bool(verdict) == above
    if not above:
        assert verdict.reason == TARGET_HIERARCHY
    # Antisymmetry: of two members, at most one may act on the other.
    back = can_moderate(action, target, actor, with_perm, roles, everyone)
    assert not (verdict and back)
    # Without the permission (and not admin), rank does not help.
    lacking = Permission(int(extra) & ~int(REQUIRED[action]))
    denied = can_moderate(action, actor, target, lacking, roles, everyone)
    assert not denied
    assert denied.reason == MISSING_PERMISSIONS
    assert denied.missing == int(REQUIRED[action])


@given(guilds(), members(OTHER), actions)
def test_owner_may_act_on_anyone_else(
    guild: tuple[RoleInfo, dict[int, RoleInfo]], target: MemberInfo, action: ModerationAction
) -> None:
    everyone, roles = guild
    owner = MemberInfo(user_id=ME, is_owner=True)
    assert can_moderate(action, owner, target, NONE, roles, everyone)


@given(bits, bits)
def test_one_cannot_grant_what_one_does_not_hold(held: Permission, requested: Permission) -> None:
    verdict = can_grant(held, int(requested))
    if P.ADMINISTRATOR in held:
        assert verdict
    else:
        assert bool(verdict) == subset(requested, held)
        assert verdict.missing == int(requested) & ~int(held)
        assert verdict or verdict.reason == PERMISSIONS_NOT_HELD


# ----------------------------------------------------------------------------- scenarios

ROLE_STAFF, ROLE_MOD, ROLE_MUTED, ROLE_REGULAR = 1, 2, 3, 4
EVERYONE = RoleInfo(id=GUILD, position=0, permissions=int(DEFAULT_EVERYONE))
ROLES = {
    ROLE_STAFF: RoleInfo(id=ROLE_STAFF, position=3, permissions=int(P.MANAGE_MESSAGES)),
    ROLE_MOD: RoleInfo(id=ROLE_MOD, position=5, permissions=int(P.KICK_MEMBERS | P.MANAGE_ROLES)),
    ROLE_MUTED: RoleInfo(id=ROLE_MUTED, position=1, permissions=0),
    ROLE_REGULAR: RoleInfo(id=ROLE_REGULAR, position=2, permissions=0),
}


def member(*role_ids: int, user_id: int = ME, owner: bool = False) -> MemberInfo:
    return MemberInfo(user_id=user_id, role_ids=frozenset(role_ids), is_owner=owner)


def in_channel(m: MemberInfo, overwrites: list[Overwrite], **kw: bool) -> Permission:
    return compute_permissions(m, EVERYONE, ROLES, overwrites, **kw)


def test_read_only_announcement_channel_with_open_threads() -> None:
    overwrites = [
        Overwrite(id=GUILD, type=OVERWRITE_ROLE, deny=int(P.SEND_MESSAGES)),
        Overwrite(id=ROLE_STAFF, type=OVERWRITE_ROLE, allow=int(P.SEND_MESSAGES)),
    ]
    reader = in_channel(member(), overwrites)
    assert P.VIEW_CHANNEL in reader and P.READ_MESSAGE_HISTORY in reader
    assert P.ADD_REACTIONS in reader
    assert P.SEND_MESSAGES not in reader
    assert reader & NEEDS_SEND == NONE  # cannot attach or embed where one cannot send
    staff = in_channel(member(ROLE_STAFF), overwrites)
    assert P.SEND_MESSAGES | P.ATTACH_FILES | P.EMBED_LINKS in staff
    assert P.MENTION_EVERYONE not in staff  # never granted, so never implied
    # Threads under it are open: posting there is SEND_MESSAGES_IN_THREADS.
    in_thread = in_channel(member(), overwrites, thread=True)
    assert P.SEND_MESSAGES_IN_THREADS in in_thread
    assert P.ATTACH_FILES | P.EMBED_LINKS in in_thread


def test_thread_closed_to_posting_drops_attachments() -> None:
    overwrites = [Overwrite(id=GUILD, type=OVERWRITE_ROLE, deny=int(P.SEND_MESSAGES_IN_THREADS))]
    parent = in_channel(member(), overwrites)
    assert P.ATTACH_FILES in parent
    for in_thread in (in_channel(member(), overwrites, thread=True), thread_permissions(parent)):
        assert P.SEND_MESSAGES_IN_THREADS not in in_thread
        assert P.ATTACH_FILES not in in_thread
        assert P.READ_MESSAGE_HISTORY in in_thread
    assert thread_permissions(NONE) == NONE


def test_private_channel_visible_to_one_role_and_one_guest() -> None:
    overwrites = [
        Overwrite(id=GUILD, type=OVERWRITE_ROLE, deny=int(P.VIEW_CHANNEL)),
        Overwrite(id=ROLE_MOD, type=OVERWRITE_ROLE, allow=int(P.VIEW_CHANNEL)),
        Overwrite(id=OTHER, type=OVERWRITE_MEMBER, allow=int(P.VIEW_CHANNEL)),
    ]
    assert in_channel(member(ROLE_STAFF), overwrites) == NONE
    mod = in_channel(member(ROLE_MOD), overwrites)
    assert P.VIEW_CHANNEL | P.SEND_MESSAGES | P.KICK_MEMBERS in mod
    assert P.VIEW_CHANNEL in in_channel(member(user_id=OTHER), overwrites)
    assert in_channel(member(owner=True), overwrites) == ALL


def test_muted_role_loses_to_another_roles_allow_but_member_deny_holds() -> None:
    # Discord's well-known trap: role overwrites are merged, so any role allow wins.
    overwrites = [
        Overwrite(id=ROLE_MUTED, type=OVERWRITE_ROLE, deny=int(P.SEND_MESSAGES | P.ADD_REACTIONS)),
        Overwrite(id=ROLE_REGULAR, type=OVERWRITE_ROLE, allow=int(P.SEND_MESSAGES)),
    ]
    muted = in_channel(member(ROLE_MUTED), overwrites)
    assert P.SEND_MESSAGES not in muted and P.ADD_REACTIONS not in muted
    assert P.ATTACH_FILES not in muted
    both = in_channel(member(ROLE_MUTED, ROLE_REGULAR), overwrites)
    assert P.SEND_MESSAGES in both and P.ADD_REACTIONS not in both
    personal = [*overwrites, Overwrite(id=ME, type=OVERWRITE_MEMBER, deny=int(P.SEND_MESSAGES))]
    assert P.SEND_MESSAGES not in in_channel(member(ROLE_MUTED, ROLE_REGULAR), personal)


def test_everyone_listed_among_roles_is_still_only_the_everyone_layer() -> None:
    # If @everyone's allow were merged into the role layer it would beat the role deny.
    overwrites = [
        Overwrite(id=GUILD, type=OVERWRITE_ROLE, allow=int(P.SEND_MESSAGES)),
        Overwrite(id=ROLE_REGULAR, type=OVERWRITE_ROLE, deny=int(P.SEND_MESSAGES)),
    ]
    assert P.SEND_MESSAGES not in in_channel(member(GUILD, ROLE_REGULAR), overwrites)


def test_timed_out_member_only_reads() -> None:
    timed = in_channel(member(ROLE_STAFF), [], timed_out=True)
    assert timed == P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY
    hidden = [Overwrite(id=GUILD, type=OVERWRITE_ROLE, deny=int(P.VIEW_CHANNEL))]
    assert in_channel(member(), hidden, timed_out=True) == NONE
    assert in_channel(member(owner=True), hidden, timed_out=True) == ALL
    assert apply_timeout(ALL) == ALL


def test_overwrite_cannot_grant_administrator() -> None:
    sneaky = [Overwrite(id=ME, type=OVERWRITE_MEMBER, allow=int(P.ADMINISTRATOR))]
    result = in_channel(member(), sneaky)
    assert result != ALL
    assert P.ADMINISTRATOR not in result


def test_highest_position() -> None:
    assert highest_position(member(), ROLES, EVERYONE) == 0
    assert highest_position(member(ROLE_STAFF, ROLE_MOD), ROLES, EVERYONE) == 5
    assert highest_position(member(ROLE_STAFF, 77), ROLES, EVERYONE) == 3  # deleted role
    assert highest_position(member(owner=True), ROLES, EVERYONE) == math.inf


def test_moderation_scenarios() -> None:
    mod, staff = member(ROLE_MOD), member(ROLE_STAFF, user_id=OTHER)
    mod_perms = base_permissions(mod, EVERYONE, ROLES)
    assert can_moderate("kick", mod, staff, mod_perms, ROLES, EVERYONE)
    assert can_moderate("ban", mod, staff, mod_perms, ROLES, EVERYONE).reason == (
        MISSING_PERMISSIONS
    )
    # A timed-out moderator loses the power to kick.
    assert not can_moderate("kick", mod, staff, apply_timeout(mod_perms), ROLES, EVERYONE)
    peer = member(ROLE_MOD, user_id=OTHER)
    assert can_moderate("kick", mod, peer, mod_perms, ROLES, EVERYONE).reason == TARGET_HIERARCHY
    # Anyone may rename themselves with CHANGE_NICKNAME, without any rank.
    assert can_moderate("nickname", staff, staff, DEFAULT_EVERYONE, ROLES, EVERYONE)
    assert not can_moderate("nickname", staff, staff, NONE, ROLES, EVERYONE)
    # Admins cannot be timed out, not even by the owner.
    roles = {**ROLES, 9: RoleInfo(id=9, position=1, permissions=ADMIN)}
    admin = member(9, user_id=OTHER)
    owner = member(owner=True)
    assert can_moderate("timeout", owner, admin, ALL, roles, EVERYONE).reason == TARGET_IS_ADMIN
    assert can_moderate("kick", owner, admin, ALL, roles, EVERYONE)


def test_role_management_scenarios() -> None:
    mod = member(ROLE_MOD)
    mod_perms = base_permissions(mod, EVERYONE, ROLES)
    assert can_manage_role(mod, mod_perms, ROLES[ROLE_STAFF], ROLES, EVERYONE)
    assert can_manage_role(mod, mod_perms, ROLES[ROLE_MOD], ROLES, EVERYONE).reason == (
        ROLE_HIERARCHY
    )
    assert can_grant(mod_perms, int(P.KICK_MEMBERS))
    refused = can_grant(mod_perms, int(P.KICK_MEMBERS | P.BAN_MEMBERS))
    assert refused.missing == int(P.BAN_MEMBERS)
    with pytest.raises(Forbidden) as error:
        refused.enforce()
    assert error.value.code == PERMISSIONS_NOT_HELD
    can_grant(ALL, int(ALL)).enforce()  # allowed: no exception
