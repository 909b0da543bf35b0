"""Assembles a node: settings -> storage, services, HTTP app, middleware.

``Node`` owns every long-lived part; ``Node.asgi`` is what uvicorn serves. Startup migrates
the database (unless ``migrate_on_start`` is off, in which case it refuses to start on a
stale schema), shutdown closes the pools.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from miaou import __version__, ids
from miaou.accounts.api import AdminInvitesController, AuthController, UsersController
from miaou.accounts.invites import InviteService
from miaou.accounts.passwords import Passwords
from miaou.accounts.service import AccountService
from miaou.audio import api as audio_api
from miaou.audio import downloads, playback, plays, track_store
from miaou.audio.fast_media import FastSegments
from miaou.audio.processing import TrackProcessor
from miaou.audio.service import PROCESS_KIND, TrackService
from miaou.bus import Bus, MemoryBus, RedisBus
from miaou.bus import log as stream_log
from miaou.chat import (
    emojis_api,
    guilds_api,
    members_api,
    messages_api,
    search_api,
    threads_api,
)
from miaou.chat.channels import ChannelService
from miaou.chat.dms import DMService
from miaou.chat.emojis import EmojiService
from miaou.chat.fast_sends import FastSends
from miaou.chat.guild_invites import GuildInviteService
from miaou.chat.guilds import GuildService
from miaou.chat.members import MemberService
from miaou.chat.messages import MessageService
from miaou.chat.outbox import Outbox
from miaou.chat.read_states import ReadStateService
from miaou.chat.roles import RoleService
from miaou.chat.threads import ThreadService
from miaou.chat.typing import TypingService
from miaou.config import Settings
from miaou.db import migrate
from miaou.db.engine import Database
from miaou.errors import ConfigError
from miaou.gateway import api as gateway_api
from miaou.gateway.presence import LocalPresence, Presence, RedisPresence
from miaou.gateway.ready import ReadyReader
from miaou.gateway.sessions import Gateway
from miaou.http import health, node_info
from miaou.http.errors import exception_handlers
from miaou.http.ratelimit import RateLimits, rate_limit_middleware
from miaou.jobs.processes import ProcessPool
from miaou.jobs.queue import JobQueue
from miaou.jobs.runner import JobRunner
from miaou.observability import Metrics, ObservabilityMiddleware, sqlalchemy_pool_stats
from miaou.observability.loop_watch import LoopWatch
from miaou.storage.blobs import BlobStore
from miaou.types import ASGIApp
from miaou.web import routes as web_routes

SWEEP_SECONDS = 60
GC_EVERY_SWEEPS = 60
# Finished jobs are kept a week (what a track page or an operator may look at), then pruned.
JOB_RETENTION_MS = 7 * 86_400_000
log = structlog.get_logger("miaou.node")


class Node:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sweeper: asyncio.Task[None] | None = None
        if settings.worker_id is not None:
            ids.configure(settings.worker_id)
        self.db = Database(settings.effective_database_url, pool_size=settings.database_pool_size)
        self.passwords = Passwords(
            time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib
        )
        self.accounts = AccountService(self.db, self.passwords, settings)
        self.invites = InviteService(self.db)
        # One node alone: in-process fan-out. Nodes (or --workers) sharing Redis: pub/sub.
        self.bus: Bus = (
            RedisBus(settings.redis_url, channel=f"{settings.redis_namespace}:events")
            if settings.redis_url
            else MemoryBus()
        )
        self.outbox = Outbox(self.db, self.bus)
        # Media of every wing, by content hash.
        self.blobs = BlobStore(settings.effective_media_dir)
        self.messages = MessageService(self.outbox, settings, self.blobs)
        # Background work (track processing): durable jobs; CPU work in child processes.
        self.jobs = JobQueue(self.db)
        self.processes = ProcessPool(settings.job_processes)
        self.tracks = TrackService(self.db, self.blobs, self.jobs, self.processes, settings)
        self.tracks.media_urls = playback.url_maker(self)
        self.blobs.add_referrer(track_store.named_blobs)
        self.job_runner = JobRunner(
            self.jobs,
            {PROCESS_KIND: TrackProcessor(self.db, self.blobs, self.processes)},
            concurrency=settings.job_processes,
            lease_ms=settings.job_lease_seconds * 1000,
        )
        self.threads = ThreadService(self.outbox, self.messages)
        self.guilds = GuildService(self.outbox, settings)
        self.channels = ChannelService(self.outbox, settings)
        self.channels.threads = self.threads
        self.roles = RoleService(self.outbox, settings)
        self.dms = DMService(self.outbox)
        self.emojis = EmojiService(self.outbox, self.blobs)
        self.read_states = ReadStateService(self.outbox)
        self.typing = TypingService(self.outbox)
        self.members = MemberService(self.outbox, settings)
        self.guild_invites = GuildInviteService(self.outbox, self.members, settings)
        self.presence: Presence = (
            RedisPresence(settings.redis_url, settings.redis_namespace)
            if settings.redis_url
            else LocalPresence()
        )
        self.gateway = Gateway(
            settings,
            self.accounts,
            self.outbox,
            ReadyReader(self.db, self.accounts, self.dms, self.read_states),
            self.presence,
        )  # fmt: skip
        self.gateway.on_offline = self.members.remove_temporary
        self.rate_limits = RateLimits(settings)
        self.metrics = Metrics(
            database=self.db.dialect, pool_stats=sqlalchemy_pool_stats(self.db.engine)
        )
        self.messages.sends.on_batch = self.metrics.observe_send_batch
        self.messages.on_late_batch = self.metrics.send_batch_retries.inc
        self.loop_watch = (
            LoopWatch(settings.loop_stall_ms / 1000, on_stall=self.metrics.observe_loop_stall)
            if settings.loop_stall_ms
            else None
        )
        self.metrics.gateway.source = self.gateway.stats
        self.litestar = self._build_litestar()
        self.fast_sends = FastSends(self.litestar, self)
        self.asgi: ASGIApp = FastSegments(
            ObservabilityMiddleware(self.fast_sends, metrics=self.metrics), self
        )

    def _build_litestar(self) -> Litestar:
        openapi = OpenAPIConfig(
            title="Miaou API",
            version=__version__,
            description="REST API of a Miaou node. Errors: "
            '`{"code": "...", "message": "...", "errors": {...}}`.',
            # Litestar's controller serves a catch-all under its path, so it lives under
            # /api/v1/docs, not /api/v1; /api/v1/openapi.json is served by our own route.
            path="/api/v1/docs",
            render_plugins=[SwaggerRenderPlugin(path="/"), JsonRenderPlugin()],
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
            ),
            security=[{"bearer": []}],
        )
        app = Litestar(
            route_handlers=[
                *health.routes,
                *node_info.routes,
                AuthController,
                UsersController,
                AdminInvitesController,
                *guilds_api.routes,
                *members_api.routes,
                *messages_api.routes,
                *threads_api.routes,
                *search_api.routes,
                *emojis_api.routes,
                *gateway_api.routes,
                *audio_api.routes,
                *downloads.routes,
                *playback.routes,
                *plays.routes,
                *web_routes.routes,
            ],
            exception_handlers=exception_handlers,
            middleware=[rate_limit_middleware],  # type: ignore[list-item]
            openapi_config=openapi,
            request_max_body_size=self.settings.max_body_bytes,
            on_startup=[self.start],
            on_shutdown=[self.stop],
            logging_config=None,
            debug=False,
        )
        app.state.node = self
        return app

    async def start(self) -> None:
        if self.loop_watch is not None:
            self.loop_watch.start()
        if self.settings.migrate_on_start:
            await migrate.upgrade(self.db)
        elif not await migrate.is_current(self.db):
            raise ConfigError("The database schema is not current: run `miaou migrate`.")
        if isinstance(self.bus, RedisBus):
            # Pub/sub drops what arrives while the link is down: the hub re-reads the log.
            self.bus.on_reconnect = self.gateway.hub.resync
            await self.bus.start()
        await self.presence.start()
        if self.db.checkpointer is not None:
            self.db.checkpointer.start()
        if self.settings.jobs_in_serve:
            await self.job_runner.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="miaou-sweeper")

    async def _sweep_forever(self) -> None:
        """Periodic housekeeping: archive idle threads, prune the stream log and finished jobs;
        hourly, drop unreferenced media."""
        rounds = 0
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            rounds += 1
            try:
                await self.threads.archive_idle()
                await self._prune_stream_log()
                await self.tracks.settle_failed()
                await self.jobs.prune(ids.now_ms() - JOB_RETENTION_MS)
                if rounds % GC_EVERY_SWEEPS == 0:
                    await self.blobs.collect_garbage(self.db)
            except Exception:
                log.exception("sweep_failed")

    async def _prune_stream_log(self) -> None:
        before = ids.now_ms() - self.settings.resume_window_seconds * 1000
        async with self.db.write() as conn:
            await stream_log.prune(conn, before)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.job_runner.stop()
        await self.gateway.close()
        await self.presence.close()
        await self.bus.close()
        await self.rate_limits.close()
        await self.db.close()
        if self.loop_watch is not None:
            self.loop_watch.stop()
