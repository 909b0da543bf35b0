// Watching a track's processing (docs/audio.md): GET the track with a growing pause
// between reads until it is `ready` or `failed`. Bounded in count and in time.

import { getTrack } from './tracks-api.js';

export const FIRST_DELAY_MS = 500;
export const MAX_DELAY_MS = 5000;
const FACTOR = 1.5;
const MAX_READS = 720; // about an hour at the longest pause: then say so and stop

/** The pauses between reads: 500 ms growing by half each time, at most 5 s. Pure. */
export function backoff(attempt) {
  return Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * FACTOR ** attempt);
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** Resolves with the track once it is ready or failed (null if `signal` aborted first);
 *  onUpdate(track) after every read. A lost connection is waited out; a 404 (deleted, or
 *  no longer visible) rejects. */
export async function watchProcessing(trackId, { onUpdate, signal } = {}) {
  let failures = 0;
  for (let attempt = 0; attempt < MAX_READS; attempt += 1) {
    if (signal?.aborted) return null;
    try {
      const track = await getTrack(trackId);
      failures = 0;
      if (signal?.aborted) return null;
      onUpdate?.(track);
      if (track.state !== 'processing') return track;
    } catch (error) {
      if (error.status !== 0 && error.status < 500) throw error;
      failures += 1;
    }
    await sleep(backoff(attempt + failures), signal);
  }
  throw new Error('Processing is taking too long; come back to the track later.');
}
