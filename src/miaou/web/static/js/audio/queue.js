// The play queue: the list a track was started from, its order (shuffled or not), and
// what comes next under each repeat mode. Pure; the player owns one.

export const REPEAT_MODES = ['off', 'all', 'one'];

/** Fisher-Yates with an injectable random source (tests pass a seeded one). */
export function shuffled(items, random = Math.random) {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export class Queue {
  /** tracks: the list (any objects with an id); start: the index played first. */
  constructor(tracks = [], start = 0, { random = Math.random } = {}) {
    this.tracks = [...tracks];
    this.random = random;
    this.order = this.tracks.map((_, i) => i); // play order, as indices into tracks
    this.position = Math.min(Math.max(start, 0), Math.max(this.tracks.length - 1, 0));
    this.shuffle = false;
    this.repeat = 'off';
  }

  get current() {
    return this.tracks[this.order[this.position]] ?? null;
  }

  /** The tracks in play order, and the position of the current one in it. */
  get upcoming() {
    return this.order.map((i) => this.tracks[i]);
  }

  /** Shuffle on: the current track stays first, the rest in random order; off: the list's
   *  own order, from the current track. */
  setShuffle(on) {
    const currentIndex = this.order[this.position] ?? 0;
    this.shuffle = on;
    if (on) {
      const rest = this.order.filter((i) => i !== currentIndex);
      this.order = [currentIndex, ...shuffled(rest, this.random)];
      this.position = 0;
    } else {
      this.order = this.tracks.map((_, i) => i);
      this.position = currentIndex;
    }
  }

  setRepeat(mode) {
    if (!REPEAT_MODES.includes(mode)) throw new Error(`unknown repeat mode ${mode}`);
    this.repeat = mode;
  }

  /** The position after this one, or -1 at the end. `auto`: the track ended by itself
   *  (repeat one replays it; a press of "next" moves on even then). */
  nextPosition({ auto = false } = {}) {
    if (!this.tracks.length) return -1;
    if (auto && this.repeat === 'one') return this.position;
    if (this.position + 1 < this.order.length) return this.position + 1;
    return this.repeat === 'off' ? -1 : 0;
  }

  previousPosition() {
    if (!this.tracks.length) return -1;
    if (this.position > 0) return this.position - 1;
    return this.repeat === 'off' ? 0 : this.order.length - 1;
  }

  /** Move to a position of the play order; returns the track there. */
  moveTo(position) {
    if (position < 0 || position >= this.order.length) return null;
    // Wrapping round with shuffle on deals a new order, as a listener expects.
    // (never starting with the track that just ended).
    if (this.shuffle && position === 0 && this.position === this.order.length - 1 && this.order.length > 1) {
      const last = this.order[this.position];
      this.order = shuffled(this.order, this.random);
      if (this.order[0] === last) [this.order[0], this.order[1]] = [this.order[1], this.order[0]];
    }
    this.position = position;
    return this.current;
  }

  /** Replace a track's data (fresh media URLs, edited title) wherever it is. */
  refresh(track) {
    this.tracks = this.tracks.map((t) => (t.id === track.id ? track : t));
  }
}
