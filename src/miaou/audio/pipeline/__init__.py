"""Pure media processing for audio tracks: synchronous functions over files, no database.

The caller runs them in a child process (they are CPU-bound and FFmpeg may take hundreds of
megabytes), never on the event loop. One module per step:

- ``inspect``: is this an accepted, intact audio file, and what is it (refusals raise
  :class:`miaou.errors.InvalidInput` with a stable code);
- ``tags`` and ``cover``: what the file says about itself, and its artwork in three sizes;
- ``process``: one decode of the source feeding ``loudness``, ``waveform``, ``bpm`` and the
  ``ladder`` of HLS renditions (``hls`` measures them and writes the master playlist);
- ``mp3``: the on-demand MP3 download.

Modules are imported by name (``from miaou.audio.pipeline.inspect import inspect``); this
package re-exports nothing, so ``pipeline.inspect`` always names the module.
"""
