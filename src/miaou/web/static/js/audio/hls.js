// A small HLS player on Media Source Extensions for the node's fMP4 audio ladder
// (docs/audio.md): the master playlist's AAC variants, one SourceBuffer in "segments"
// mode (each fragment carries its own timestamps, so a fragment of any variant lands at
// its place), about 30 s fetched ahead of the play position and what is far behind it
// evicted. Before each segment the next variant is chosen from measured throughput and the
// buffer level (abr.js); a switch appends the new variant's init segment first. A seek to a
// time not buffered fetches from the segment holding it.
//
// The playlists' parsing is pure (m3u8.js) and so is the choice of variant (abr.js); this
// file is the part that needs a browser.

import { ThroughputEstimator, chooseVariant } from './abr.js';
import { parseMaster, parseMedia, segmentAt } from './m3u8.js';

export const AHEAD_S = 30; // fetch until this much is buffered ahead of the play position
export const BEHIND_S = 30; // keep this much behind it (a short seek back is instant)
const EDGE_S = 0.1; // a buffered range ending this close to a segment start reaches it
const RETRIES = 3;

/** Whether this browser can play our HLS through MSE at all. */
export function mseAvailable() {
  return typeof MediaSource !== 'undefined' && typeof MediaSource.isTypeSupported === 'function';
}

/** The variants this player uses: AAC (one SourceBuffer type for the whole ladder, so a
 *  switch needs no changeType) that the browser says it can decode. Opus is left out. */
export function playableVariants(variants, isSupported) {
  return variants.filter((v) => v.codecs.split(',').every((c) => c.trim().startsWith('mp4a.')) && isSupported(v.mime));
}

/** A media URL refused as expired (403 media_url_expired): fetch the track again. */
export class MediaExpired extends Error {
  constructor() {
    super('The media URL has expired.');
    this.name = 'MediaExpired';
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/** Seconds of `buffered` from `t` on (0 if `t` is not buffered) and where that run ends. */
export function bufferedRun(buffered, t) {
  for (let i = 0; i < buffered.length; i += 1) {
    if (buffered.start(i) <= t + EDGE_S && t < buffered.end(i)) {
      return { ahead: buffered.end(i) - t, end: buffered.end(i), inside: true };
    }
  }
  return { ahead: 0, end: t, inside: false };
}

export class HlsPlayer extends EventTarget {
  /** audio: the <audio> element (this player sets its src); preferred: 'auto' or the
   *  name of a variant ("aac_128") to hold to; startAt: seconds. */
  constructor(audio, masterUrl, { preferred = 'auto', startAt = 0 } = {}) {
    super();
    this.audio = audio;
    this.masterUrl = new URL(masterUrl, location.href).href;
    this.preferred = preferred;
    this.quality = 'auto'; // or the index of the variant held to
    this.startAt = startAt;
    this.variants = [];
    this.current = -1; // the variant whose segments are being fetched
    this.initOf = -1; // the variant whose init segment was appended last
    this.playlists = new Map(); // variant index -> Promise of its parsed media playlist
    this.inits = new Map(); // variant index -> Promise of its init segment bytes
    this.appended = []; // [{start, end, variant}] of appended segments, newest last
    this.estimator = new ThroughputEstimator();
    this.closed = false;
    this.session = new AbortController(); // ends every request at destroy()
    this.request = null; // the AbortController of the segment download in flight
    this.wakeUp = null;
    this.woken = false; // a wake() that came while no idle() was waiting
    this.last = { index: -1, end: -1 }; // the last segment appended and the run end after it
    this.onSeeking = () => this.seeked();
    this.onTick = () => this.wake();
  }

  /** Fetch the master playlist and open the MediaSource; rejects if nothing is playable
   *  here (the caller then falls back to the progressive file). */
  async start() {
    const master = await this.text(this.masterUrl);
    this.variants = playableVariants(parseMaster(master, this.masterUrl), (mime) => MediaSource.isTypeSupported(mime));
    if (!this.variants.length) throw new Error('No playable HLS variant.');
    const held = this.variants.findIndex((v) => v.name === this.preferred);
    if (held >= 0) this.quality = held;
    this.mediaSource = new MediaSource();
    const url = URL.createObjectURL(this.mediaSource);
    const opened = new Promise((resolve) => this.mediaSource.addEventListener('sourceopen', resolve, { once: true }));
    this.audio.src = url;
    await opened;
    URL.revokeObjectURL(url);
    if (this.closed) return;
    this.current = this.pick(0);
    const playlist = await this.playlist(this.current);
    this.mediaSource.duration = playlist.duration;
    this.buffer = this.mediaSource.addSourceBuffer(this.variants[this.current].mime);
    this.buffer.mode = 'segments';
    this.audio.addEventListener('seeking', this.onSeeking);
    this.audio.addEventListener('timeupdate', this.onTick);
    this.audio.addEventListener('play', this.onTick);
    this.run();
  }

  destroy() {
    this.closed = true;
    this.session.abort();
    this.request?.abort();
    this.audio.removeEventListener('seeking', this.onSeeking);
    this.audio.removeEventListener('timeupdate', this.onTick);
    this.audio.removeEventListener('play', this.onTick);
    this.wake();
  }

  /** 'auto', or the index of a variant to hold to. A fixed choice drops what is buffered
   *  ahead in another variant, so the change is heard within a second. */
  async setQuality(quality) {
    this.quality = quality;
    if (quality !== 'auto' && this.buffer) {
      const from = this.audio.currentTime + 1;
      const to = this.mediaSource.duration;
      this.appended = this.appended.filter((a) => a.start < from);
      this.last = { index: -1, end: -1 };
      if (to > from) await this.remove(from, to).catch(() => {});
    }
    this.wake();
  }

  /** The variant of what is playing now (-1 before the first segment). */
  get playing() {
    const t = this.audio.currentTime;
    for (let i = this.appended.length - 1; i >= 0; i -= 1) {
      const a = this.appended[i];
      if (a.start <= t + EDGE_S && t < a.end) return a.variant;
    }
    return -1;
  }

  get estimate() {
    return this.estimator.estimate();
  }

  // -- the fetch loop ------------------------------------------------------------------------
  async run() {
    let failures = 0;
    while (!this.closed) {
      try {
        const worked = await this.step();
        failures = 0;
        if (!worked) await this.idle(1000);
      } catch (error) {
        if (this.closed) return;
        if (error.name === 'AbortError') continue; // a seek dropped a download
        if (error instanceof MediaExpired || (failures += 1) > RETRIES) {
          this.dispatch('fatal', { error });
          return;
        }
        await sleep(500 * 2 ** failures, this.session.signal);
      }
    }
  }

  /** Fetch and append one segment if one is due; false when there is nothing to do. */
  async step() {
    const t = this.startAt > 0 ? this.startAt : this.audio.currentTime;
    const run = bufferedRun(this.buffer.buffered, t);
    const next = this.pick(run.ahead);
    if (next !== this.current) {
      this.current = next;
      this.dispatch('switch', { variant: next });
    }
    const playlist = await this.playlist(this.current);
    if (run.ahead >= AHEAD_S) {
      await this.evict(t);
      return false;
    }
    let index = run.inside ? segmentAt(playlist.segments, run.end + EDGE_S) : segmentAt(playlist.segments, t);
    if (run.inside && run.end + EDGE_S >= playlist.duration) index = playlist.segments.length;
    // A fragment shorter than its EXTINF can leave the run's end just before the next
    // segment's start: never fetch the same segment twice in a row for the same spot.
    if (index === this.last.index && Math.abs(run.end - this.last.end) < 1e-3) index += 1;
    if (index >= playlist.segments.length) {
      this.finish(run);
      return false;
    }
    if (this.initOf !== this.current) {
      await this.append(await this.init(this.current, playlist));
      this.initOf = this.current;
      this.seekToStart();
    }
    const segment = playlist.segments[index];
    this.request = new AbortController();
    const began = performance.now();
    let data;
    try {
      data = await this.bytes(segment.uri, this.request.signal);
    } finally {
      this.request = null;
    }
    this.estimator.sample(data.byteLength, performance.now() - began);
    await this.evict(this.audio.currentTime);
    await this.append(data);
    this.appended.push({ start: segment.start, end: segment.start + segment.duration, variant: this.current });
    if (this.appended.length > 200) this.appended.splice(0, 100);
    this.last = { index, end: bufferedRun(this.buffer.buffered, this.audio.currentTime).end };
    this.dispatch('segment', { index, variant: this.current });
    return true;
  }

  pick(ahead) {
    if (this.quality !== 'auto') return Math.min(Math.max(0, Number(this.quality)), this.variants.length - 1);
    return chooseVariant(this.variants, { estimate: this.estimator.estimate(), bufferAhead: ahead, current: this.current });
  }

  seekToStart() {
    if (this.startAt > 0) {
      this.audio.currentTime = this.startAt;
      this.startAt = 0;
    }
  }

  /** Everything from the play position to the end is buffered: say so, so that the
   *  element plays to the end and fires `ended`. */
  finish(run) {
    const source = this.mediaSource;
    if (run.inside && source.readyState === 'open' && !this.buffer.updating) {
      try {
        source.endOfStream();
      } catch {
        // Closed under us (the element moved on): nothing to end.
      }
    }
  }

  seeked() {
    const t = this.audio.currentTime;
    if (!bufferedRun(this.buffer?.buffered ?? { length: 0 }, t).inside) this.request?.abort();
    this.wake();
  }

  async evict(t) {
    const buffered = this.buffer.buffered;
    if (buffered.length && buffered.start(0) < t - BEHIND_S) {
      await this.remove(0, t - BEHIND_S / 2);
    }
  }

  // -- SourceBuffer operations, one at a time ------------------------------------------------
  async settle() {
    while (this.buffer.updating) await once(this.buffer, 'updateend');
  }

  async append(data) {
    await this.settle();
    if (this.closed) return;
    try {
      this.buffer.appendBuffer(data);
    } catch (error) {
      if (error.name !== 'QuotaExceededError') throw error;
      // Full: drop all but a few seconds behind, then try once more.
      const t = this.audio.currentTime;
      if (t > 5) await this.remove(0, t - 5);
      await this.settle();
      this.buffer.appendBuffer(data);
    }
    await once(this.buffer, 'updateend');
  }

  async remove(from, to) {
    await this.settle();
    if (this.closed || !(to > from)) return;
    this.buffer.remove(Math.max(0, from), to);
    await once(this.buffer, 'updateend');
  }

  // -- fetching ------------------------------------------------------------------------------
  playlist(variant) {
    if (!this.playlists.has(variant)) {
      const uri = this.variants[variant].uri;
      const parsed = this.text(uri).then((text) => parseMedia(text, uri));
      parsed.catch(() => this.playlists.delete(variant)); // fetched again next time
      this.playlists.set(variant, parsed);
    }
    return this.playlists.get(variant);
  }

  init(variant, playlist) {
    if (!this.inits.has(variant)) {
      if (!playlist.init) return Promise.reject(new Error('The variant has no init segment.'));
      const bytes = this.bytes(playlist.init, this.session.signal);
      bytes.catch(() => this.inits.delete(variant));
      this.inits.set(variant, bytes);
    }
    return this.inits.get(variant);
  }

  async fetch(url, signal) {
    const response = await fetch(url, { signal: signal ?? this.session.signal, credentials: 'omit' });
    if (response.status === 403) {
      const body = await response.json().catch(() => null);
      if (body?.code === 'media_url_expired') throw new MediaExpired();
    }
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response;
  }

  async text(url) {
    return (await this.fetch(url)).text();
  }

  async bytes(url, signal) {
    return (await this.fetch(url, signal)).arrayBuffer();
  }

  // -- waiting ---------------------------------------------------------------------------------
  idle(ms) {
    if (this.woken || this.closed) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wakeUp === done) this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  wake() {
    if (this.wakeUp) this.wakeUp();
    else this.woken = true;
  }

  dispatch(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function once(target, type) {
  return new Promise((resolve, reject) => {
    const ok = () => {
      target.removeEventListener('error', bad);
      resolve();
    };
    const bad = () => {
      target.removeEventListener(type, ok);
      reject(new Error(`SourceBuffer ${type === 'updateend' ? 'append' : type} failed`));
    };
    target.addEventListener(type, ok, { once: true });
    target.addEventListener('error', bad, { once: true });
  });
}
