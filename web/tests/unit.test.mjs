// The pure helpers of the web client: node --test tests/unit.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  jwtPayload, tokenExpiryMs, displayName, nextDelay, backoffSchedule, asSentence, rejectionSentence,
  problemSentence, retryAfterSeconds, uploadLimitSentence, cognitoSentence, notificationsLabel,
  uploadHeaders, mergeFirstPage, toMs, timeAgo, photoHref, photoOf, takenLine, applyPush, reconnectDelay,
} from '../logic.js';
import { decodeBlurhash } from '../placeholder.js';

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
const jwt = (payload) => `${b64url({ alg: 'RS256', kid: 'k' })}.${b64url(payload)}.c2ln`;

test('JWT payloads are base64url JSON, UTF-8 included', () => {
  // "ü" and "?" make '-' and '_' appear in base64url and need the padding put back.
  const token = jwt({ sub: 'u-1', username: 'zoë', exp: 1700000000, note: '>>>???' });
  assert.match(token.split('.')[1], /[-_]/);
  assert.deepEqual(jwtPayload(token), { sub: 'u-1', username: 'zoë', exp: 1700000000, note: '>>>???' });
  assert.equal(tokenExpiryMs(token), 1700000000000);
  assert.equal(displayName(token), 'zoë');
});

test('tokens that are not JWTs decode to nothing', () => {
  for (const bad of [undefined, '', 'abc', 'a.!!!.c', `x.${Buffer.from('[1]').toString('base64url')}.y`, 'a..c']) {
    assert.equal(jwtPayload(bad), null);
    assert.equal(tokenExpiryMs(bad), 0);
  }
});

test('the display name falls back to the ID token, then to sub', () => {
  assert.equal(displayName(jwt({ sub: 's' }), jwt({ 'cognito:username': 'bob' })), 'bob');
  assert.equal(displayName(jwt({ sub: 's' })), 's');
});

test('backoff doubles from 1 s to its cap', () => {
  const seq = [];
  for (let d = 0, i = 0; i < 7; i++) seq.push((d = nextDelay(d)));
  assert.deepEqual(seq, [1000, 2000, 4000, 8000, 10000, 10000, 10000]);
  assert.deepEqual(backoffSchedule({ max: 15000, total: 30000 }), [1000, 2000, 4000, 8000, 15000]);
  const pending = backoffSchedule({ max: 10000, total: 300000 });
  assert.ok(pending.reduce((a, b) => a + b, 0) <= 300000);
  assert.equal(pending.length, 32); // 1+2+4+8 s, then every 10 s
  assert.equal(nextDelay(40000, { max: 60000 }), 60000);
});

test('rejections read as sentences', () => {
  assert.equal(rejectionSentence({ reason: 'undecodable' }), 'This file could not be read as an image.');
  assert.equal(rejectionSentence({ reason: 'too_large' }), 'This photo is too large.');
  assert.equal(rejectionSentence({ reason: 'unsupported_format' }), 'This file type is not supported.');
  assert.equal(rejectionSentence({ reason: 'corrupt' }), 'This file could not be read as an image; it may be damaged.');
  assert.equal(rejectionSentence({ reason: 'cosmic_rays' }), 'This photo was rejected (cosmic_rays).');
  assert.equal(rejectionSentence({}), 'This photo was rejected.');
  assert.equal(rejectionSentence({ reason: 'too_large', message: 'the file is over the limit' }), 'The file is over the limit.');
  assert.equal(rejectionSentence({ reason: 'too_large', message: '  ' }), 'This photo is too large.');
});

test('problems become sentences, never raw JSON', () => {
  assert.equal(problemSentence({ type: 'urn:x', title: 'Not found', status: 404, detail: 'no image abc' }, 404), 'No image abc.');
  assert.equal(problemSentence({ title: 'Sign in first' }, 401), 'Sign in first.');
  assert.equal(problemSentence(null, 502), 'The server had a problem (HTTP 502); try again in a moment.');
  assert.equal(problemSentence('<html>', 400), 'The request failed (HTTP 400).');
  assert.equal(asSentence('done!'), 'Done!');
});

test('Retry-After from the header, else from the problem body', () => {
  assert.equal(retryAfterSeconds('120', null), 120);
  assert.equal(retryAfterSeconds(' 90 ', { retry_after: 30 }), 90);
  assert.equal(retryAfterSeconds('soon', { retry_after: 30 }), 30);
  assert.equal(retryAfterSeconds(null, { retry_after: 30 }), 30);
  assert.equal(retryAfterSeconds(null, {}), null);
  assert.equal(uploadLimitSentence(1500), 'You have reached your hourly upload limit; try again in 25 minutes.');
  assert.equal(uploadLimitSentence(30), 'You have reached your hourly upload limit; try again in 1 minute.');
  assert.equal(uploadLimitSentence(null), 'You have reached your hourly upload limit; try again later.');
});

test('Cognito errors as sentences', () => {
  assert.equal(cognitoSentence('NotAuthorizedException'), 'Wrong username or password.');
  assert.equal(cognitoSentence('com.amazonaws.cognito#UserNotFoundException'), 'Wrong username or password.');
  assert.equal(cognitoSentence('NotAuthorizedException', 'refresh'), 'Your session has ended; please sign in again.');
  assert.equal(cognitoSentence('CodeMismatchException', 'signup'), 'That code is not the one we sent; check the email and try again.');
  assert.equal(cognitoSentence('InvalidParameterException', 'signup'), 'Check the username, the name and the email: one of them is not accepted.');
  assert.equal(cognitoSentence('UsernameExistsException', 'signup'), 'That username is taken; choose another.');
  assert.equal(cognitoSentence('InvalidParameterException'), 'Enter a username and a password.');
  assert.equal(cognitoSentence(undefined), 'Sign-in failed; please try again.');
});

test('the Notifications button is named with its unread count', () => {
  assert.equal(notificationsLabel(0), 'Notifications');
  assert.equal(notificationsLabel(2), 'Notifications (2 unread)');
});

test('the browser owns content-length and host of the presigned PUT', () => {
  const headers = { 'content-type': 'image/jpeg', 'Content-Length': '12345', host: 'b.s3', 'x-amz-meta-correlation-id': 'c' };
  assert.deepEqual(uploadHeaders(headers), [['content-type', 'image/jpeg'], ['x-amz-meta-correlation-id', 'c']]);
  assert.deepEqual(uploadHeaders(undefined), []);
});

test('a fresh first page goes on top and keeps the older pages', () => {
  const at = (image_id, published_at, likes) => ({ image_id, published_at, likes });
  const shown = [at('b', 40, 1), at('a', 20, 0), at('z', 10, 0)];
  const page = [at('c', 50, 0), at('b', 40, 2)];
  assert.deepEqual(mergeFirstPage(shown, page).map((i) => `${i.image_id}${i.likes}`), ['c0', 'b2', 'a0', 'z0']);
});

test('a photo deleted from the first page leaves it; older pages stay until the list is whole', () => {
  const at = (image_id, published_at) => ({ image_id, published_at });
  const shown = [at('c', 50), at('gone', 45), at('b', 40), at('a', 20)];
  const page = [at('c', 50), at('b', 40)];
  assert.deepEqual(mergeFirstPage(shown, page).map((i) => i.image_id), ['c', 'b', 'a']);
  assert.deepEqual(mergeFirstPage(shown, page, { complete: true }).map((i) => i.image_id), ['c', 'b']);
  assert.deepEqual(mergeFirstPage(shown, [], { complete: true }), []);
});

test('dates in ms, seconds or ISO text', () => {
  assert.equal(toMs(1700000000), 1700000000000);
  assert.equal(toMs(1700000000000), 1700000000000);
  assert.equal(toMs('2023-11-14T22:13:20Z'), 1700000000000);
  assert.equal(toMs('soon'), null);
  assert.equal(timeAgo(1000, 10000), 'just now');
  assert.equal(timeAgo(0, 5 * 60000), '5 minutes ago');
});

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { N, G, padHex, modPow, clientPair, passwordClaim, cognitoTimestamp } from '../srp.js';

test('SRP numbers are padded as Cognito pads them', () => {
  assert.equal(padHex(0x1n), '01');
  assert.equal(padHex(0x7fn), '7f');
  assert.equal(padHex(0x80n), '0080');
  assert.equal(padHex(0xabcn), '0abc');
  assert.equal(modPow(-3n, 3n, 7n), 1n); // (-3)^3 = -27 ≡ 1 (mod 7): a negative base wraps
});

test('the SRP timestamp is Cognito\'s: the day unpadded, the time padded', () => {
  assert.equal(cognitoTimestamp(new Date(Date.UTC(2026, 8, 5, 9, 3, 7))), 'Sat Sep 5 09:03:07 UTC 2026');
  assert.equal(cognitoTimestamp(new Date(Date.UTC(2026, 11, 17, 18, 30, 0))), 'Thu Dec 17 18:30:00 UTC 2026');
});

test('the password claim is the one the server computes from the verifier alone', async () => {
  // Prepare: the server's side, written from the verifier (v = g^x) and its own secret b
  const hex = (b) => b.toString('hex');
  const sha = (buf) => createHash('sha256').update(buf).digest();
  const H = (hexText) => BigInt(`0x${hex(sha(Buffer.from(hexText, 'hex')))}`);
  const poolId = 'us-east-1_Pool1234', userId = 'alice', password = 'Local-alice-Passw0rd!';
  const salt = BigInt(`0x${hex(randomBytes(16))}`);
  const x = H(padHex(salt) + hex(sha(Buffer.from(`Pool1234${userId}:${password}`))));
  const v = modPow(G, x, N);
  const k = H(padHex(N) + padHex(G));
  const b = BigInt(`0x${hex(randomBytes(128))}`);
  const B = (k * v + modPow(G, b, N)) % N;
  const secretBlock = randomBytes(64).toString('base64');
  const challenge = { SALT: salt.toString(16), SRP_B: B.toString(16), USER_ID_FOR_SRP: userId, SECRET_BLOCK: secretBlock };
  const pair = clientPair();
  const now = new Date(Date.UTC(2026, 11, 7, 18, 0, 0));

  // Act
  const claim = await passwordClaim({ poolId, password, pair, challenge, now });
  const wrong = await passwordClaim({ poolId, password: `${password}x`, pair, challenge, now });

  // Assess: S = (A v^u)^b on the server's side makes the same signature; a wrong password not
  const u = H(padHex(pair.A) + padHex(B));
  const S = modPow(pair.A * modPow(v, u, N), b, N);
  const prk = createHmac('sha256', Buffer.from(padHex(u), 'hex')).update(Buffer.from(padHex(S), 'hex')).digest();
  const key = createHmac('sha256', prk).update(Buffer.concat([Buffer.from('Caldera Derived Key'), Buffer.from([1])])).digest().subarray(0, 16);
  const message = Buffer.concat([Buffer.from('Pool1234'), Buffer.from(userId), Buffer.from(secretBlock, 'base64'), Buffer.from(claim.TIMESTAMP)]);
  const expected = createHmac('sha256', key).update(message).digest('base64');
  assert.equal(claim.TIMESTAMP, 'Mon Dec 7 18:00:00 UTC 2026');
  assert.equal(claim.PASSWORD_CLAIM_SIGNATURE, expected);
  assert.notEqual(wrong.PASSWORD_CLAIM_SIGNATURE, expected);
  assert.equal(claim.USERNAME, userId);
});

test('a photo page address round-trips any id, and other fragments name no photo', () => {
  for (const id of ['0b6f2c1e-1d7a-4c2b-9a53-6c1b2d3e4f50', 'sunset over the bay', 'a&b=c']) {
    assert.equal(photoOf(photoHref(id)), id);
  }
  for (const other of ['', '#', '#photos', '#photo=', '#photo=a&x=1']) assert.equal(photoOf(other), null, other);
});

test('a placeholder decodes to the colours resize hashed', () => {
  // What resize's placeholder.rs makes of a flat 16 x 8 image of (200, 40, 90).
  const flat = 'LNM_Ai,ufQ,u||o2fQo2fQfQfQfQ';
  const px = decodeBlurhash(flat, 16, 8);
  assert.equal(px.length, 16 * 8 * 4);
  const far = Math.max(...[0, 1, 2].flatMap((c) => Array.from({ length: 16 * 8 }, (_, p) => Math.abs(px[p * 4 + c] - [200, 40, 90][c]))));
  assert.ok(far <= 45, `the farthest pixel is ${far} off`);
  assert.equal(px[(4 * 16 + 8) * 4 + 3], 255, 'opaque');
  for (const bad of [undefined, '', 'L', 'LNM_Ai', `${flat}x`, flat.replace('N', '"')]) {
    assert.equal(decodeBlurhash(bad, 4, 4), null, String(bad));
  }
});

test('what a photo says of itself reads as one line, in the camera\'s own time', () => {
  assert.equal(takenLine({ taken_at: '2025-06-21T21:14:00+01:00', camera: 'FUJIFILM X100V', lens: 'XF23mm' }),
    'Taken 21 Jun 2025, 21:14 · FUJIFILM X100V · XF23mm');
  assert.equal(takenLine({ taken_at: '2024-01-05T07:03:00' }), 'Taken 5 Jan 2024, 07:03');
  assert.equal(takenLine({ camera: 'X100V' }), 'X100V');
  assert.equal(takenLine({ taken_at: '2024-13-05T07:03:00' }), '');
  assert.equal(takenLine({}), '');
});

test('a push replaces its notifications, removes the gone ones and keeps the newest first', () => {
  const n = (id, at, text = id) => ({ id, updated_at: new Date(at).toISOString(), text });
  const shown = [n('a', 3000), n('b', 2000), n('c', 1000)];
  const after = applyPush(shown, { items: [n('b', 5000, 'b2'), n('d', 4000)], removed: ['c'] });
  assert.deepEqual(after.map((x) => [x.id, x.text]), [['b', 'b2'], ['d', 'd'], ['a', 'a']]);
  assert.equal(applyPush(shown, {}).length, 3);
  assert.equal(applyPush(shown, { items: [n('e', 9000)] }, 2).length, 2);
});

test('reconnects wait a jittered, doubling, capped time', () => {
  assert.equal(reconnectDelay(0, () => 1), 1000);
  assert.equal(reconnectDelay(3, () => 1), 8000);
  assert.equal(reconnectDelay(30, () => 1), 30000);
  assert.equal(reconnectDelay(5, () => 0), 500, 'never a tight loop');
  const spread = new Set(Array.from({ length: 20 }, () => reconnectDelay(4)));
  assert.ok(spread.size > 1, 'jittered');
});
