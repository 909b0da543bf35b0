// Loudness normalisation from the figures the node stores for each track (docs/audio.md):
// ReplayGain 2.0 track gain (reference -18 LUFS) and the EBU R128 true peak. Pure.

export const dbToLinear = (db) => 10 ** (db / 20);

/** The linear gain that brings a track to the reference loudness, lowered when needed so
 *  that its loudest (true) peak stays at or under full scale: a quiet track with sharp
 *  peaks is raised only as far as it can go without clipping. 1 when there is nothing to
 *  go by (silence, a track from before loudness analysis) or when switched off. */
export function normalisationGain(loudness, { enabled = true } = {}) {
  if (!enabled || !loudness) return 1;
  const gainDb = loudness.replaygain_track_gain_db;
  if (typeof gainDb !== 'number' || !Number.isFinite(gainDb)) return 1;
  const peaks = [];
  if (typeof loudness.true_peak_dbtp === 'number') peaks.push(dbToLinear(loudness.true_peak_dbtp));
  if (typeof loudness.replaygain_track_peak === 'number') peaks.push(loudness.replaygain_track_peak);
  const peak = Math.max(0, ...peaks.filter(Number.isFinite));
  const gain = dbToLinear(gainDb);
  return peak > 0 ? Math.min(gain, 1 / peak) : gain;
}
