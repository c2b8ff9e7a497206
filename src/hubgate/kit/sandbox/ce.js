// `CE`, the helper library of Open Connectors scripts (D241), compiled into a context only when
// the script's text mentions `CE`. Called with the country and currency tables (JSON text, read
// on first use); returns the frozen `CE` object.
(function (tablesJson) {
  'use strict';
  const stringify = JSON.stringify;
  let tables = null;
  function table(name) {
    if (tables === null) tables = JSON.parse(tablesJson);
    return tables[name];
  }

  // --- bytes, hashes and HMAC --------------------------------------------------------------
  // --- bytes, hashes and HMAC --------------------------------------------------------------
  function utf8(text) {
    const binary = unescape(encodeURIComponent(String(text)));
    const bytes = new Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }
  function toHex(bytes) {
    let out = '';
    for (const b of bytes) out += (b < 16 ? '0' : '') + b.toString(16);
    return out;
  }
  function toBase64(bytes) {
    let binary = '';
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
  }
  // Message padding shared by MD5 (little-endian length) and the SHA family (big-endian).
  function pad(bytes, littleEndian) {
    const out = bytes.slice();
    const bitLength = bytes.length * 8;
    out.push(0x80);
    while (out.length % 64 !== 56) out.push(0);
    const length = [];
    let rest = bitLength;
    for (let i = 0; i < 8; i++) {
      length.push(rest % 256);
      rest = Math.floor(rest / 256);
    }
    return out.concat(littleEndian ? length : length.reverse());
  }
  function wordsBE(bytes, offset, count) {
    const w = new Array(count);
    for (let i = 0; i < count; i++) {
      const j = offset + i * 4;
      w[i] = ((bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3]) | 0;
    }
    return w;
  }
  function bytesBE(words) {
    const out = [];
    for (const w of words) out.push((w >>> 24) & 255, (w >>> 16) & 255, (w >>> 8) & 255, w & 255);
    return out;
  }
  const rotl = (x, n) => (x << n) | (x >>> (32 - n));
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));

  // MD5 (RFC 1321): per-round shifts, and T[i] = floor(|sin(i + 1)| * 2^32).
  const MD5_SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
  let MD5_T = null;
  function md5(bytes) {
    if (MD5_T === null) {
      MD5_T = [];
      for (let i = 0; i < 64; i++) MD5_T.push(Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0);
    }
    const m = pad(bytes, true);
    let a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476;
    for (let off = 0; off < m.length; off += 64) {
      const x = new Array(16);
      for (let i = 0; i < 16; i++) {
        const j = off + i * 4;
        x[i] = m[j] | (m[j + 1] << 8) | (m[j + 2] << 16) | (m[j + 3] << 24);
      }
      let a = a0, b = b0, c = c0, d = d0;
      for (let i = 0; i < 64; i++) {
        const round = i >> 4;
        let f, g;
        if (round === 0) { f = (b & c) | (~b & d); g = i; }
        else if (round === 1) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
        else if (round === 2) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
        else { f = c ^ (b | ~d); g = (7 * i) % 16; }
        const sum = (a + f + MD5_T[i] + x[g]) | 0;
        a = d; d = c; c = b;
        b = (b + rotl(sum, MD5_SHIFTS[round * 4 + (i % 4)])) | 0;
      }
      a0 = (a0 + a) | 0; b0 = (b0 + b) | 0; c0 = (c0 + c) | 0; d0 = (d0 + d) | 0;
    }
    const out = [];
    for (const w of [a0, b0, c0, d0]) out.push(w & 255, (w >>> 8) & 255, (w >>> 16) & 255, (w >>> 24) & 255);
    return out;
  }

  // SHA-1 (FIPS 180-4, 6.1).
  function sha1(bytes) {
    const m = pad(bytes, false);
    const h = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xc3d2e1f0 | 0];
    for (let off = 0; off < m.length; off += 64) {
      const w = wordsBE(m, off, 16);
      for (let t = 16; t < 80; t++) w.push(rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1));
      let [a, b, c, d, e] = h;
      for (let t = 0; t < 80; t++) {
        let f, k;
        if (t < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
        else if (t < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
        else if (t < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc | 0; }
        else { f = b ^ c ^ d; k = 0xca62c1d6 | 0; }
        const temp = (rotl(a, 5) + f + e + k + w[t]) | 0;
        e = d; d = c; c = rotl(b, 30); b = a; a = temp;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0;
      h[3] = (h[3] + d) | 0; h[4] = (h[4] + e) | 0;
    }
    return bytesBE(h);
  }

  // SHA-256 (FIPS 180-4, 6.2): the constants are the first 32 bits of the fractional parts of
  // the square roots (initial hash) and cube roots (K) of the first primes.
  const frac32 = (x) => Math.floor((x - Math.floor(x)) * 4294967296) | 0;
  let SHA256_H = null;
  let SHA256_K = null;
  function sha256(bytes) {
    if (SHA256_K === null) {
      const primes = [];
      for (let n = 2; primes.length < 64; n++) {
        if (primes.every((p) => n % p !== 0)) primes.push(n);
      }
      SHA256_H = primes.slice(0, 8).map((p) => frac32(Math.sqrt(p)));
      SHA256_K = primes.map((p) => frac32(Math.cbrt(p)));
    }
    const m = pad(bytes, false);
    const h = SHA256_H.slice();
    for (let off = 0; off < m.length; off += 64) {
      const w = wordsBE(m, off, 16);
      for (let t = 16; t < 64; t++) {
        const s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >>> 3);
        const s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >>> 10);
        w.push((w[t - 16] + s0 + w[t - 7] + s1) | 0);
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let t = 0; t < 64; t++) {
        const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + SHA256_K[t] + w[t]) | 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      const next = [a, b, c, d, e, f, g, hh];
      for (let i = 0; i < 8; i++) h[i] = (h[i] + next[i]) | 0;
    }
    return bytesBE(h);
  }

  const HASHES = { md5: md5, sha1: sha1, sha256: sha256 };
  const ENCODINGS = { hex: toHex, base64: toBase64 };
  // HMAC (RFC 2104); all three hashes have 64-byte blocks.
  function hmacBytes(hash, key, message) {
    let k = utf8(key);
    if (k.length > 64) k = hash(k);
    while (k.length < 64) k.push(0);
    const inner = hash(k.map((b) => b ^ 0x36).concat(utf8(message)));
    return hash(k.map((b) => b ^ 0x5c).concat(inner));
  }
  function pick(table, name, what) {
    const found = Object.prototype.hasOwnProperty.call(table, String(name).toLowerCase())
      ? table[String(name).toLowerCase()]
      : undefined;
    if (found === undefined) {
      throw new TypeError('unknown ' + what + ' ' + stringify(String(name)) + '; use one of ' + Object.keys(table).join(', '));
    }
    return found;
  }
  function hmac(algorithm) {
    const hash = pick(HASHES, algorithm, 'HMAC algorithm');
    return function (encoding) {
      const encode = pick(ENCODINGS, encoding, 'encoding');
      return function (secret, message) {
        return encode(hmacBytes(hash, secret, message));
      };
    };
  }

  // --- random values -----------------------------------------------------------------------
  const ALPHANUMERIC = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  function randomString(length) {
    const n = length === undefined ? 10 : Math.max(0, Math.floor(Number(length)) || 0);
    let out = '';
    for (let i = 0; i < n; i++) out += ALPHANUMERIC[Math.floor(Math.random() * ALPHANUMERIC.length)];
    return out;
  }

  // --- countries and currencies (tables from the CLDR data the host ships) -----------------
  function lookup(table, key) {
    if (key === undefined || key === null) return null;
    const found = table[String(key).trim().toLowerCase()];
    return found === undefined ? null : found;
  }
  function countryOf(name) {
    return lookup(table('countries'), name);
  }

  const CE = Object.freeze({
    randomString: randomString,
    randomEmail: () => randomString(10).toLowerCase() + '@' + randomString(8).toLowerCase() + '.com',
    md5: (text) => toHex(md5(utf8(text))),
    b64: (text) => toBase64(utf8(text)),
    decode64: (text) => decodeURIComponent(escape(atob(String(text)))),
    hmac: hmac,
    hmacMd5Hex: hmac('md5')('hex'),
    hmacMd5Base64: hmac('md5')('base64'),
    hmacSha1Hex: hmac('sha1')('hex'),
    hmacSha1Base64: hmac('sha1')('base64'),
    hmacSha256Hex: hmac('sha256')('hex'),
    hmacSha256Base64: hmac('sha256')('base64'),
    // A country name (or its ISO code) to its currency, e.g. 'United States' -> 'USD'.
    currencyCode: (country) => {
      const code = countryOf(country);
      return code === null ? null : lookup(table('currencies'), code);
    },
    currencySymbol: (currency) => lookup(table('symbols'), currency),
    iso2CountryCode: (country) => countryOf(country),
    iso3CountryCode: (country) => {
      const code = countryOf(country);
      return code === null ? null : lookup(table('alpha3'), code);
    },
  });

  return CE;
})
