// HLS playlists (RFC 8216bis), the part our fMP4 audio ladder uses: master playlists
// (EXT-X-STREAM-INF: BANDWIDTH, AVERAGE-BANDWIDTH, CODECS, URI) and VOD media playlists
// (EXT-X-MAP init segment, EXTINF, segment URIs). Pure functions: text and the playlist's
// own URL in, plain objects out; URIs are resolved against the playlist's URL, so signed
// media paths carry over to every segment.

/** The attributes of a tag line, `KEY=value,KEY="quoted, value"`, as a plain object. */
export function parseAttributes(text) {
  const found = {};
  const pattern = /([A-Z0-9-]+)=("[^"]*"|[^,]*)(?:,|$)/g;
  let match;
  while ((match = pattern.exec(text)) !== null) {
    const raw = match[2];
    found[match[1]] = raw.startsWith('"') ? raw.slice(1, -1) : raw.trim();
  }
  return found;
}

function lines(text) {
  if (typeof text !== 'string') throw new Error('playlist: not text');
  const all = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (all[0] !== '#EXTM3U') throw new Error('playlist: missing #EXTM3U');
  return all;
}

const resolve = (uri, base) => new URL(uri, base).href;

/** The MIME type a SourceBuffer needs for an fMP4 rendition with these CODECS. */
export function mimeOf(codecs) {
  return `audio/mp4; codecs="${codecs}"`;
}

/** A master playlist: its variants, by increasing BANDWIDTH:
 *  [{uri, bandwidth, averageBandwidth, codecs, mime, name}] (name: the URI's folder). */
export function parseMaster(text, baseUrl) {
  const all = lines(text);
  const variants = [];
  for (let i = 1; i < all.length; i += 1) {
    if (!all[i].startsWith('#EXT-X-STREAM-INF:')) continue;
    const attributes = parseAttributes(all[i].slice('#EXT-X-STREAM-INF:'.length));
    const uri = all.slice(i + 1).find((line) => !line.startsWith('#'));
    const bandwidth = Number(attributes.BANDWIDTH);
    if (!uri || !Number.isFinite(bandwidth) || bandwidth <= 0) continue;
    const codecs = attributes.CODECS ?? 'mp4a.40.2';
    const average = Number(attributes['AVERAGE-BANDWIDTH']);
    variants.push({
      uri: resolve(uri, baseUrl),
      bandwidth,
      averageBandwidth: Number.isFinite(average) && average > 0 ? average : bandwidth,
      codecs,
      mime: mimeOf(codecs),
      name: uri.split('/').slice(-2, -1)[0] || uri,
    });
  }
  return variants.sort((a, b) => a.bandwidth - b.bandwidth);
}

/** A media playlist: {init, segments: [{uri, start, duration}], duration, targetDuration,
 *  ended}. Segment start times are the running sum of EXTINF durations. */
export function parseMedia(text, baseUrl) {
  const all = lines(text);
  const segments = [];
  let init = null;
  let targetDuration = 0;
  let ended = false;
  let pending = null; // the EXTINF duration waiting for its URI
  let start = 0;
  for (const line of all.slice(1)) {
    if (line.startsWith('#EXT-X-MAP:')) {
      const uri = parseAttributes(line.slice('#EXT-X-MAP:'.length)).URI;
      if (uri) init = resolve(uri, baseUrl);
    } else if (line.startsWith('#EXT-X-TARGETDURATION:')) {
      targetDuration = Number(line.split(':')[1]) || 0;
    } else if (line.startsWith('#EXTINF:')) {
      pending = Number.parseFloat(line.slice('#EXTINF:'.length));
      if (!Number.isFinite(pending) || pending < 0) throw new Error('playlist: bad EXTINF');
    } else if (line === '#EXT-X-ENDLIST') {
      ended = true;
    } else if (!line.startsWith('#')) {
      if (pending == null) throw new Error('playlist: a segment without EXTINF');
      segments.push({ uri: resolve(line, baseUrl), start, duration: pending });
      start += pending;
      pending = null;
    }
  }
  return { init, segments, duration: start, targetDuration, ended };
}

/** The index of the segment that holds time `t` (seconds): the last one starting at or
 *  before it; clamped to the playlist. */
export function segmentAt(segments, t) {
  if (!segments.length) return -1;
  let low = 0;
  let high = segments.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (segments[mid].start <= t) low = mid;
    else high = mid - 1;
  }
  return low;
}
