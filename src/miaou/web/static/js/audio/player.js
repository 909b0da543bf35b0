// The player: one <audio> element for the whole session (the player bar shows it; it is
// not rebuilt on navigation, so music plays on between chat and tracks), a play queue,
// HLS through MSE (hls.js) or the progressive file where MSE is missing, loudness
// normalisation (loudness.js) through Web Audio (output.js), and play reports
// (listening.js).
//
// Events: 'change' (track, queue, state, settings), 'time' (position), 'quality'.

import { api } from '../api.js';
import { store } from '../store.js';
import { HlsPlayer, MediaExpired, mseAvailable } from './hls.js';
import { Listening } from './listening.js';
import { normalisationGain } from './loudness.js';
import { announce } from './media-session.js';
import { AudioOutput } from './output.js';
import { loadPrefs, savePrefs } from './prefs.js';
import { Queue, REPEAT_MODES } from './queue.js';
import { getTrack, reportPlay } from './tracks-api.js';

export const RESTART_S = 3; // "previous" past this restarts the track instead
const RENEW_GAP_MS = 30_000; // fresh URLs at most this often: a broken file is not retried in a loop

/** "aac_128" -> "128 kb/s" (the ladder's names say the nominal rate); else from BANDWIDTH. */
export function variantLabel(variant) {
  const nominal = /_(\d+)$/.exec(variant.name ?? '');
  return `${nominal ? nominal[1] : Math.round(variant.bandwidth / 1000)} kb/s`;
}

class Player extends EventTarget {
  constructor() {
    super();
    this.audio = document.createElement('audio');
    this.audio.className = 'player-media';
    this.audio.preload = 'auto';
    this.prefs = loadPrefs();
    this.queue = this.newQueue([], 0);
    this.session = null; // HlsPlayer, when playing through MSE
    this.mode = null; // 'hls' | 'progressive'
    this.generation = 0; // bumps on every load: late answers for an older load are dropped
    this.loading = false;
    this.buffering = false;
    this.error = null;
    this.output = new AudioOutput(this.audio);
    this.listening = new Listening();
    const a = this.audio;
    for (const type of ['play', 'pause', 'volumechange']) a.addEventListener(type, () => this.changed());
    a.addEventListener('waiting', () => this.setBuffering(true));
    a.addEventListener('playing', () => this.setBuffering(false));
    a.addEventListener('canplay', () => this.setBuffering(false));
    a.addEventListener('timeupdate', () => this.tick());
    a.addEventListener('seeking', () => this.listening.jumped());
    a.addEventListener('durationchange', () => this.emit('time'));
    a.addEventListener('ended', () => this.ended());
    a.addEventListener('error', () => this.mediaError());
  }

  // -- what is playing ---------------------------------------------------------------------
  get track() {
    return this.queue.current;
  }

  get playing() {
    return !this.audio.paused && !this.audio.ended;
  }

  get currentTime() {
    return this.audio.currentTime || 0;
  }

  get duration() {
    const known = (this.track?.duration_ms ?? 0) / 1000;
    return known || (Number.isFinite(this.audio.duration) ? this.audio.duration : 0);
  }

  /** {selected: 'auto' | name, playing: name | null, choices: [{name, label}], mode}. */
  get quality() {
    const variants = this.session?.variants ?? [];
    const playing = this.session ? variants[this.session.playing] ?? variants[this.session.current] : null;
    return {
      mode: this.mode,
      selected: this.prefs.quality,
      playing: playing?.name ?? null,
      playingLabel: playing ? variantLabel(playing) : this.mode === 'progressive' ? '128 kb/s (progressive)' : null,
      choices: variants.map((v) => ({ name: v.name, label: variantLabel(v) })),
    };
  }

  /** The linear gain normalisation applies to the current track (1: none). */
  get normalisation() {
    return normalisationGain(this.track?.loudness, { enabled: this.prefs.normalise });
  }

  // -- starting ------------------------------------------------------------------------------
  /** Play `tracks` (the list it was started from) from `index`. Call it from the click
   *  that asked for it: the Web Audio graph can only start inside a user gesture. */
  playList(tracks, index = 0, { startAt = 0 } = {}) {
    this.unlock();
    this.queue = this.newQueue(tracks, index);
    return this.load(this.queue.current, { startAt, autoplay: true });
  }

  newQueue(tracks, index) {
    const queue = new Queue(tracks, index);
    queue.setRepeat(this.prefs.repeat);
    if (this.prefs.shuffle) queue.setShuffle(true);
    return queue;
  }

  async load(track, { startAt = 0, autoplay = true, keepListening = false } = {}) {
    const generation = ++this.generation;
    this.teardown();
    if (!keepListening) this.listening.reset();
    this.error = null;
    this.loading = true;
    this.changed();
    let playable = track;
    try {
      if (!playable?.media) {
        playable = { ...(await getTrack(track.id, track.linkSecret)), linkSecret: track.linkSecret };
        if (generation !== this.generation) return;
        this.queue.refresh(playable);
      }
      if (!playable.media) throw new Error('This track is not playable yet.');
      this.applyGain();
      if (mseAvailable() && (await this.startHls(playable, startAt, generation))) {
        this.mode = 'hls';
      } else if (generation === this.generation) {
        this.startProgressive(playable, startAt);
      }
    } catch (error) {
      if (generation !== this.generation) return;
      this.error = error.message || 'This track cannot be played.';
    }
    if (generation !== this.generation) return;
    this.loading = false;
    announce(this.track, this);
    this.changed();
    if (autoplay && !this.error) this.resume();
  }

  async startHls(track, startAt, generation) {
    const session = new HlsPlayer(this.audio, track.media.hls, { preferred: this.prefs.quality, startAt });
    try {
      await session.start();
    } catch {
      session.destroy();
      return false; // no MSE variant here: the progressive file will do
    }
    if (generation !== this.generation) {
      session.destroy();
      return false;
    }
    this.session = session;
    for (const type of ['switch', 'segment']) session.addEventListener(type, () => this.emit('quality'));
    session.addEventListener('fatal', (event) => this.sessionFailed(session, event.detail.error));
    return true;
  }

  startProgressive(track, startAt) {
    this.mode = 'progressive';
    this.audio.src = track.media.stream;
    if (startAt > 0) {
      this.audio.addEventListener('loadedmetadata', () => (this.audio.currentTime = startAt), { once: true });
    }
  }

  /** New details of a track (edited): wherever it is in the queue, keeping its link secret. */
  refreshTrack(fresh) {
    const known = this.queue.tracks.find((t) => t.id === fresh.id);
    if (!known) return;
    this.queue.refresh({ ...fresh, linkSecret: known.linkSecret });
    this.applyGain();
    this.changed();
  }

  /** The session's index for the preferred quality ('auto' when not in this ladder). */
  qualityIndexIn(session) {
    if (!session || this.prefs.quality === 'auto') return 'auto';
    const index = session.variants.findIndex((v) => v.name === this.prefs.quality);
    return index >= 0 ? index : 'auto';
  }

  teardown() {
    this.session?.destroy();
    this.session = null;
    this.mode = null;
    this.buffering = false;
    if (this.audio.getAttribute('src')) {
      this.audio.pause();
      this.audio.removeAttribute('src');
      this.audio.load();
    }
  }

  /** Stop and forget everything (log out). */
  stop() {
    this.generation += 1;
    this.teardown();
    this.queue = this.newQueue([], 0);
    this.loading = false;
    this.error = null;
    this.changed();
  }

  // -- controls -------------------------------------------------------------------------------
  /** Inside the click that asked for sound: the Web Audio graph may start only then. */
  unlock() {
    this.output.unlock();
  }

  /** The Web Audio graph ({context, gain}), once made. */
  get graph() {
    return this.output.graph;
  }

  resume() {
    this.audio.play().catch((error) => {
      if (error.name === 'NotAllowedError') {
        this.error = 'Press play to start.';
        this.changed();
      }
      // AbortError: a newer load replaced this one.
    });
  }

  toggle() {
    if (!this.track) return;
    this.unlock();
    if (this.playing) this.audio.pause();
    else if (!this.audio.getAttribute('src') || this.error) this.load(this.track, { autoplay: true });
    else this.resume();
  }

  pause() {
    this.audio.pause();
  }

  seek(seconds) {
    if (!this.track) return;
    const t = Math.min(Math.max(0, seconds), Math.max(0, this.duration - 0.05));
    this.audio.currentTime = t;
    this.emit('time');
  }

  /** Play the track at this position of the play order (the queue list's buttons). */
  jump(position) {
    this.unlock();
    const track = this.queue.moveTo(position);
    if (track) this.load(track, { autoplay: true });
  }

  next() {
    const position = this.queue.nextPosition();
    if (position >= 0) this.jump(position);
  }

  previous() {
    if (this.currentTime > RESTART_S) {
      this.seek(0);
      return;
    }
    const position = this.queue.previousPosition();
    if (position === this.queue.position) this.seek(0);
    else if (position >= 0) this.jump(position);
  }

  setShuffle(on) {
    this.prefs.shuffle = on;
    this.queue.setShuffle(on);
    this.savePrefs();
  }

  cycleRepeat() {
    const mode = REPEAT_MODES[(REPEAT_MODES.indexOf(this.prefs.repeat) + 1) % REPEAT_MODES.length];
    this.prefs.repeat = mode;
    this.queue.setRepeat(mode);
    this.savePrefs();
  }

  setVolume(volume) {
    this.prefs.volume = Math.min(1, Math.max(0, volume));
    this.prefs.muted = this.prefs.volume === 0 ? this.prefs.muted : false;
    this.savePrefs();
  }

  toggleMute() {
    this.prefs.muted = !this.prefs.muted;
    this.savePrefs();
  }

  setNormalise(on) {
    this.prefs.normalise = on;
    this.savePrefs();
  }

  /** 'auto' or a variant's name. */
  setQuality(name) {
    this.prefs.quality = name;
    this.session?.setQuality(this.qualityIndexIn(this.session));
    this.savePrefs();
    this.emit('quality');
  }

  savePrefs() {
    savePrefs(this.prefs);
    this.applyGain();
    this.changed();
  }

  /** Volume times the track's normalisation gain. */
  applyGain() {
    this.output.set(this.normalisation * (this.prefs.muted ? 0 : this.prefs.volume));
  }

  // -- events of the element and the session -------------------------------------------------
  tick() {
    const a = this.audio;
    if (this.listening.tick(a.currentTime, !a.paused && !a.seeking) && this.track) {
      const { id, linkSecret } = this.track;
      reportPlay(id, this.listening.seconds, linkSecret).catch(() => this.listening.failed());
    }
    this.emit('time');
  }

  ended() {
    const position = this.queue.nextPosition({ auto: true });
    if (position === this.queue.position && this.queue.repeat !== 'off') {
      if (this.queue.repeat !== 'one') this.listening.reset(); // one: the same listening goes on
      this.audio.currentTime = 0;
      this.resume();
    } else if (position >= 0) {
      this.jump(position);
    } else {
      this.changed();
    }
  }

  sessionFailed(session, error) {
    if (session !== this.session) return;
    const at = this.currentTime;
    const wasPlaying = this.playing;
    if (error instanceof MediaExpired && this.renew(at, wasPlaying)) return;
    // The HLS path broke (a decode error, a segment that would not come): carry on from
    // the same spot with the progressive file.
    this.teardown();
    this.startProgressive(this.track, at);
    this.changed();
    if (wasPlaying) this.resume();
  }

  mediaError() {
    if (!this.audio.getAttribute('src') || this.session) return; // MSE errors come as 'fatal'
    // Perhaps an expired signed URL: fresh ones are one GET away.
    if (this.mode === 'progressive' && this.renew(this.currentTime, true)) return;
    this.error = 'This track cannot be played.';
    this.changed();
  }

  /** Read the track again (fresh media URLs) and go on from `at`; false if that was done
   *  moments ago (then it would not help). */
  renew(at, autoplay) {
    const track = this.track;
    const now = Date.now();
    if (!track || (this.renewedAt && now - this.renewedAt < RENEW_GAP_MS)) return false;
    this.renewedAt = now;
    this.reload(track, at, autoplay);
    return true;
  }

  async reload(track, at, autoplay) {
    try {
      const fresh = { ...(await getTrack(track.id, track.linkSecret)), linkSecret: track.linkSecret };
      this.queue.refresh(fresh);
      await this.load(fresh, { startAt: at, autoplay, keepListening: true });
    } catch (error) {
      this.error = error.message;
      this.changed();
    }
  }

  setBuffering(on) {
    if (this.buffering === on) return;
    this.buffering = on;
    this.changed();
  }

  // -- notifications -------------------------------------------------------------------------
  changed() {
    this.emit('change');
  }

  emit(type) {
    this.dispatchEvent(new Event(type));
  }

  /** Listen; returns the function that stops listening. */
  on(type, listener) {
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }
}

export const player = new Player();

// Logging out stops the music and forgets the queue (it may hold private tracks).
store.on('session', () => {
  if (!api.token) player.stop();
});
