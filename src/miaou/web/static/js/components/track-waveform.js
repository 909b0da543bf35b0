// <miaou-track-waveform>: a track's waveform drawn on a <canvas> from its peaks
// (waveform.json), the played part in the accent colour. It is a slider: a click or a tap
// seeks there, and so do the keys (arrows: 5 s, Page Up/Down: 30 s, Home, End). It tells
// its owner with a 'seek' event ({detail: {time}}); it does not play anything itself.

import { columnsOf } from '../audio/waveform.js';
import { h } from '../dom.js';
import { formatTime, spokenTime } from './track-bits.js';

const BAR = 2; // CSS px of one bar, and 1 px of gap after it
const STEP_S = 5;
const PAGE_S = 30;

class TrackWaveform extends HTMLElement {
  connectedCallback() {
    if (this.canvas) return;
    this.waveform = null;
    this.duration = Number(this.getAttribute('duration')) || 0;
    this.progress = 0;
    this.drawnAt = null; // [width, height, played columns, colours] of the last drawing
    this.canvas = h('canvas', { class: 'waveform-canvas', 'aria-hidden': 'true' });
    this.setAttribute('role', 'slider');
    this.setAttribute('tabindex', '0');
    this.setAttribute('aria-valuemin', '0');
    if (!this.hasAttribute('aria-label')) this.setAttribute('aria-label', 'Seek in the waveform');
    this.append(this.canvas);
    this.addEventListener('click', (event) => this.clicked(event));
    this.addEventListener('keydown', (event) => this.key(event));
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(this);
    this.scheme = matchMedia('(prefers-color-scheme: dark)');
    this.onScheme = () => this.draw(true);
    this.scheme.addEventListener('change', this.onScheme);
    this.describe();
  }

  disconnectedCallback() {
    this.resize?.disconnect();
    this.scheme?.removeEventListener('change', this.onScheme);
  }

  /** The parsed waveform (audio/waveform.js) and the track's length in seconds. */
  setData(waveform, duration) {
    this.waveform = waveform;
    this.duration = duration || waveform.seconds;
    this.describe();
    this.draw(true);
  }

  /** Where playback is, as a fraction of the track. */
  setProgress(fraction) {
    const next = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
    if (Math.abs(next - this.progress) < 1e-4) return;
    this.progress = next;
    this.describe();
    this.draw();
  }

  describe() {
    const now = this.progress * this.duration;
    this.setAttribute('aria-valuemax', String(Math.round(this.duration)));
    this.setAttribute('aria-valuenow', String(Math.round(now)));
    this.setAttribute('aria-valuetext', `${spokenTime(now)} of ${spokenTime(this.duration)}`);
    this.title = `${formatTime(now)} / ${formatTime(this.duration)}`;
  }

  seek(time) {
    const t = Math.min(Math.max(0, time), this.duration);
    this.dispatchEvent(new CustomEvent('seek', { detail: { time: t } }));
  }

  clicked(event) {
    if (!this.duration) return;
    const box = this.canvas.getBoundingClientRect();
    if (!box.width) return;
    this.seek(((event.clientX - box.left) / box.width) * this.duration);
  }

  key(event) {
    const now = this.progress * this.duration;
    const moves = {
      ArrowLeft: now - STEP_S,
      ArrowDown: now - STEP_S,
      ArrowRight: now + STEP_S,
      ArrowUp: now + STEP_S,
      PageDown: now - PAGE_S,
      PageUp: now + PAGE_S,
      Home: 0,
      End: this.duration,
    };
    if (!(event.key in moves) || !this.duration) return;
    event.preventDefault();
    this.seek(moves[event.key]);
  }

  colours() {
    const style = getComputedStyle(this);
    return [style.getPropertyValue('--wave-played').trim() || style.getPropertyValue('--accent').trim(), style.getPropertyValue('--wave').trim() || style.getPropertyValue('--muted').trim()];
  }

  /** Draw at the canvas's size in device pixels; only when something visible changed. */
  draw(force = false) {
    const ratio = devicePixelRatio || 1;
    const width = Math.round(this.clientWidth * ratio);
    const height = Math.round(this.clientHeight * ratio);
    if (!width || !height || !this.waveform) return;
    const count = Math.max(1, Math.floor(this.clientWidth / (BAR + 1)));
    const played = Math.round(this.progress * count);
    const colours = this.colours();
    const key = [width, height, played, ...colours].join();
    if (!force && key === this.drawnAt) return;
    this.drawnAt = key;
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
    if (!this.columns || this.columns.min.length !== count || force) this.columns = columnsOf(this.waveform, count);
    const context = this.canvas.getContext('2d');
    context.clearRect(0, 0, width, height);
    const middle = height / 2;
    const bar = BAR * ratio;
    const pitch = (BAR + 1) * ratio;
    const { min, max } = this.columns;
    // Scaled to the loudest point: the shape matters here, not the level.
    const scale = this.waveform.peak > 0 ? 0.95 / this.waveform.peak : 1;
    for (let i = 0; i < count; i += 1) {
      context.fillStyle = i < played ? colours[0] : colours[1];
      const top = middle - Math.max(max[i] * scale, 0.01) * middle;
      const bottom = middle - Math.min(min[i] * scale, -0.01) * middle;
      context.fillRect(i * pitch, top, bar, Math.max(ratio, bottom - top));
    }
  }
}

customElements.define('miaou-track-waveform', TrackWaveform);
