// snapglow's web client: sign-in, upload, my photos, the feed with likes, notifications.
import { createAuth, AuthError } from './auth.js';
import { createApi, putFile, OFFLINE } from './api.js';
import { applyPush, backoffSchedule, mergeFirstPage, photoOf, rejectionSentence, retryAfterSeconds, toMs } from './logic.js';
import { createLive } from './live.js';
import { $, h, say, renderMine, renderFeed, renderBadge, renderNotifications, renderPhoto, renderLikers } from './views.js';

const FRESH_MS = 10 * 60000; // presigned URLs are reused this long: no re-download
const PENDING_WATCH_MS = 5 * 60000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let auth, api, state, live;
let epoch = 0; // +1 at each sign-in/out: late answers of an old session are dropped
const pollers = [];

const fresh = () => ({
  mine: [], details: new Map(), watching: new Set(), feed: [], cursor: null, pages: 1, likeSeq: new Map(),
  gone: new Set(), // photos deleted here: listings may still name them for a moment (indexes lag)
  thumbs: new Map(), // image id → the notifications' thumbnail URL and when it was signed
  notifications: [], markedRead: new Set(), highlighted: new Set(),
  likers: [], likersCursor: null, profileOpen: false,
});

function report(e) {
  if (e instanceof AuthError && !e.network) return; // sign-out already said why
  say(e?.message || 'Something went wrong; please try again.', 'error');
}

let offline = false;
const pollNow = () => pollers.forEach((p) => p.tick());
function onNetwork(down) {
  if (down) say(OFFLINE, 'error');
  else if (offline) {
    if ($('status').textContent === OFFLINE) say('');
    setTimeout(pollNow); // back online: every poller at once, not after its backoff
  }
  offline = down;
}

/**
 * Runs `fn` now, then every `every` ms (a number, or a function giving it) while the page is
 * visible; errors double the wait up to `max`.
 */
function poller(fn, every, max) {
  const interval = () => (typeof every === 'function' ? every() : every);
  let delay = interval(), timer = 0, running = false, again = false, stopped = false;
  const tick = async () => {
    clearTimeout(timer);
    if (stopped || document.hidden) return;
    // A tick while `fn` runs asks for a run that starts after it (a socket that just opened
    // needs a read that began after it did).
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await fn();
      delay = interval();
    } catch (e) {
      delay = Math.min(delay * 2, max);
      report(e);
    }
    running = false;
    const soon = again;
    again = false;
    if (!stopped && !document.hidden) timer = setTimeout(tick, soon ? 0 : delay);
  };
  const handle = { tick, stop() { stopped = true; clearTimeout(timer); } };
  pollers.push(handle);
  tick();
  return handle;
}

document.addEventListener('visibilitychange', () => document.hidden || pollNow());
addEventListener('online', pollNow);

// My photos

const showMine = () => renderMine(state.mine, state.details, state.mineLoaded, deletePhoto);
const imagePath = (id) => `/images/${encodeURIComponent(id)}`;

function remember(image) {
  state.details.set(image.image_id, { data: image, at: Date.now() });
  const mine = state.mine.find((i) => i.image_id === image.image_id);
  if (mine) Object.assign(mine, { status: image.status, reason: image.reason, message: image.message });
}

async function refreshMine() {
  const ep = epoch;
  const page = await api.get('/me/images?limit=12');
  if (ep !== epoch) return;
  const items = (page?.items || []).filter((i) => !state.gone.has(i.image_id));
  const ids = new Set(items.map((i) => i.image_id));
  // An upload of the last minute may not be listed yet (eventual consistency).
  const recent = state.mine.filter((i) => i.local && !ids.has(i.image_id) && Date.now() - i.local < 60000);
  state.mine = recent.concat(items);
  const stale = state.mine.filter((i) => {
    const d = state.details.get(i.image_id);
    return i.status === 'published' && (!d || d.data.status !== 'published' || Date.now() - d.at > FRESH_MS);
  });
  await Promise.all(stale.map(async (i) => {
    try {
      remember(await api.get(imagePath(i.image_id)));
    } catch (e) {
      if (e.status !== 404) throw e;
    }
  }));
  if (ep !== epoch) return;
  for (const i of state.mine) if (i.status === 'pending') watchPending(i.image_id, toMs(i.created_at));
  state.mineLoaded = true;
  showMine();
}

/** Deletes one of my photos for good, once the person confirms; it leaves every list at once. */
async function deletePhoto(id) {
  if (!confirm('Delete this photo for good? Its likes and notifications go with it.')) return;
  const ep = epoch;
  try {
    await api.request('DELETE', imagePath(id), undefined, { retry: true });
    if (ep !== epoch) return;
    state.gone.add(id);
    state.mine = state.mine.filter((i) => i.image_id !== id);
    state.feed = state.feed.filter((i) => i.image_id !== id);
    state.details.delete(id);
    showMine();
    showFeed();
    say('Photo deleted.');
  } catch (e) {
    if (ep === epoch) report(e);
  }
}

/**
 * Deletes the account, once the person confirms: DELETE /me answers 202 while it is still
 * erasing (call again after Retry-After) and 204 when nothing is left; then signs out. A busy
 * or throttled answer (5xx, 429) is called again too: an erasure left half done keeps the
 * account refused until it is finished, so it must not stop at the first hiccup.
 */
async function deleteAccount() {
  if (!confirm('Delete your account, your photos and your likes for good? This cannot be undone.')) return;
  const ep = epoch;
  const button = $('delete-account');
  button.disabled = true;
  say('Deleting your account…');
  try {
    for (let round = 0; ; round++) {
      let wait;
      try {
        const answer = await api.request('DELETE', '/me', undefined, { retry: true, full: true });
        if (answer.status === 204) break;
        wait = retryAfterSeconds(answer.retryAfter, answer.data);
      } catch (e) {
        if (!(e.status >= 500 || e.status === 429) || round >= 60) throw e;
      }
      if (ep !== epoch) return;
      if (round >= 60) throw new Error('Your account is still being deleted; please try again in a minute.');
      await sleep(1000 * Math.min(10, Math.max(1, wait || 2)));
    }
    if (ep !== epoch) return;
    auth.signOut('Your account, your photos and your likes are deleted.');
  } catch (e) {
    if (ep === epoch) report(e);
  } finally {
    button.disabled = false;
  }
}

/** Polls a pending photo: 1 s, doubling to 10 s, for 5 minutes from its upload. */
async function watchPending(id, since, uploadedHere = false) {
  const start = Math.min(since || Date.now(), Date.now());
  if (state.watching.has(id) || Date.now() - start > PENDING_WATCH_MS) return;
  const ep = epoch;
  const { watching } = state;
  watching.add(id);
  try {
    for (const delay of backoffSchedule({ max: 10000, total: PENDING_WATCH_MS - (Date.now() - start) })) {
      await sleep(delay);
      if (ep !== epoch) return;
      let image;
      try {
        image = await api.get(imagePath(id));
      } catch (e) {
        if (e instanceof AuthError || e.status === 404) return;
        continue;
      }
      if (ep !== epoch) return;
      remember(image);
      showMine();
      if (image.status !== 'pending') {
        if (image.status === 'published') refreshFeed().catch(report);
        if (uploadedHere) {
          $('progress').hidden = !!state.uploading;
          if (image.status === 'published') say('Your photo is published.');
          else if (image.status === 'held') say('Your photo is held for review: only you can see it until then.');
          else say(rejectionSentence(image), 'error');
        }
        return;
      }
    }
  } finally {
    watching.delete(id);
  }
}

// Upload

async function upload(file) {
  if (!file) return;
  if (!$('file').accept.split(',').includes(file.type)) { // the input's accept list
    say('This file type is not supported; choose a JPEG, PNG, WebP or GIF photo.', 'error');
    return;
  }
  if (state.uploading) {
    say('Wait for the current upload to finish.', 'error');
    return;
  }
  const ep = epoch;
  const progress = $('progress');
  state.uploading = true;
  progress.hidden = false;
  progress.value = 0;
  say(`Uploading ${file.name}…`);
  try {
    const created = await api.request('POST', '/uploads', { content_type: file.type, content_length: file.size }, { retry: true });
    await putFile(created.upload, file, (p) => { progress.value = p; });
    if (ep !== epoch) return;
    progress.value = 1;
    state.mine = state.mine.filter((i) => i.image_id !== created.image_id);
    state.mine.unshift({ image_id: created.image_id, status: 'pending', created_at: Date.now(), local: Date.now() });
    showMine();
    say('Uploaded; your photo is being processed.');
    watchPending(created.image_id, Date.now(), true);
  } catch (e) {
    if (ep === epoch) report(e);
    progress.hidden = true;
  } finally {
    state.uploading = false;
    $('file').value = '';
  }
}

// Recent photos and likes

function showFeed() {
  renderFeed(state.feed, toggleLike, state.likeSeq, state.feedLoaded);
  $('more').hidden = !state.cursor;
}

async function refreshFeed() {
  const ep = epoch;
  const page = await api.get('/feed?limit=12');
  if (ep !== epoch) return;
  const now = Date.now();
  const old = new Map(state.feed.map((i) => [i.image_id, i]));
  const items = (page?.items || []).filter((i) => !state.gone.has(i.image_id)).map((item) => {
    const was = old.get(item.image_id);
    if (!was) return { ...item, thumbAt: now };
    const next = { ...item, thumbAt: was.thumbAt };
    // Keep a recent presigned URL: a new one would download the same picture again.
    if (now - was.thumbAt < FRESH_MS && was.thumbnail) next.thumbnail = was.thumbnail;
    else next.thumbAt = now;
    // A like being settled shows the person's own action until the server has caught up.
    if (state.likeSeq.has(item.image_id)) Object.assign(next, { likes: was.likes, liked_by_me: was.liked_by_me });
    return next;
  });
  state.feed = mergeFirstPage(state.feed, items, { complete: state.pages === 1 && !page?.next_cursor });
  if (state.pages === 1) state.cursor = page?.next_cursor || null;
  state.feedLoaded = true;
  showFeed();
}

async function loadMore() {
  if (!state.cursor) return;
  const ep = epoch;
  const button = $('more');
  button.disabled = true;
  try {
    const page = await api.get(`/feed?limit=12&cursor=${encodeURIComponent(state.cursor)}`);
    if (ep !== epoch) return;
    const known = new Set(state.feed.map((i) => i.image_id));
    const added = (page?.items || []).filter((i) => !known.has(i.image_id)).map((i) => ({ ...i, thumbAt: Date.now() }));
    state.feed = state.feed.concat(added);
    state.cursor = page?.next_cursor || null;
    state.pages += 1;
    showFeed();
  } catch (e) {
    report(e);
  } finally {
    button.disabled = false;
  }
}

/** Optimistic toggle, then PUT/DELETE, then settle on the server's count (counted asynchronously). */
async function toggleLike(id) {
  // Refreshes replace the feed's objects: patch the one shown now.
  const patch = (values) => {
    const item = state.feed.find((i) => i.image_id === id);
    if (item) Object.assign(item, values);
    showFeed();
  };
  const item = state.feed.find((i) => i.image_id === id);
  if (!item) return;
  const ep = epoch;
  const { likeSeq } = state;
  const seq = (likeSeq.get(id) || 0) + 1;
  likeSeq.set(id, seq);
  const current = () => ep === epoch && likeSeq.get(id) === seq;
  const want = !item.liked_by_me;
  const before = { likes: item.likes ?? 0, liked_by_me: !!item.liked_by_me };
  const expected = Math.max(0, before.likes + (want ? 1 : -1));
  patch({ liked_by_me: want, likes: expected });
  try {
    await api.request(want ? 'PUT' : 'DELETE', `${imagePath(id)}/like`, undefined, { retry: true });
  } catch (e) {
    if (!current()) return;
    likeSeq.delete(id);
    patch(before);
    report(e);
    return;
  }
  let last = null;
  for (const delay of backoffSchedule({ max: 15000, total: 30000 })) { // 1, 2, 4, 8, 15 s
    await sleep(delay);
    if (!current()) return;
    try {
      last = await api.get(imagePath(id));
    } catch (e) {
      if (e instanceof AuthError) return;
      continue;
    }
    if (!current()) return;
    if (last.liked_by_me === want && last.likes === expected) break;
  }
  likeSeq.delete(id);
  patch(last ? { likes: last.likes, liked_by_me: last.liked_by_me } : {});
}

// Notifications

const unreadIds = () => state.notifications.filter((n) => n.unread && !state.markedRead.has(n.id)).map((n) => n.id);

function showNotifications() {
  renderBadge(unreadIds().length);
  renderNotifications(state.notifications, state.highlighted);
}

// Keep a recent presigned URL of each photo: a new one every poll or push would download it
// again.
function keepThumbnails(notifications) {
  const now = Date.now();
  return notifications.map((n) => {
    const kept = state.thumbs.get(n.image_id);
    if (!n.thumbnail) return n;
    if (kept && now - kept.at < FRESH_MS) return { ...n, thumbnail: kept.thumbnail };
    state.thumbs.set(n.image_id, { thumbnail: n.thumbnail, at: now });
    return n;
  });
}

function inboxChanged() {
  for (const n of state.notifications) if (!n.unread) state.markedRead.delete(n.id);
  if (state.panelOpen) markRead();
  showNotifications();
}

async function pollNotifications() {
  const ep = epoch;
  const page = await api.get('/me/notifications?limit=20');
  if (ep !== epoch) return;
  state.notifications = keepThumbnails(page?.items || []);
  inboxChanged();
}

// Live push: while the socket is open, each inbox change arrives as it happens, and the poll
// slows to once a minute (a fallback: a push can be lost, a reconnect refetches anyway).
const LIVE_POLL_MS = 60000;
const POLL_MS = 5000;

function onPush(message) {
  if (message?.type !== 'notifications' || !state) return;
  state.notifications = applyPush(state.notifications, { ...message, items: keepThumbnails(message.items || []) });
  inboxChanged();
}

function startLive() {
  const ep = epoch;
  let inbox = null;
  live = createLive({
    api,
    onMessage: (m) => ep === epoch && onPush(m),
    // What happened while closed: the inbox again, on every (re)connect.
    onOpen: () => ep === epoch && inbox?.tick(),
    onClose: () => {},
  });
  inbox = poller(pollNotifications, () => (live?.open ? LIVE_POLL_MS : POLL_MS), 60000);
  live.start();
}

async function markRead() {
  const ids = unreadIds();
  if (!ids.length) return;
  const ep = epoch;
  ids.forEach((id) => { state.markedRead.add(id); state.highlighted.add(id); });
  showNotifications();
  try {
    await api.request('POST', '/me/notifications/read', { ids }, { retry: true });
  } catch (e) {
    if (ep !== epoch) return;
    ids.forEach((id) => state.markedRead.delete(id));
    showNotifications();
    report(e);
  }
}

function setPanel(open) {
  state.panelOpen = open;
  $('notif-panel').hidden = !open;
  $('notif-btn').setAttribute('aria-expanded', !!open);
  if (open) markRead();
  else state.highlighted.clear();
  showNotifications();
}

// A photo's page (#photo=<id>): opened from the feed, My photos or a notification, or from a
// shared or reloaded address.

async function route() {
  const id = photoOf(location.hash);
  if (!id || !auth?.signedIn || !state) return closePhoto();
  const ep = epoch;
  try {
    const image = await api.get(imagePath(id));
    if (ep !== epoch || photoOf(location.hash) !== id) return;
    state.photo = image;
    renderPhoto(image);
    $('app-view').classList.add('photo-open');
    $('photo-view').hidden = false;
    $('photo-h').focus();
    loadLikers(id, true).catch(report); // the photo stands without its likers
  } catch (e) {
    if (ep !== epoch) return;
    closePhoto();
    if (e.status === 404) say('This photo is no longer here.', 'error');
    else report(e);
  }
}

/** Who likes the open photo: the first page again (`fresh`), or the next one. */
async function loadLikers(id, fresh) {
  const ep = epoch;
  const cursor = fresh ? null : state.likersCursor;
  const query = cursor ? `?cursor=${encodeURIComponent(cursor)}` : '';
  const page = await api.get(`${imagePath(id)}/likes${query}`);
  if (ep !== epoch || state.photo?.image_id !== id) return;
  state.likers = fresh ? page.items : [...state.likers, ...page.items];
  state.likersCursor = page.next_cursor || null;
  renderLikers(state.likers, !!state.likersCursor);
}

function closePhoto() {
  if (state) Object.assign(state, { photo: null, likers: [], likersCursor: null });
  renderLikers([], false);
  $('photo-view').hidden = true;
  $('photo-figure').replaceChildren();
  delete $('photo-figure').dataset.id;
  $('app-view').classList.remove('photo-open');
}

/** The photo page's Like: the person's action at once, then what the API recorded. */
async function likePhoto() {
  const image = state.photo;
  if (!image) return;
  const want = !image.liked_by_me;
  Object.assign(image, { liked_by_me: want, likes: Math.max(0, (image.likes ?? 0) + (want ? 1 : -1)) });
  renderPhoto(image);
  try {
    await api.request(want ? 'PUT' : 'DELETE', `${imagePath(image.image_id)}/like`, undefined, { retry: true });
    if (state.photo === image) await loadLikers(image.image_id, true);
  } catch (e) {
    Object.assign(image, { liked_by_me: !want, likes: Math.max(0, image.likes + (want ? -1 : 1)) });
    if (state.photo === image) renderPhoto(image);
    report(e);
  }
}

// The caller's name: what everyone else sees of them. The first read takes the name given at
// sign-up; without one, the form asks for it.

function showName(profile) {
  state.profile = profile;
  $('who').replaceChildren('Signed in as ', h('strong', {}, profile?.display_name || auth.name));
}

async function loadProfile() {
  const ep = epoch;
  const profile = await api.get('/me/profile');
  if (ep !== epoch) return;
  showName(profile);
  if (!profile.display_name) {
    setProfilePanel(true);
    say('Choose the name others see beside your photos and likes.');
  }
}

function setProfilePanel(open) {
  state.profileOpen = open;
  $('profile-panel').hidden = !open;
  $('name-btn').setAttribute('aria-expanded', open);
  if (open) {
    $('display-name').value = state.profile?.display_name || '';
    $('display-name').focus();
  }
}

async function saveName() {
  const button = $('profile-form').querySelector('button');
  button.disabled = true;
  try {
    const profile = await api.request('PUT', '/me/profile', { display_name: $('display-name').value }, { retry: true });
    showName(profile);
    setProfilePanel(false);
    say(`Saved: others now see you as “${profile.display_name}”`);
    // Pages show names as of their read: read again what is on screen.
    refreshFeed().catch(report);
    if (state.photo) loadLikers(state.photo.image_id, true).catch(report);
  } catch (e) {
    report(e);
  } finally {
    button.disabled = false;
  }
}

// Views

function showSignIn(message = '', kind = 'info') {
  epoch += 1;
  live?.stop();
  live = null;
  pollers.splice(0).forEach((p) => p.stop());
  state = fresh();
  for (const id of ['mine', 'feed', 'notif-list']) $(id).replaceChildren();
  closePhoto();
  for (const id of ['notif-panel', 'profile-panel', 'app-view', 'account']) $(id).hidden = true;
  $('signin-view').hidden = false;
  $('signup-view').hidden = true;
  say(message, kind);
}

function showApp() {
  epoch += 1;
  live?.stop();
  state = fresh();
  $('signin-view').hidden = $('signup-view').hidden = true;
  $('app-view').hidden = $('account').hidden = false;
  $('who').replaceChildren('Signed in as ', h('strong', {}, auth.name));
  $('progress').hidden = true;
  setPanel(false);
  setProfilePanel(false);
  loadProfile().catch(report);
  showMine();
  showFeed();
  startLive();
  poller(() => Promise.all([refreshMine(), refreshFeed()]), 10000, 60000);
  route();
}

async function signIn(username, password) {
  const busy = document.querySelectorAll('#signin-view button');
  busy.forEach((b) => { b.disabled = true; });
  say('Signing in…');
  try {
    await auth.signIn(username, password);
    say('');
    showApp();
    $('upload-h').focus();
  } catch (e) {
    say(e.message, 'error');
  } finally {
    busy.forEach((b) => { b.disabled = false; });
  }
}

// Sign-up: the account, then the emailed code, then a sign-in with the password just chosen
// (kept in memory between the two forms only).
let pendingSignUp = null;

function showSignUp(on) {
  $('signin-view').hidden = on;
  $('signup-view').hidden = !on;
  say('');
  if (on) {
    $('signup-form').hidden = !!pendingSignUp;
    $('confirm-form').hidden = !pendingSignUp;
    (pendingSignUp ? $('su-code') : $('signup-h')).focus();
  } else {
    $('username').focus();
  }
}

async function whileBusy(view, message, work) {
  const busy = document.querySelectorAll(`#${view} button`);
  busy.forEach((b) => { b.disabled = true; });
  say(message);
  try {
    await work();
  } catch (e) {
    say(e.message, 'error');
  } finally {
    busy.forEach((b) => { b.disabled = false; });
  }
}

function signUp() {
  const form = { username: $('su-username').value.trim(), name: $('su-name').value.trim(), email: $('su-email').value.trim(), password: $('su-password').value };
  return whileBusy('signup-view', 'Creating your account…', async () => {
    const to = await auth.signUp(form);
    pendingSignUp = { username: form.username, password: form.password };
    $('su-password').value = '';
    codeSent(to);
  });
}

function codeSent(to) {
  $('signup-form').hidden = true;
  $('confirm-form').hidden = false;
  $('confirm-sent').textContent = `We sent a confirmation code to ${to}. Enter it to finish.`;
  say('');
  $('su-code').focus();
}

function confirmSignUp() {
  if (!pendingSignUp) return showSignUp(true);
  const { username, password } = pendingSignUp;
  return whileBusy('signup-view', 'Confirming…', async () => {
    await auth.confirmSignUp(username, $('su-code').value.trim());
    pendingSignUp = null;
    $('su-code').value = '';
    $('signup-form').reset();
    $('username').value = username;
    showSignUp(false);
    await signIn(username, password);
  });
}

function resendCode() {
  if (!pendingSignUp) return showSignUp(true);
  return whileBusy('signup-view', 'Sending a new code…', async () => codeSent(await auth.resendCode(pendingSignUp.username)));
}

function wire(config) {
  $('to-signup').addEventListener('click', () => showSignUp(true));
  $('to-signin').addEventListener('click', () => showSignUp(false));
  $('signup-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signUp();
  });
  $('confirm-form').addEventListener('submit', (e) => {
    e.preventDefault();
    confirmSignUp();
  });
  $('resend').addEventListener('click', resendCode);
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signIn($('username').value.trim(), $('password').value);
  });
  const demo = (config.demoUsers || []).filter((u) => u?.username);
  $('demo').hidden = demo.length === 0;
  $('demo-list').replaceChildren(...demo.map((u) => h('li', {},
    h('button', { type: 'button', onclick: () => signIn(u.username, u.password || '') }, `Sign in as ${u.username}`))));

  $('signout').addEventListener('click', () => auth.signOut());
  $('delete-account').addEventListener('click', deleteAccount);
  $('notif-btn').addEventListener('click', () => setPanel(!state.panelOpen));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state?.panelOpen) {
      setPanel(false);
      $('notif-btn').focus();
    }
  });
  $('more').addEventListener('click', loadMore);
  $('photo-back').addEventListener('click', () => { location.hash = ''; });
  $('photo-like').addEventListener('click', likePhoto);
  $('likers-more').addEventListener('click', () => state.photo && loadLikers(state.photo.image_id, false).catch(report));
  $('name-btn').addEventListener('click', () => setProfilePanel(!state.profileOpen));
  $('profile-form').addEventListener('submit', (e) => {
    e.preventDefault();
    saveName();
  });
  window.addEventListener('hashchange', route);

  const input = $('file');
  input.addEventListener('change', () => upload(input.files[0]));
  const drop = $('drop');
  const files = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  const dragging = (on) => (e) => {
    if (!files(e)) return;
    e.preventDefault();
    drop.classList.toggle('over', !!on);
  };
  for (const [type, on] of [['dragenter', 1], ['dragover', 1], ['dragleave', 0]]) drop.addEventListener(type, dragging(on));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    upload(e.dataTransfer.files[0]);
  });
  // A file dropped beside the zone would otherwise replace the page.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (e) => { if (files(e)) e.preventDefault(); });
  }
}

async function main() {
  let config;
  try {
    const res = await fetch('config.json', { cache: 'no-store' });
    if (!res.ok) throw new Error();
    config = await res.json();
    if (!config.apiUrl || !config.cognito?.endpoint || !config.cognito?.clientId || !config.cognito?.userPoolId) throw new Error();
  } catch {
    say('The app could not load its settings; reload the page to try again.', 'error');
    return;
  }
  auth = createAuth(config.cognito, (reason) => showSignIn(reason || 'You have signed out.', reason ? 'error' : 'info'));
  api = createApi(config.apiUrl, auth, onNetwork);
  wire(config);
  if (auth.signedIn) showApp();
  else showSignIn();
}

main();
