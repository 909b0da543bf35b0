// Snowflake ids travel as decimal strings (past 2^53 a JS number loses digits).

/** Order two ids numerically without converting them: shorter is smaller, then by digits. */
export function compareIds(a, b) {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function maxId(a, b) {
  if (a == null) return b;
  if (b == null) return a;
  return compareIds(a, b) >= 0 ? a : b;
}

/** A send's nonce: at most 25 characters, unique enough per author for 5 minutes. */
export function newNonce() {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const ID_EPOCH_MS = 1767225600000n; // docs/api.md: an id's time is (id >> 22) + this

/** When an id was made, in Unix milliseconds. */
export function idTime(id) {
  return Number((BigInt(id) >> 22n) + ID_EPOCH_MS);
}

/** The smallest id made at `ms` (ids of that millisecond are >= it): a bound for searches. */
export function idAt(ms) {
  const since = BigInt(Math.floor(ms)) - ID_EPOCH_MS;
  return (since > 0n ? since << 22n : 0n).toString();
}
