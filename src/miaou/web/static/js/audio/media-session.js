// The operating system's media controls (lock screen, headset buttons, notification):
// what plays, and the actions they may ask for.

/** Describe `track` and route the system's actions to `player`. */
export function announce(track, player) {
  if (!('mediaSession' in navigator) || !track) return;
  try {
    // Only a public cover is a URL the system can fetch without the token.
    const artwork = track.visibility === 'public' && track.cover ? [{ src: track.cover['300'], sizes: '300x300', type: 'image/jpeg' }] : [];
    navigator.mediaSession.metadata = new MediaMetadata({ title: track.title, artist: track.artist ?? '', album: track.album ?? '', artwork });
  } catch {
    return; // no MediaMetadata here
  }
  const actions = {
    play: () => player.toggle(),
    pause: () => player.pause(),
    previoustrack: () => player.previous(),
    nexttrack: () => player.next(),
    seekto: (details) => player.seek(details.seekTime),
  };
  for (const [action, handler] of Object.entries(actions)) {
    try {
      navigator.mediaSession.setActionHandler(action, handler);
    } catch {
      // An action this browser does not know: the others still work.
    }
  }
}
