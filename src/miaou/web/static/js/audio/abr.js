// Adaptive bitrate: which variant of the ladder to fetch next, from measured throughput
// and how much audio is buffered ahead. Pure: no timers, no DOM; the HLS player feeds it.

// Before any measurement, assume this much (bits/s): enough for the middle of the ladder
// (AAC 128 kb/s), not the top, so a slow link does not start with a long first download.
export const DEFAULT_ESTIMATE = 200_000;
// Below this many seconds ahead, only half of the estimate is trusted (a stall is near);
// below HIGH_BUFFER_S, 70 %; above it, 85 %.
export const LOW_BUFFER_S = 8;
export const HIGH_BUFFER_S = 20;
// Climbing to a better variant needs this much buffered: its first (larger) segment may
// take longer than expected, and the buffer must cover that.
export const UP_SWITCH_BUFFER_S = 10;

/** Throughput from segment downloads: two exponentially weighted moving averages (a fast
 *  one that reacts to a drop within a segment or two, a slow one that ignores one lucky
 *  download); the estimate is the lower of the two, as hls.js and Shaka do. */
export class ThroughputEstimator {
  constructor({ fastAlpha = 0.5, slowAlpha = 0.15 } = {}) {
    this.fastAlpha = fastAlpha;
    this.slowAlpha = slowAlpha;
    this.fast = null;
    this.slow = null;
    this.samples = 0;
  }

  /** One download: `bytes` in `ms` milliseconds. Tiny or instant ones say nothing. */
  sample(bytes, ms) {
    if (!(bytes > 0) || !(ms >= 0)) return;
    const bps = (bytes * 8 * 1000) / Math.max(ms, 1);
    this.fast = this.fast == null ? bps : this.fast + this.fastAlpha * (bps - this.fast);
    this.slow = this.slow == null ? bps : this.slow + this.slowAlpha * (bps - this.slow);
    this.samples += 1;
  }

  /** Bits per second, or null before the first sample. */
  estimate() {
    return this.samples ? Math.min(this.fast, this.slow) : null;
  }
}

function highestUnder(variants, budget) {
  let chosen = 0;
  variants.forEach((variant, index) => {
    if (variant.bandwidth <= budget) chosen = index;
  });
  return chosen;
}

/** The index (in `variants`, sorted by increasing bandwidth) to fetch next.
 *  estimate: bits/s or null; bufferAhead: seconds; current: the index now, or -1. */
export function chooseVariant(variants, { estimate, bufferAhead, current = -1 }) {
  if (!variants.length) return -1;
  if (estimate == null) return current >= 0 ? current : highestUnder(variants, DEFAULT_ESTIMATE);
  let factor = 0.85;
  if (bufferAhead < LOW_BUFFER_S) factor = 0.5;
  else if (bufferAhead < HIGH_BUFFER_S) factor = 0.7;
  const best = highestUnder(variants, estimate * factor);
  if (current >= 0 && best > current && bufferAhead < UP_SWITCH_BUFFER_S) return current;
  return best;
}
