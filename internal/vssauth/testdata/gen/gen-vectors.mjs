// Generates the signature and JWT test vectors of internal/vssauth with
// implementations that share no code with it: @noble/secp256k1 (pure
// JavaScript secp256k1, RFC 6979 nonces) and Node's own crypto (SHA-256,
// HMAC, RSA PKCS#1 v1.5). Run once; the output is committed.
//
//   npm ci && node gen-vectors.mjs
import * as secp from '@noble/secp256k1';
import { createHash, createHmac, generateKeyPairSync, sign as rsaSign } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const sha256 = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
secp.hashes.sha256 = (m) => sha256(m);
secp.hashes.hmacSha256 = (k, m) => new Uint8Array(createHmac('sha256', k).update(m).digest());

const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

// The 64-byte salt of vss-server's SignatureValidatingAuthorizer and
// vss-client's SigsAuthProvider (SIGNING_CONSTANT).
const SALT = 'VSS Signature Authorizer Signing Salt Constant..................';
if (SALT.length !== 64) throw new Error('salt must be 64 bytes');

// The verifier's clock for every vector; window one hour.
const NOW = 1764460800; // 2025-11-30T00:00:00Z

const digestFor = (pub, time) => sha256(Buffer.from(SALT, 'ascii'), pub, Buffer.from(time, 'ascii'));
const signDigest = (priv, digest) => secp.sign(digest, priv, { prehash: false, lowS: true });

const keys = [
  { name: 'one', priv: '0000000000000000000000000000000000000000000000000000000000000001' },
  // vss-server's own test (auth-impls/src/signature.rs) signs with [42; 32].
  { name: 'vss-server-test-key', priv: '2a'.repeat(32) },
  { name: 'n-minus-1', priv: (N - 1n).toString(16).padStart(64, '0') },
  { name: 'fixed-a', priv: 'c28a9f80738f770d527803a566cf6fc3edf6cea586c4fc4a5223a5ad797e1ac3' },
  { name: 'fixed-b', priv: '0b432b2677937381aef05bb02a66ecd012773062cf3fa2549e44f58ed2401710' },
];

const valid = [];
for (const k of keys) {
  const pub = secp.getPublicKey(unhex(k.priv), true);
  for (const time of [String(NOW), String(NOW - 3599), String(NOW + 3599), String(NOW - 1)]) {
    const digest = digestFor(pub, time);
    const sig = signDigest(unhex(k.priv), digest);
    if (!secp.verify(sig, digest, pub, { prehash: false, lowS: true })) throw new Error('self-check');
    valid.push({
      key: k.name, privkey: k.priv, pubkey: hex(pub), time, digest: hex(digest),
      signature: hex(sig), header: hex(pub) + hex(sig) + time,
    });
  }
}

const invalid = [];
const base = valid.find((v) => v.key === 'fixed-a' && v.time === String(NOW));
const other = valid.find((v) => v.key === 'fixed-b' && v.time === String(NOW));

// Same signature with s replaced by n - s: valid ECDSA, but high-S, which
// libsecp256k1 (and so the reference) refuses.
{
  const r = base.signature.slice(0, 64);
  const s = BigInt('0x' + base.signature.slice(64));
  const highS = (N - s).toString(16).padStart(64, '0');
  const sigHigh = unhex(r + highS);
  if (!secp.verify(sigHigh, unhex(base.digest), unhex(base.pubkey), { prehash: false, lowS: false })) throw new Error('high-S must verify without lowS');
  invalid.push({ reason: 'high-S', header: base.pubkey + r + highS + base.time });
}
// Key A's signature presented with key B.
invalid.push({ reason: 'wrong key', header: other.pubkey + base.signature + base.time });
// Signature made for one time, header claiming the next second.
invalid.push({ reason: 'signed another time', header: base.pubkey + base.signature + String(NOW + 1) });
// Signatures over near-miss constructions of the message.
const pubA = unhex(base.pubkey);
const privA = unhex(keys.find((k) => k.name === 'fixed-a').priv);
const near = {
  'no salt': sha256(pubA, Buffer.from(base.time)),
  'salt without dots': sha256(Buffer.from('VSS Signature Authorizer Signing Salt Constant'), pubA, Buffer.from(base.time)),
  'uncompressed key in message': sha256(Buffer.from(SALT), secp.getPublicKey(privA, false), Buffer.from(base.time)),
  'double SHA-256': sha256(digestFor(pubA, base.time)),
  'hex key in message': sha256(Buffer.from(SALT), Buffer.from(base.pubkey, 'ascii'), Buffer.from(base.time)),
  'time as 8-byte big-endian': sha256(Buffer.from(SALT), pubA, Buffer.from(BigInt(NOW).toString(16).padStart(16, '0'), 'hex')),
};
for (const [reason, digest] of Object.entries(near)) {
  invalid.push({ reason: 'signed ' + reason, header: base.pubkey + hex(signDigest(privA, digest)) + base.time });
}
// r = 0, s = 0, r = n, s = n: not valid signatures at all.
const r0 = base.signature.slice(0, 64), s0 = base.signature.slice(64);
const nHex = N.toString(16);
invalid.push({ reason: 'r zero', header: base.pubkey + '0'.repeat(64) + s0 + base.time });
invalid.push({ reason: 's zero', header: base.pubkey + r0 + '0'.repeat(64) + base.time });
invalid.push({ reason: 'r equals n', header: base.pubkey + nHex + s0 + base.time });
invalid.push({ reason: 's equals n', header: base.pubkey + r0 + nHex + base.time });
// Outside the one-hour window, correctly signed.
for (const [reason, t] of [['expired', NOW - 3601], ['future-dated', NOW + 3601]]) {
  const time = String(t);
  invalid.push({ reason, header: base.pubkey + hex(signDigest(privA, digestFor(pubA, time))) + time });
}

writeFileSync('../signature-vectors.json', JSON.stringify({
  source: 'internal/vssauth/testdata/gen/gen-vectors.mjs: @noble/secp256k1 3.2.0 and Node crypto, not the Go code under test',
  salt: SALT,
  now: NOW,
  window_seconds: 3600,
  valid,
  invalid,
}, null, 1) + '\n');

// JWT: an RS256 issuer key made by Node (OpenSSL), tokens signed by Node.
const b64u = (b) => Buffer.from(b).toString('base64url');
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwt = (header, claims) => {
  const input = b64u(JSON.stringify(header)) + '.' + b64u(JSON.stringify(claims));
  return input + '.' + b64u(rsaSign('sha256', Buffer.from(input), privateKey));
};
const rs = { alg: 'RS256', typ: 'JWT' };
const tokens = [
  { name: 'valid', accept: true, sub: 'user-1', token: jwt(rs, { sub: 'user-1', exp: NOW + 3600 }) },
  { name: 'expired within 60 s skew', accept: true, sub: 'user-1', token: jwt(rs, { sub: 'user-1', exp: NOW - 60 }) },
  { name: 'nbf and iat in the future are not checked (as the reference)', accept: true, sub: 'user-2', token: jwt(rs, { sub: 'user-2', exp: NOW + 60, nbf: NOW + 600, iat: NOW + 600 }) },
  { name: 'iss and kid are not checked', accept: true, sub: 'user-3', token: jwt({ ...rs, kid: 'any' }, { sub: 'user-3', exp: NOW + 60, iss: 'https://issuer.example' }) },
  { name: 'aud null is absent', accept: true, sub: 'user-4', token: jwt(rs, { sub: 'user-4', exp: NOW + 60, aud: null }) },
  { name: 'expired beyond skew', accept: false, token: jwt(rs, { sub: 'user-1', exp: NOW - 61 }) },
  { name: 'exp missing', accept: false, token: jwt(rs, { sub: 'user-1' }) },
  { name: 'exp not an integer', accept: false, token: jwt(rs, { sub: 'user-1', exp: String(NOW + 60) }) },
  { name: 'exp fractional', accept: false, token: jwt(rs, { sub: 'user-1', exp: NOW + 60.5 }) },
  { name: 'exp negative', accept: false, token: jwt(rs, { sub: 'user-1', exp: -1 }) },
  { name: 'sub missing', accept: false, token: jwt(rs, { exp: NOW + 60 }) },
  { name: 'sub not a string', accept: false, token: jwt(rs, { sub: 7, exp: NOW + 60 }) },
  { name: 'sub empty', accept: false, token: jwt(rs, { sub: '', exp: NOW + 60 }) },
  { name: 'sub longer than 120 characters', accept: false, token: jwt(rs, { sub: 'u'.repeat(121), exp: NOW + 60 }) },
  { name: 'aud set', accept: false, token: jwt(rs, { sub: 'user-1', exp: NOW + 60, aud: 'vss' }) },
  { name: 'aud list', accept: false, token: jwt(rs, { sub: 'user-1', exp: NOW + 60, aud: ['vss'] }) },
  { name: 'alg RS512 signed with RS256', accept: false, token: jwt({ alg: 'RS512' }, { sub: 'user-1', exp: NOW + 60 }) },
  { name: 'alg missing', accept: false, token: jwt({ typ: 'JWT' }, { sub: 'user-1', exp: NOW + 60 }) },
];
{
  // alg none: no signature at all.
  const input = b64u(JSON.stringify({ alg: 'none' })) + '.' + b64u(JSON.stringify({ sub: 'user-1', exp: NOW + 60 }));
  tokens.push({ name: 'alg none', accept: false, token: input + '.' });
  // HS256 keyed with the public key's PEM (the classic key-confusion forgery).
  const pem = publicKey.export({ type: 'spki', format: 'pem' });
  const hsInput = b64u(JSON.stringify({ alg: 'HS256' })) + '.' + b64u(JSON.stringify({ sub: 'user-1', exp: NOW + 60 }));
  tokens.push({ name: 'alg HS256 keyed with the public key', accept: false, token: hsInput + '.' + b64u(createHmac('sha256', pem).update(hsInput).digest()) });
  // Another issuer's key.
  const { privateKey: otherKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const oInput = b64u(JSON.stringify(rs)) + '.' + b64u(JSON.stringify({ sub: 'user-1', exp: NOW + 60 }));
  tokens.push({ name: 'signed by another key', accept: false, token: oInput + '.' + b64u(rsaSign('sha256', Buffer.from(oInput), otherKey)) });
  // Claims changed after signing.
  const good = tokens[0].token.split('.');
  tokens.push({ name: 'claims changed after signing', accept: false, token: good[0] + '.' + b64u(JSON.stringify({ sub: 'user-2', exp: NOW + 3600 })) + '.' + good[2] });
}
const { publicKey: shortPub } = generateKeyPairSync('rsa', { modulusLength: 1024 });
writeFileSync('../jwt-vectors.json', JSON.stringify({
  source: 'internal/vssauth/testdata/gen/gen-vectors.mjs: Node crypto (OpenSSL), not the Go code under test',
  now: NOW,
  public_key_pem: publicKey.export({ type: 'spki', format: 'pem' }),
  public_key_pkcs1_pem: publicKey.export({ type: 'pkcs1', format: 'pem' }),
  short_public_key_pem: shortPub.export({ type: 'spki', format: 'pem' }),
  tokens,
}, null, 1) + '\n');
