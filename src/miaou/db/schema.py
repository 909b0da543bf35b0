"""Every table of every wing on the one ``MetaData``: what migrations and checks compare."""

from __future__ import annotations

import miaou.audio.tables  # registers the audio tables
import miaou.bus.log  # registers the stream log tables
import miaou.chat.tables  # registers the chat tables
import miaou.db.secrets  # registers the node secrets table
import miaou.jobs.tables  # noqa: F401 - registers the job queue table
from miaou.db.metadata import metadata

__all__ = ["metadata"]
