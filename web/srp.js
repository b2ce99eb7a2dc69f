// Cognito's SRP sign-in (USER_SRP_AUTH, then the PASSWORD_VERIFIER challenge): the password
// never leaves the page. SRP-6a over the 3072-bit group of RFC 3526 with SHA-256, as Cognito
// runs it: hex numbers padded Cognito's way, the session key from HKDF ("Caldera Derived Key",
// 16 bytes), and a claim signed over the pool's name, the user, the challenge's secret block and
// the time. BigInt for the arithmetic, WebCrypto for hashes, HMAC and randomness.

const N_HEX =
  'FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E34' +
  '04DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6' +
  'F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A6916' +
  '3FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C' +
  '32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA95' +
  '6AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA7157' +
  '5D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D876' +
  '02733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E' +
  '4B82D120A93AD2CAFFFFFFFFFFFFFFFF';
export const N = BigInt(`0x${N_HEX}`);
export const G = 2n;

const encoder = new TextEncoder();

/** Cognito's padHex: an even number of digits, and a leading 00 where the first is 8 or more. */
export function padHex(n) {
  const hex = n.toString(16);
  if (hex.length % 2) return `0${hex}`;
  return '89abcdef'.includes(hex[0]) ? `00${hex}` : hex;
}

export function hexToBytes(hex) {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

const bytesToHex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
const bytesToBigInt = (bytes) => BigInt(`0x${bytesToHex(bytes) || '0'}`);

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export function modPow(base, exponent, modulus) {
  let result = 1n;
  let b = ((base % modulus) + modulus) % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
}

const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
const hexHash = async (hex) => bytesToHex(await sha256(hexToBytes(hex)));

async function hmac(key, message) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, message));
}

const base64 = (bytes) => btoa(String.fromCharCode(...bytes));
const unbase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** The client's secret `a` and public `A` (a fresh pair per sign-in). */
export function clientPair() {
  for (;;) {
    const a = bytesToBigInt(crypto.getRandomValues(new Uint8Array(128))) % N;
    const A = modPow(G, a, N);
    if (a !== 0n && A % N !== 0n) return { a, A };
  }
}

/** "Sat Sep 5 09:03:07 UTC 2026": the day not zero-padded, the time is. */
export function cognitoTimestamp(date) {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const two = (n) => String(n).padStart(2, '0');
  return `${days[date.getUTCDay()]} ${months[date.getUTCMonth()]} ${date.getUTCDate()} `
    + `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} UTC ${date.getUTCFullYear()}`;
}

/**
 * The ChallengeResponses of a PASSWORD_VERIFIER challenge: the claim that only the password
 * can make. `poolId` is the user pool's id (its name is what follows the region and `_`).
 * Throws on a challenge no honest server sends (B a multiple of N, or u zero).
 */
export async function passwordClaim({ poolId, password, pair, challenge, now = new Date() }) {
  const poolName = poolId.split('_')[1];
  const userId = challenge.USER_ID_FOR_SRP;
  const B = BigInt(`0x${challenge.SRP_B}`);
  if (B % N === 0n) throw new Error('the sign-in service sent an invalid SRP value');
  const u = BigInt(`0x${await hexHash(padHex(pair.A) + padHex(B))}`);
  if (u === 0n) throw new Error('the sign-in service sent an invalid SRP value');
  const k = BigInt(`0x${await hexHash(padHex(N) + padHex(G))}`);
  const secret = bytesToHex(await sha256(encoder.encode(`${poolName}${userId}:${password}`)));
  const x = BigInt(`0x${await hexHash(padHex(BigInt(`0x${challenge.SALT}`)) + secret)}`);
  const S = modPow(B - k * modPow(G, x, N), pair.a + u * x, N);
  const prk = await hmac(hexToBytes(padHex(u)), hexToBytes(padHex(S)));
  const key = (await hmac(prk, concat(encoder.encode('Caldera Derived Key'), new Uint8Array([1])))).slice(0, 16);
  const timestamp = cognitoTimestamp(now);
  const message = concat(encoder.encode(poolName), encoder.encode(userId), unbase64(challenge.SECRET_BLOCK), encoder.encode(timestamp));
  return {
    USERNAME: userId,
    PASSWORD_CLAIM_SECRET_BLOCK: challenge.SECRET_BLOCK,
    TIMESTAMP: timestamp,
    PASSWORD_CLAIM_SIGNATURE: base64(await hmac(key, message)),
  };
}
