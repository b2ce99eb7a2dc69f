// The web client's story in a real browser: alice uploads, bob likes, alice is notified.
// node tests/story.mjs, with SITE_URL, PHOTO_PATH, REJECTED_PATH, MAILBOX_PATH (where the local
// emulator delivers sign-up codes), SCREENSHOT_DIR (and CHROMIUM_PATH).
import { chromium } from 'playwright-core';
import { mkdir, writeFile, access, readFile } from 'node:fs/promises';
import path from 'node:path';

const SITE_URL = process.env.SITE_URL || 'http://127.0.0.1:3000/';
const PHOTO_PATH = process.env.PHOTO_PATH;
const REJECTED_PATH = process.env.REJECTED_PATH;
const MAILBOX_PATH = process.env.MAILBOX_PATH;
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || 'story-screenshots';

const problems = []; // console errors and warnings, page errors: any of them fails the story
let current = 'setup';
let expected = null; // the one console error a step provokes on purpose (a refused sign-in)

function watch(page, who) {
  // Anything the Content-Security-Policy blocks fails the story, named by its directive.
  page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => {
    console.error(`Content-Security-Policy violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline code'}`);
  }));
  page.on('console', (m) => {
    if ((m.type() === 'error' || m.type() === 'warning') && !(expected && expected.test(m.text()))) {
      const where = m.location()?.url ? ` (${m.location().url})` : '';
      problems.push(`${who}: console ${m.type()}: ${m.text()}${where}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`${who}: page error: ${e.message}`));
}

async function step(name, fn) {
  current = name;
  const t0 = Date.now();
  await fn();
  console.log(`ok - ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

/** Polls `check` (truthy = done) until a deadline; the error names what was awaited and what was seen. */
async function until(what, timeoutMs, check, seen = async () => '') {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 50; ; wait = Math.min(wait * 2, 500)) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      const last = await seen().catch(() => '');
      throw new Error(`${what} did not happen within ${timeoutMs / 1000} s${last ? ` (last seen: ${last})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, wait));
  }
}

async function shot(page, name) {
  // Images in view finish loading first, so the screenshot shows them (bounded: never fails the story).
  await page.waitForFunction(() => [...document.images].every((i) => i.complete
    || i.getBoundingClientRect().top > innerHeight), null, { timeout: 10000 }).catch(() => {});
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, name), fullPage: true });
}

async function signIn(page, user) {
  await page.getByRole('button', { name: `Sign in as ${user}`, exact: true }).click();
  await page.getByRole('button', { name: 'Sign out', exact: true }).waitFor({ timeout: 30000 });
}

const myPhotos = (page) => page.getByRole('list', { name: 'My photos', exact: true });
const myIds = (page) => myPhotos(page).locator(':scope > li').evaluateAll((els) => els.map((e) => e.dataset.imageId));

/** Uploads through the file chooser; returns the image_id of the new item in My photos. */
async function upload(page, file) {
  const before = new Set(await myIds(page));
  const chooser = page.waitForEvent('filechooser', { timeout: 10000 });
  await page.getByLabel('Choose a photo', { exact: true }).click();
  await (await chooser).setFiles(file);
  await page.getByRole('progressbar', { name: 'Upload progress', exact: true }).waitFor({ timeout: 5000 });
  let id;
  await until(`a new item in My photos after choosing ${path.basename(file)}`, 60000, async () => {
    id = (await myIds(page)).find((x) => !before.has(x));
    return id;
  }, async () => page.getByRole('status').textContent());
  return id;
}

async function main() {
  if (!MAILBOX_PATH) throw new Error('MAILBOX_PATH is not set');
  for (const [name, value] of Object.entries({ PHOTO_PATH, REJECTED_PATH })) {
    if (!value) throw new Error(`${name} is not set`);
    await access(value).catch(() => { throw new Error(`${name}=${value} does not exist`); });
  }
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    // No background networking: on a closed network Chromium's own connections (updates,
    // sync, safe browsing) fail by the dozen and slow every start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    headless: true,
  });
  try {
    const aliceContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    // bob is on a phone-sized screen: the layout must hold at 375 px.
    const bobContext = await browser.newContext({ viewport: { width: 375, height: 812 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const alice = await aliceContext.newPage();
    const bob = await bobContext.newPage();
    watch(alice, 'alice');
    watch(bob, 'bob');
    // What alice's page asks of her inbox, and what is pushed to it on its live socket.
    const inboxReads = [];
    const pushes = [];
    alice.on('request', (r) => { if (new URL(r.url()).pathname === '/me/notifications') inboxReads.push(Date.now()); });
    const sockets = [];
    alice.on('websocket', (ws) => {
      sockets.push({ ws, at: Date.now() });
      ws.on('framereceived', (f) => pushes.push(String(f.payload)));
    });
    const bobSockets = [];
    bob.on('websocket', (ws) => bobSockets.push({ ws, at: Date.now() }));

    let photoId;
    let rejectedId;

    await step('1. alice signs in', async () => {
      const requests = [];
      alice.on('request', (r) => requests.push(r));
      const page = await alice.goto(SITE_URL);
      const policy = page.headers()['content-security-policy'] || '';
      if (!policy.includes("default-src 'none'")) throw new Error(`the page has no strict Content-Security-Policy: "${policy}"`);
      await alice.getByRole('button', { name: 'Sign in as alice', exact: true }).waitFor({ timeout: 30000 });
      const first = requests.slice();
      let bytes = 0;
      for (const r of first) {
        const res = await r.response();
        const body = res ? await res.body().catch(() => null) : null;
        bytes += body ? body.length : (await r.sizes().catch(() => ({ responseBodySize: 0 }))).responseBodySize;
      }
      const line = `page weight (first load): ${bytes} bytes in ${first.length} requests`;
      console.log(line);
      await writeFile(path.join(SCREENSHOT_DIR, 'page-weight.txt'),
        `${line}\n${first.map((r) => `${r.method()} ${r.url()}`).join('\n')}\n`);
      // A wrong password is refused; then the demo button signs in. By SRP: no request carries
      // a password, the wrong one or hers.
      const config = await (await fetch(new URL('config.json', SITE_URL))).json();
      const hers = config.demoUsers.find((u) => u.username === 'alice').password;
      const wrong = 'Not-her-passw0rd!';
      const bodies = [];
      alice.on('request', (r) => bodies.push(r.postData() || ''));
      expected = /status of 400/; // Chromium logs the refused RespondToAuthChallenge's 400
      await alice.getByLabel('Username', { exact: true }).fill('alice');
      await alice.getByLabel('Password', { exact: true }).fill(wrong);
      await alice.getByRole('button', { name: 'Sign in', exact: true }).click();
      await until('the wrong password being refused', 15000,
        async () => /Wrong username or password/.test(await alice.getByRole('status').textContent()),
        async () => `status "${await alice.getByRole('status').textContent()}"`);
      expected = null;
      await signIn(alice, 'alice');
      const flows = bodies.filter((b) => b.includes('"AuthFlow"')).map((b) => JSON.parse(b).AuthFlow);
      if (flows.length !== 2 || flows.some((f) => f !== 'USER_SRP_AUTH')) throw new Error(`sign-in flows ${JSON.stringify(flows)}, not SRP twice`);
      const leaked = bodies.filter((b) => b.includes(wrong) || b.includes(hers));
      if (leaked.length) throw new Error(`a request carried a password: ${leaked[0].slice(0, 200)}`);
      // Her name, not her sign-in username: the one she gave at sign-up.
      await alice.getByText('Signed in as Alice Moreau', { exact: true }).waitFor({ timeout: 10000 })
        .catch(async () => { throw new Error(`the header says "${await alice.locator('#who').textContent()}", not "Signed in as Alice Moreau"`); });
      await shot(alice, '01-alice-signed-in.png');
    });

    await step('2. alice uploads a photo: pending in My photos', async () => {
      photoId = await upload(alice, PHOTO_PATH);
      const item = myPhotos(alice).locator(`li[data-image-id="${photoId}"]`);
      const text = await item.textContent();
      if (!text.includes('Processing…')) {
        // Only acceptable when processing already finished: then the thumbnail is there.
        if (!(await item.getByRole('img', { name: 'Your photo' }).count())) {
          throw new Error(`the new item ${photoId} shows "${text}" instead of "Processing…"`);
        }
        console.log('  (the photo was already published when first seen)');
      }
      await shot(alice, '02-alice-uploading.png');
    });

    await step('3. alice sees her photo published', async () => {
      const item = myPhotos(alice).locator(`li[data-image-id="${photoId}"]`);
      await item.getByRole('img', { name: 'Your photo', exact: true }).waitFor({ timeout: 90000 })
        .catch(async () => { throw new Error(`no <img alt="Your photo"> within 90 s; the item says "${await item.textContent()}"`); });
      await shot(alice, '03-alice-published.png');
    });

    const card = bob.getByRole('list', { name: 'Recent photos', exact: true })
      .locator(`li[data-image-id="${photoId}"]`).filter({ hasText: 'by Alice Moreau' });

    await step('4. bob signs in and sees alice\'s photo in Recent photos', async () => {
      await bob.goto(SITE_URL);
      await signIn(bob, 'bob');
      await card.waitFor({ timeout: 60000 })
        .catch(() => { throw new Error(`no card "by Alice Moreau" for ${photoId} in Recent photos within 60 s`); });
      await card.getByRole('img', { name: 'Photo by Alice Moreau', exact: true }).waitFor({ timeout: 5000 });
      // The placeholder painted while the thumbnail loaded is gone once it has.
      await until('the placeholder removed after the thumbnail loaded', 20000,
        async () => (await card.locator('canvas.blur').count()) === 0);
      await shot(bob, '04-bob-feed.png');
    });

    let readsBeforeLike = 0;
    await step('5. bob likes it; the count settles at 1', async () => {
      // alice's socket is open by now (her page refetched its inbox when it opened)
      await until('alice\'s live socket open', 20000, async () => sockets.some((s) => !s.ws.isClosed()),
        async () => `${sockets.length} sockets`);
      // The inbox read that follows the socket's opening.
      const opened = sockets[sockets.length - 1].at;
      await until('alice\'s inbox read once the socket opened', 10000, async () => inboxReads.some((at) => at >= opened),
        async () => `${sockets.length} sockets (${sockets.map((s) => `${s.at}${s.ws.isClosed() ? ' closed' : ''}`).join(', ')}), inbox read at ${inboxReads.join(', ')}`);
      readsBeforeLike = inboxReads.length;
      const like = card.getByRole('button', { name: 'Like', exact: true });
      if ((await like.getAttribute('aria-pressed')) !== 'false') throw new Error('the Like button is not aria-pressed="false" before the click');
      await like.click();
      await until('aria-pressed="true" right after the click', 1000, async () => (await like.getAttribute('aria-pressed')) === 'true');
      const count = card.locator('.like-count');
      await until('the like count settling at "1"', 60000, async () =>
        (await count.textContent()).trim() === '1' && !(await card.locator('.like[data-settling]').count()),
      async () => `count "${await count.textContent()}", status "${await bob.getByRole('status').textContent()}"`);
      await shot(bob, '05-bob-liked.png');
    });

    await step('6. bob opens the photo\'s page: the picture that fits his screen, the like; a reload keeps it', async () => {
      await card.getByRole('link', { name: 'Photo by Alice Moreau', exact: true }).click();
      const page = bob.getByRole('region', { name: 'Photo by Alice Moreau', exact: true });
      const picture = page.getByRole('img', { name: 'Photo by Alice Moreau', exact: true });
      const loaded = () => picture.evaluate((img) => img.complete && img.naturalWidth > 0 ? img.currentSrc : '');
      await until('the photo page\'s picture loaded', 20000, loaded);
      const candidates = (await picture.getAttribute('srcset')).split(',').length;
      if (candidates !== 3) throw new Error(`the picture offers ${candidates} sizes, not the 3 renditions`);
      // A 375 px screen at 2x wants about 700 px: the 1024 px rendition, not the 2048 px one.
      if (!/medium\.jpg/.test(await loaded())) throw new Error(`the phone loaded ${await loaded()}, not the medium rendition`);
      const like = page.getByRole('button', { name: 'Like', exact: true });
      if ((await like.getAttribute('aria-pressed')) !== 'true') throw new Error('the page does not show bob\'s like');
      await bob.reload();
      await page.getByRole('img', { name: 'Photo by Alice Moreau', exact: true }).waitFor({ timeout: 30000 })
        .catch(() => { throw new Error('the photo page is gone after a reload'); });
      const likers = page.getByRole('list', { name: 'Liked by', exact: true });
      await until('"Bob Okafor" under Liked by', 20000, async () => (await likers.textContent()).trim() === 'Bob Okafor',
        async () => `"${await likers.textContent()}"`);
      await shot(bob, '06-bob-photo-page.png');
    });

    await step('6b. bob renames himself: the photo page shows the new name at once', async () => {
      const page = bob.getByRole('region', { name: 'Photo by Alice Moreau', exact: true });
      await bob.getByRole('button', { name: 'Your name', exact: true }).click();
      const field = bob.getByLabel('The name others see beside your photos and likes', { exact: true });
      if ((await field.inputValue()) !== 'Bob Okafor') throw new Error(`the name field holds "${await field.inputValue()}", not "Bob Okafor"`);
      await field.fill('Bob O.');
      await bob.getByRole('button', { name: 'Save name', exact: true }).click();
      const likers = page.getByRole('list', { name: 'Liked by', exact: true });
      await until('"Bob O." under Liked by', 20000, async () => (await likers.textContent()).trim() === 'Bob O.',
        async () => `"${await likers.textContent()}"`);
      await bob.getByText('Signed in as Bob O.', { exact: true }).waitFor({ timeout: 5000 });
      await shot(bob, '06b-bob-renamed.png');
      await page.getByRole('button', { name: '← Back', exact: true }).click();
      await card.waitFor({ timeout: 10000 });
    });

    const bell = alice.getByRole('button', { name: /^Notifications( \(\d+ unread\))?$/ });

    await step('7. alice sees unread notifications on the badge, pushed: her page did not ask', async () => {
      await alice.getByRole('button', { name: /^Notifications \(\d+ unread\)$/ }).waitFor({ timeout: 60000 })
        .catch(async () => { throw new Error(`the button is still named "${await bell.getAttribute('aria-label')}" after 60 s`); });
      await until('the like pushed on alice\'s socket', 20000, async () => pushes.some((p) => p.includes('liked your photo')),
        async () => `${pushes.length} pushes: ${pushes.join(' | ').slice(0, 300)}`);
      if (inboxReads.length !== readsBeforeLike) {
        throw new Error(`alice's page read /me/notifications ${inboxReads.length - readsBeforeLike} times after bob's like: the push should have brought it`);
      }
      await shot(alice, '07-alice-badge.png');
    });

    await step('8. alice opens Notifications: a like is listed with her photo, the badge clears', async () => {
      await bell.click();
      const panel = alice.getByRole('region', { name: 'Notifications', exact: true });
      // The like's notice may come a poll (5 s) after the published one that lit the badge.
      // bob by the name he chose last, resolved when the inbox is read.
      const like = panel.getByRole('listitem').filter({ hasText: 'Bob O. liked your photo' }).first();
      await like.waitFor({ timeout: 60000 })
        .catch(async () => { throw new Error(`no notification mentioning a like; the panel says "${await panel.textContent()}"`); });
      const thumb = like.locator('img.notif-thumb');
      await until('the liked photo\'s thumbnail loaded in the notification', 20000,
        async () => thumb.evaluate((img) => img.complete && img.naturalWidth > 0));
      await alice.getByRole('button', { name: 'Notifications', exact: true }).waitFor({ timeout: 20000 })
        .catch(async () => { throw new Error(`the button is still named "${await bell.getAttribute('aria-label')}" after 20 s`); });
      await shot(alice, '08-alice-read.png');
    });

    let bobPhotoId;
    const bobsCard = () => alice.getByRole('list', { name: 'Recent photos', exact: true })
      .locator(`li[data-image-id="${bobPhotoId}"]`);

    await step('8b. bob uploads from his phone: alice\'s feed shows it by the name he chose', async () => {
      bobPhotoId = await upload(bob, PHOTO_PATH);
      await myPhotos(bob).locator(`li[data-image-id="${bobPhotoId}"]`).getByRole('img', { name: 'Your photo', exact: true })
        .waitFor({ timeout: 90000 }).catch(() => { throw new Error(`bob's photo ${bobPhotoId} is not published within 90 s`); });
      // alice's page reads the feed every 10 s.
      await until('bob\'s photo in alice\'s Recent photos, "by Bob O."', 60000,
        async () => /by Bob O\./.test(await bobsCard().textContent()), async () => bobsCard().textContent());
    });

    await step('8c. bob renames himself again: alice\'s feed shows the new name without a reload', async () => {
      await bob.getByRole('button', { name: 'Your name', exact: true }).click();
      await bob.getByLabel('The name others see beside your photos and likes', { exact: true }).fill('Bob Okafor');
      await bob.getByRole('button', { name: 'Save name', exact: true }).click();
      await bob.getByText('Signed in as Bob Okafor', { exact: true }).waitFor({ timeout: 10000 });
      await until('"by Bob Okafor" on bob\'s photo in alice\'s feed', 60000,
        async () => /by Bob Okafor/.test(await bobsCard().textContent()), async () => bobsCard().textContent());
      await shot(alice, '08c-alice-feed-renamed.png');
    });

    await step('8d. bob\'s phone loses its network while alice likes his photo: back online, nothing is lost', async () => {
      // The page's socket is its newest (the one before the reload in step 6 went with it).
      const open = () => bobSockets.length > 0 && !bobSockets[bobSockets.length - 1].ws.isClosed();
      await until('bob\'s live socket open', 20000, async () => open(), async () => `${bobSockets.length} sockets`);
      const before = bobSockets.length;
      // Offline, the page's requests fail as they would on a phone in a tunnel.
      expected = /ERR_INTERNET_DISCONNECTED|WebSocket|Failed to load resource|Failed to fetch/;
      await bob.context().setOffline(true);
      await until('bob\'s socket closed once his phone is offline', 10000, async () => !open());
      const like = bobsCard().getByRole('button', { name: 'Like', exact: true });
      await like.click();
      await until('alice\'s like of bob\'s photo counted', 60000, async () => (await bobsCard().locator('.like-count').textContent()).trim() === '1'
        && !(await bobsCard().locator('.like[data-settling]').count()), async () => bobsCard().textContent());
      // The notice is in bob's inbox while his phone is offline (read as the API serves it).
      const config = await (await fetch(new URL('config.json', SITE_URL))).json();
      const { accessToken } = JSON.parse(await bob.evaluate(() => sessionStorage.getItem('snapglow.session')));
      let inbox = '';
      await until('"Alice Moreau liked your photo" in bob\'s inbox while he is offline', 60000, async () => {
        const res = await fetch(`${config.apiUrl}/me/notifications?limit=20`, { headers: { Authorization: `Bearer ${accessToken}` } });
        inbox = await res.text();
        return inbox.includes('Alice Moreau liked your photo');
      }, async () => inbox.slice(0, 300));
      await bob.context().setOffline(false);
      await until('a new live socket for bob once he is back online', 15000,
        async () => bobSockets.length > before && open(), async () => `${bobSockets.length} sockets`);
      expected = null;
      await bob.getByRole('button', { name: /^Notifications \(\d+ unread\)$/ }).click({ timeout: 30000 });
      const panel = bob.getByRole('region', { name: 'Notifications', exact: true });
      await panel.getByRole('listitem').filter({ hasText: 'Alice Moreau liked your photo' }).first().waitFor({ timeout: 20000 })
        .catch(async () => { throw new Error(`bob's notifications say "${await panel.textContent()}"`); });
      await shot(bob, '08d-bob-back-online.png');
      await bob.getByRole('button', { name: /^Notifications/ }).click();
    });

    await step('9. alice uploads a file that is not an image: rejected with a sentence', async () => {
      rejectedId = await upload(alice, REJECTED_PATH);
      const rejection = myPhotos(alice).locator(`li[data-image-id="${rejectedId}"] .rejection`);
      await rejection.waitFor({ timeout: 90000 }).catch(async () => {
        throw new Error(`no rejection within 90 s; the item says "${await myPhotos(alice).locator(`li[data-image-id="${rejectedId}"]`).textContent()}"`);
      });
      // The UI's sentence for an unreadable file ("undecodable"/"corrupt"/"unsupported_format"),
      // or the backend's own message made a sentence: never JSON, never empty.
      const text = (await rejection.textContent()).trim();
      const known = /could not be read as an image|file type is not supported|was rejected/;
      if (!known.test(text) && !/^[A-Z][^{}]*[.!]$/.test(text)) throw new Error(`the rejection "${text}" is not a sentence`);
      console.log(`  rejection shown: "${text}"`);
      await shot(alice, '09-alice-rejected.png');
    });

    await step('10. alice deletes her rejected upload and her photo: gone from her page and bob\'s', async () => {
      for (const id of [rejectedId, photoId]) {
        const item = myPhotos(alice).locator(`li[data-image-id="${id}"]`);
        alice.once('dialog', (dialog) => dialog.accept());
        await item.getByRole('button', { name: 'Delete this photo', exact: true }).click();
        await item.waitFor({ state: 'detached', timeout: 10000 })
          .catch(() => { throw new Error(`${id} is still in My photos 10 s after its deletion`); });
      }
      await alice.getByRole('status').filter({ hasText: 'Photo deleted.' }).waitFor({ timeout: 5000 });
      // bob's page polls the feed every 10 s: the photo leaves it at the next poll.
      await card.waitFor({ state: 'detached', timeout: 30000 })
        .catch(() => { throw new Error(`alice's deleted photo is still in bob's Recent photos after 30 s`); });
      await shot(alice, '10-alice-deleted.png');
    });

    await step('11. alice signs out: her refresh token is revoked', async () => {
      const config = await (await fetch(new URL('config.json', SITE_URL))).json();
      const refresh = (token) => fetch(config.cognito.endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'AWSCognitoIdentityProviderService.InitiateAuth' },
        body: JSON.stringify({ AuthFlow: 'REFRESH_TOKEN_AUTH', ClientId: config.cognito.clientId, AuthParameters: { REFRESH_TOKEN: token } }),
      });
      const { refreshToken } = JSON.parse(await alice.evaluate(() => sessionStorage.getItem('snapglow.session')));
      const before = await refresh(refreshToken);
      if (before.status !== 200) throw new Error(`the refresh token does not work before sign-out: HTTP ${before.status}`);
      await alice.getByRole('button', { name: 'Sign out', exact: true }).click();
      await alice.getByRole('button', { name: 'Sign in as alice', exact: true }).waitFor({ timeout: 10000 });
      let last = '';
      await until('a refresh with the signed-out token being refused', 10000, async () => {
        const res = await refresh(refreshToken);
        last = `HTTP ${res.status} ${(await res.json().catch(() => ({})) ).__type || ''}`;
        return res.status === 400 && last.includes('NotAuthorizedException');
      }, async () => last);
    });

    await step('12. bob deletes his account: signed out, and he cannot sign in again', async () => {
      bob.once('dialog', (dialog) => dialog.accept());
      await bob.getByRole('button', { name: 'Delete account', exact: true }).click();
      await bob.getByRole('button', { name: 'Sign in as bob', exact: true }).waitFor({ timeout: 60000 })
        .catch(async () => { throw new Error(`bob is not signed out 60 s after deleting his account; status "${await bob.getByRole('status').textContent()}"`); });
      const status = bob.getByRole('status');
      if (!/account, your photos and your likes are deleted/.test(await status.textContent())) {
        throw new Error(`the sign-in page says "${await status.textContent()}", not that the account is deleted`);
      }
      expected = /status of 400/; // Chromium logs the refused sign-in's 400
      await bob.getByRole('button', { name: 'Sign in as bob', exact: true }).click();
      await until('a sign-in as the deleted bob being refused', 15000,
        async () => /Wrong username or password|not found|does not exist/i.test(await status.textContent()),
        async () => `status "${await status.textContent()}"`);
      expected = null;
      await shot(bob, '12-bob-deleted.png');
    });

    await step('13. someone new signs up on the phone: a wrong code is refused, the emailed one signs them in by their name', async () => {
      await bob.getByRole('button', { name: 'Create an account', exact: true }).click();
      await bob.getByLabel('Username (to sign in; nobody else sees it)').fill('dana');
      await bob.getByLabel('Your name (shown beside your photos and likes)').fill('Dana Reyes');
      await bob.getByLabel('Email (for the confirmation code and a forgotten password)').fill('dana@example.com');
      await bob.getByLabel('Choose a password', { exact: true }).fill('Dana-photos-2026');
      await bob.getByRole('button', { name: 'Create account', exact: true }).click();
      const field = bob.getByLabel('Confirmation code', { exact: true });
      await field.waitFor({ timeout: 15000 })
        .catch(async () => { throw new Error(`no confirmation step; status "${await bob.getByRole('status').textContent()}"`); });
      let code = '';
      await until('a code for dana in the local mailbox', 10000, async () => {
        const mail = (await readFile(MAILBOX_PATH, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
        code = mail.filter((m) => m.username === 'dana' && m.to === 'dana@example.com').pop()?.code || '';
        return code;
      });
      expected = /status of 400/; // Chromium logs the refused ConfirmSignUp's 400
      await field.fill(code === '000000' ? '111111' : '000000');
      await bob.getByRole('button', { name: 'Confirm and sign in', exact: true }).click();
      const status = bob.getByRole('status');
      await until('the wrong code refused', 15000, async () => /not the one we sent/.test(await status.textContent()),
        async () => `status "${await status.textContent()}"`);
      expected = null;
      await field.fill(code);
      await bob.getByRole('button', { name: 'Confirm and sign in', exact: true }).click();
      await bob.getByText('Signed in as Dana Reyes', { exact: true }).waitFor({ timeout: 30000 })
        .catch(async () => { throw new Error(`not signed in as Dana Reyes; status "${await status.textContent()}", header "${await bob.locator('#who').textContent()}"`); });
      await shot(bob, '13-dana-signed-up.png');
    });

    current = 'console';
    if (problems.length) throw new Error(`${problems.length} console error(s)/warning(s):\n  ${problems.join('\n  ')}`);
    console.log(`all steps passed; screenshots in ${SCREENSHOT_DIR}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`FAIL - ${current}: ${e.message}`);
  if (problems.length && current !== 'console') console.error(`console problems so far:\n  ${problems.join('\n  ')}`);
  process.exitCode = 1;
});
