// Waveform data in BBC audiowaveform's JSON format (what peaks.js reads; docs/audio.md):
// {version, channels, sample_rate, samples_per_pixel, bits, length, data: [min, max, ...]}
// with one min/max pair per point and channel. Pure: parse, then fold into as many columns
// as the canvas has pixels.

/** Validated waveform: {min: Float32Array, max: Float32Array, length, seconds, peak} with
 *  values in -1..1 (several channels folded into one envelope; peak: the largest magnitude,
 *  for drawing quiet tracks as tall as loud ones). Throws on a malformed document. */
export function parseWaveform(json) {
  if (!json || typeof json !== 'object' || !Array.isArray(json.data)) throw new Error('waveform: no data');
  const channels = Number(json.channels ?? 1);
  const bits = Number(json.bits ?? 8);
  const rate = Number(json.sample_rate);
  const perPixel = Number(json.samples_per_pixel);
  if (!(channels >= 1) || (bits !== 8 && bits !== 16)) throw new Error('waveform: unsupported format');
  const length = Math.floor(json.data.length / (2 * channels));
  const scale = bits === 8 ? 128 : 32768;
  const min = new Float32Array(length);
  const max = new Float32Array(length);
  let peak = 0;
  for (let i = 0; i < length; i += 1) {
    let low = 0;
    let high = 0;
    for (let c = 0; c < channels; c += 1) {
      const at = 2 * (i * channels + c);
      low = Math.min(low, Number(json.data[at]) / scale || 0);
      high = Math.max(high, Number(json.data[at + 1]) / scale || 0);
    }
    min[i] = Math.max(-1, low);
    max[i] = Math.min(1, high);
    peak = Math.max(peak, -min[i], max[i]);
  }
  const seconds = rate > 0 && perPixel > 0 ? (length * perPixel) / rate : 0;
  return { min, max, length, seconds, peak };
}

/** The waveform folded (or stretched) into `columns` min/max pairs: each column takes the
 *  extremes of the points it covers, so no peak is lost when zoomed out. */
export function columnsOf(waveform, columns) {
  const count = Math.max(0, Math.floor(columns));
  const min = new Float32Array(count);
  const max = new Float32Array(count);
  if (!waveform.length) return { min, max };
  for (let c = 0; c < count; c += 1) {
    const from = Math.floor((c * waveform.length) / count);
    const to = Math.max(from + 1, Math.floor(((c + 1) * waveform.length) / count));
    let low = 0;
    let high = 0;
    for (let i = from; i < to && i < waveform.length; i += 1) {
      if (waveform.min[i] < low) low = waveform.min[i];
      if (waveform.max[i] > high) high = waveform.max[i];
    }
    min[c] = low;
    max[c] = high;
  }
  return { min, max };
}
