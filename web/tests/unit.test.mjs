// The pure helpers of the web client: node --test tests/unit.test.mjs
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  jwtPayload, tokenExpiryMs, displayName, nextDelay, backoffSchedule, asSentence, rejectionSentence,
  problemSentence, retryAfterSeconds, uploadLimitSentence, cognitoSentence, notificationsLabel,
  uploadHeaders, mergeFirstPage, toMs, timeAgo,
} from '../logic.js';

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
  assert.equal(cognitoSentence('NotAuthorizedException', true), 'Your session has ended; please sign in again.');
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
  const shown = [{ image_id: 'b', likes: 1 }, { image_id: 'a', likes: 0 }, { image_id: 'z', likes: 0 }];
  const page = [{ image_id: 'c', likes: 0 }, { image_id: 'b', likes: 2 }];
  assert.deepEqual(mergeFirstPage(shown, page).map((i) => `${i.image_id}${i.likes}`), ['c0', 'b2', 'a0', 'z0']);
});

test('dates in ms, seconds or ISO text', () => {
  assert.equal(toMs(1700000000), 1700000000000);
  assert.equal(toMs(1700000000000), 1700000000000);
  assert.equal(toMs('2023-11-14T22:13:20Z'), 1700000000000);
  assert.equal(toMs('soon'), null);
  assert.equal(timeAgo(1000, 10000), 'just now');
  assert.equal(timeAgo(0, 5 * 60000), '5 minutes ago');
});
