"""What the audio wing runs in child processes: top-level functions (they are pickled by
name) that bundle the pipeline's steps, so one upload or one job costs one hand-off. Each
takes the ``progress`` reporter the process pool passes (unused where a step is short).

Nothing here touches the database or the event loop; results are plain picklable data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from miaou.audio.pipeline.cover import cover_sizes
from miaou.audio.pipeline.inspect import SourceInfo, inspect
from miaou.audio.pipeline.mp3 import transcode_mp3
from miaou.audio.pipeline.process import ProcessResult, process
from miaou.audio.pipeline.tags import Tags, read_tags
from miaou.errors import InvalidInput


@dataclass(frozen=True)
class Inspected:
    source: SourceInfo
    tags: Tags
    # Cover sizes (px -> JPEG bytes) from the uploaded image, else the embedded one.
    covers: dict[int, bytes] | None


def inspect_upload(
    path: str, max_duration: float, cover: bytes | None, *, progress: Callable[[float], None]
) -> Inspected:
    """Validate an uploaded file (refusals raise InvalidInput), read its tags and make its
    cover sizes."""
    source = inspect(Path(path), max_duration=max_duration)
    tags = read_tags(Path(path))
    if cover is not None:
        covers: dict[int, bytes] | None = cover_sizes(cover)  # refused if it is no image
    else:
        covers = _embedded_covers(tags.cover)
    return Inspected(source, _without_cover(tags), covers)


def _embedded_covers(image: bytes | None) -> dict[int, bytes] | None:
    # A broken picture inside a good audio file costs the track its cover, not its upload.
    if not image:
        return None
    try:
        return cover_sizes(image)
    except InvalidInput:
        return None


def make_covers(image: bytes, *, progress: Callable[[float], None]) -> dict[int, bytes]:
    return cover_sizes(image)


def make_mp3(
    source: str, dest: str, tags: dict[str, str], *, progress: Callable[[float], None]
) -> None:
    transcode_mp3(Path(source), Path(dest), progress=progress, tags=tags)


def process_track(source: str, out_dir: str, *, progress: Callable[[float], None]) -> ProcessResult:
    return process(Path(source), Path(out_dir), progress)


def _without_cover(tags: Tags) -> Tags:
    # The embedded picture has become cover sizes; no need to ship its bytes back twice.
    return replace(tags, cover=None)
