// DOM rendering: small keyed updates, so focus and loaded images survive periodic refreshes.
import { notificationsLabel, photoHref, rejectionSentence, takenLine, timeAgo, toMs } from './logic.js';
import { placeholderCanvas } from './placeholder.js';

export const $ = (id) => document.getElementById(id);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.filter((c) => c != null));
  return el;
}

/** Makes `ul` show `items` in order, one <li data-key> each, reusing the elements it has. */
function sync(ul, items, key, create, update) {
  const old = new Map([...ul.children].map((li) => [li.dataset.key, li]));
  items.forEach((item, i) => {
    const k = String(key(item));
    let li = old.get(k);
    old.delete(k);
    if (!li) {
      li = create(item);
      li.dataset.key = k;
    }
    update(li, item);
    if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
  });
  for (const li of old.values()) li.remove();
}

const placeholder = (text) => [h('div', { class: 'ph', 'aria-hidden': 'true' }), h('p', { class: 'state' }, text)];

function picture(renditions, alt) {
  const r = renditions.find((x) => x.name === 'thumb') || renditions[renditions.length - 1];
  return h('img', { src: r.url, alt, width: r.width, height: r.height, loading: 'lazy', decoding: 'async' });
}

/**
 * My photos: a thumbnail when published, the thumbnail and why when held for review,
 * "Processing…" while pending, a sentence when rejected; a finished photo has a Delete button.
 */
export function renderMine(items, details, loaded, onDelete) {
  $('mine-empty').hidden = !loaded || items.length > 0;
  sync($('mine'), items, (i) => i.image_id, (i) => h('li', { 'data-image-id': i.image_id }), (li, item) => {
    const d = details.get(item.image_id)?.data;
    const status = d?.status || item.status;
    const url = (status === 'published' || status === 'held') && d?.renditions?.[0]?.url;
    const text = status === 'rejected' && rejectionSentence({ reason: d?.reason ?? item.reason, message: d?.message ?? item.message });
    // Held for review: only its owner sees it, with why.
    const held = status === 'held' ? `Held for review. ${d?.message ?? item.message ?? ''}`.trim() : '';
    const sig = `${url || text || status}${held}`;
    if (li.dataset.sig !== sig) {
      li.dataset.sig = sig;
      li.replaceChildren(...(url ? [h('a', { href: photoHref(item.image_id) }, picture(d.renditions, 'Your photo')), ...(held ? [h('p', { class: 'held' }, held)] : []), h('p', { class: 'meta' })]
        : text ? [h('div', { class: 'ph ph-rejected', 'aria-hidden': 'true' }), h('p', { class: 'rejection' }, text)]
          : placeholder(status === 'published' || status === 'held' ? 'Loading…' : 'Processing…')),
      status === 'published' || status === 'rejected' || status === 'held'
        ? h('button', { type: 'button', class: 'delete-btn', 'aria-label': 'Delete this photo', onclick: () => onDelete(item.image_id) }, 'Delete')
        : null);
    }
    const meta = li.querySelector('.meta');
    if (meta) meta.textContent = `Uploaded ${timeAgo(toMs(item.created_at))}`;
  });
}

/**
 * A photo's page: the largest rendition that fits (the browser picks from all three by width),
 * its owner and when it was uploaded, and its like button. The picture is made once per photo
 * (a refresh's new presigned URLs would download it again); the likes follow each refresh.
 */
export function renderPhoto(image) {
  const fig = $('photo-figure');
  if (fig.dataset.id !== image.image_id) {
    fig.dataset.id = image.image_id;
    const sizes = [...image.renditions].sort((a, b) => a.width - b.width);
    const largest = sizes[sizes.length - 1];
    const fallback = sizes.find((r) => r.width >= 1000) || largest;
    const img = largest ? h('img', {
      src: fallback.url,
      srcset: sizes.map((r) => `${r.url} ${r.width}w`).join(', '),
      sizes: '(max-width: 62rem) calc(100vw - 3rem), 58rem',
      width: largest.width, height: largest.height, alt: `Photo by ${image.owner_name}`, decoding: 'async',
    }) : null;
    fig.replaceChildren(...blurredUntilLoaded(img, image.placeholder, largest));
    $('photo-h').textContent = `Photo by ${image.owner_name}`;
    $('photo-meta').textContent = `Uploaded ${timeAgo(toMs(image.created_at))}`;
    $('photo-taken').textContent = takenLine(image);
    $('photo-taken').hidden = !takenLine(image);
  }
  $('photo-like').setAttribute('aria-pressed', !!image.liked_by_me);
  $('photo-likes').textContent = image.likes ?? 0;
}

/** Who likes the photo on its page, by name; `more` shows the Show more button. */
export function renderLikers(items, more) {
  $('likers-empty').hidden = items.length > 0;
  $('likers-more').hidden = !more;
  $('photo-likers').replaceChildren(...items.map((l) => h('li', {}, l.display_name)));
}

/** `img` with, while it loads, its placeholder painted over it (nothing when there is none). */
function blurredUntilLoaded(img, hash, size) {
  const blur = img && hash && placeholderCanvas(document, hash, size?.width, size?.height);
  if (!blur) return [img];
  const done = () => blur.remove();
  img.addEventListener('load', done, { once: true });
  img.addEventListener('error', done, { once: true });
  return [img, blur];
}

/** Recent photos: thumbnail, owner, and a Like toggle button with its count. */
export function renderFeed(items, onLike, settling, loaded) {
  $('feed-empty').hidden = !loaded || items.length > 0;
  sync($('feed'), items, (i) => i.image_id, (item) => {
    return h('li', { 'data-image-id': item.image_id },
      h('a', { class: 'frame', href: photoHref(item.image_id) }),
      h('p', { class: 'meta' }, h('span', { class: 'by' }), h('span', { class: 'when' })),
      h('div', { class: 'like' },
        h('button', { type: 'button', class: 'like-btn', 'aria-pressed': 'false', onclick: () => onLike(item.image_id) },
          h('span', { 'aria-hidden': 'true', class: 'heart' }, '♥'), ' Like'),
        h('span', { class: 'like-count' }, '0'),
        h('span', { class: 'sr-only' }, ' likes')));
  }, (li, item) => {
    const frame = li.querySelector('.frame');
    const url = item.thumbnail?.url;
    if (url && frame.dataset.url !== url) {
      // The first picture of this card is painted blurred until it loads; a refresh's new URL
      // replaces a loaded picture without a blur.
      const first = !frame.dataset.url;
      frame.dataset.url = url;
      const img = h('img', {
        src: url, alt: `Photo by ${item.owner_name}`, width: item.thumbnail.width,
        height: item.thumbnail.height, loading: 'lazy', decoding: 'async',
      });
      frame.replaceChildren(...blurredUntilLoaded(img, first && item.placeholder, item.thumbnail));
    }
    // Names are as of each read: a rename shows at the next refresh.
    li.querySelector('.by').textContent = `by ${item.owner_name}`;
    const img = frame.querySelector('img');
    if (img) img.alt = `Photo by ${item.owner_name}`;
    li.querySelector('.when').textContent = ` · ${timeAgo(toMs(item.published_at))}`;
    li.querySelector('.like-btn').setAttribute('aria-pressed', !!item.liked_by_me);
    li.querySelector('.like').toggleAttribute('data-settling', settling.has(item.image_id));
    li.querySelector('.like-count').textContent = item.likes ?? 0;
  });
}

/** The badge and the button's accessible name: "Notifications (2 unread)" or "Notifications". */
export function renderBadge(unread) {
  const badge = $('badge');
  badge.hidden = unread === 0;
  badge.textContent = unread;
  $('notif-btn').setAttribute('aria-label', notificationsLabel(unread));
}

export function renderNotifications(items, highlighted) {
  $('notif-empty').hidden = items.length > 0;
  sync($('notif-list'), items, (n) => n.id, () => h('li'), (li, n) => {
    const isNew = !!(n.unread || highlighted.has(n.id));
    // The time of its latest event (a likes notification's newest like), not its window's.
    const when = timeAgo(toMs(n.updated_at || n.created_at));
    const thumb = n.thumbnail;
    const sig = `${isNew}|${n.text}|${when}|${thumb?.url || ''}`;
    if (li.dataset.sig === sig) return;
    li.dataset.sig = sig;
    li.className = isNew ? 'unread' : '';
    li.replaceChildren(
      thumb ? h('a', { href: photoHref(n.image_id), 'aria-label': 'Open the photo' }, h('img', {
        class: 'notif-thumb', src: thumb.url, alt: '', width: thumb.width, height: thumb.height,
        loading: 'lazy', decoding: 'async',
      })) : null,
      h('span', { class: 'notif-text' },
        isNew ? h('span', { class: 'sr-only' }, 'New: ') : null,
        h('span', {}, n.text || ''),
        h('span', { class: 'meta' }, when ? ` · ${when}` : '')));
  });
}

let lastKind = '';
/** The aria-live status line. */
export function say(text, kind = 'info') {
  const el = $('status');
  if (el.textContent === text && lastKind === kind) return;
  lastKind = kind;
  el.textContent = text;
  el.className = `status ${text ? kind : ''}`;
}
