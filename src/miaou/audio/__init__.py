"""The audio wing: tracks, their processing into playable renditions, and playback."""
