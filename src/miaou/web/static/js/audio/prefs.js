// The listener's player settings, kept in localStorage across visits.

import { REPEAT_MODES } from './queue.js';

const KEY = 'miaou.player';
const DEFAULTS = { volume: 0.8, muted: false, normalise: true, repeat: 'off', shuffle: false, quality: 'auto' };

/** Stored settings over the defaults; anything malformed falls back to its default. */
export function loadPrefs() {
  let stored = {};
  try {
    stored = JSON.parse(localStorage.getItem(KEY) ?? '{}') ?? {};
  } catch {
    // A damaged entry: the defaults.
  }
  const prefs = { ...DEFAULTS, ...(typeof stored === 'object' ? stored : {}) };
  if (!REPEAT_MODES.includes(prefs.repeat)) prefs.repeat = 'off';
  if (typeof prefs.quality !== 'string') prefs.quality = 'auto';
  const volume = Number(prefs.volume);
  prefs.volume = Number.isFinite(volume) ? Math.min(1, Math.max(0, volume)) : DEFAULTS.volume;
  for (const flag of ['muted', 'normalise', 'shuffle']) prefs[flag] = Boolean(prefs[flag]);
  return prefs;
}

export function savePrefs(prefs) {
  localStorage.setItem(KEY, JSON.stringify(prefs));
}
