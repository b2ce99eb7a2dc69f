//! The API's store in memory, for the handlers' tests. It keeps the conditions the handlers
//! rely on: an upload is counted only under the hour's and the day's limits, a request only
//! under the minute's, a like is written only over
//! the state it was decided on, a deletion only over the status it was decided on, a notification is marked read once, listings are newest first
//! and at most `limit` long.
//!
//! A test plays a competing request of the same user with [`MemoryStore::race`]: its like
//! state is committed right before the next like write, which then finds the state changed.

use snapglow::batch::Deadline;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use super::{
    Accounts, Cursor, DisplayName, GivenLike, ImageDeletion, ImageRecord, Images, Inbox,
    LikeChange, LikeState, LikedBy, Likes, Limits, Links, NewImage, Notification, Presigned,
    Profile, Profiles, Status, StoreError, Taken, Tickets, UploadQuota, UserId,
};

#[derive(Default)]
pub struct MemoryStore {
    pub images: Mutex<BTreeMap<String, ImageRecord>>,
    /// (image, user) → the like state and the event its write carried.
    pub likes: Mutex<BTreeMap<(String, String), (LikeState, String)>>,
    /// (user, hour start) → the images uploads were issued for.
    pub slots: Mutex<BTreeMap<(String, i64), BTreeSet<String>>>,
    /// (user, day start) → the bytes uploads were issued for.
    pub day_bytes: Mutex<BTreeMap<(String, i64), u64>>,
    /// (user, minute start) → requests counted.
    pub requests: Mutex<BTreeMap<(String, i64), u64>>,
    /// user → their inbox, newest first.
    pub inboxes: Mutex<BTreeMap<String, Vec<Notification>>>,
    /// A competing request's change, committed right before the next like write.
    pub race: Mutex<Option<LikeState>>,
    /// An image its owner deletes right before the next like write lands.
    pub deleted_before_like: Mutex<Option<String>>,
    /// Like writes that were applied.
    pub writes: Mutex<usize>,
    /// Deletions written (each with its event).
    pub deleted_events: Mutex<usize>,
    /// (image, user) of like items retired by an account's erasure: out of `likes_given`.
    pub retired: Mutex<BTreeSet<(String, String)>>,
    /// Erased accounts (with the first mark's time and, once settled, its expiry), and the
    /// users deleted from the pool.
    pub erased: Mutex<BTreeSet<String>>,
    pub erased_at: Mutex<BTreeMap<String, i64>>,
    pub mark_expires: Mutex<BTreeMap<String, i64>>,
    pub pool_deleted: Mutex<Vec<String>>,
    /// Retirements of likes that succeed before the next one fails as DynamoDB's outage
    /// would: an erasure cut short halfway.
    pub retire_fails_after: Mutex<Option<usize>>,
    /// `likes_given` lists each like one revision behind, as an index that has not caught up
    /// with the like's last change does.
    pub stale_given: Mutex<bool>,
    /// user → their profile.
    pub profiles: Mutex<BTreeMap<String, Profile>>,
    /// username → the `name` they gave at sign-up (the pool's attribute).
    pub signup_names: Mutex<BTreeMap<String, String>>,
    /// Name reads (`display_names` calls): one per page.
    pub name_reads: Mutex<usize>,
    /// Issued live tickets: key → (user, expiry).
    pub tickets: Mutex<BTreeMap<String, (String, i64)>>,
}

/// At most `limit` of `items`, in their order (the twin hands out no cursors).
fn page<T>(mut items: Vec<T>, limit: i32) -> (Vec<T>, Option<Cursor>) {
    items.truncate(usize::try_from(limit).unwrap_or(0));
    (items, None)
}

impl Images for MemoryStore {
    /// As the table's transaction: both quotas or neither, and a repeat for the same image
    /// takes nothing.
    async fn take_upload_quota(
        &self,
        user: &str,
        quota: &UploadQuota,
        image_id: &str,
        bytes: u64,
        _: &Deadline,
    ) -> Result<Taken, StoreError> {
        let mut slots = self.slots.lock().unwrap();
        let mut days = self.day_bytes.lock().unwrap();
        let taken = slots
            .entry((user.to_owned(), quota.hour_start_ms))
            .or_default();
        let day = days
            .entry((user.to_owned(), quota.day_start_ms))
            .or_default();
        Ok(if taken.contains(image_id) {
            Taken::Yes
        } else if taken.len() as u64 >= quota.uploads_per_hour {
            Taken::HourSpent
        } else if *day + bytes > quota.bytes_per_day {
            Taken::DaySpent
        } else {
            taken.insert(image_id.to_owned());
            *day += bytes;
            Taken::Yes
        })
    }

    async fn create_image(&self, image: &NewImage) -> Result<(), StoreError> {
        self.images.lock().unwrap().insert(
            image.image_id.clone(),
            ImageRecord {
                image_id: image.image_id.clone(),
                owner_id: image.owner_id.clone(),
                published_at_ms: None,
                status: Status::Pending,
                content_type: image.content_type.clone(),
                upload_key: image.upload_key.clone(),
                created_at_ms: image.created_at_ms,
                correlation_id: image.correlation_id.clone(),
                reason: None,
                message: None,
                renditions: vec![],
                details: Default::default(),
            },
        );
        Ok(())
    }

    async fn delete_image(&self, deletion: &ImageDeletion) -> Result<bool, StoreError> {
        let mut images = self.images.lock().unwrap();
        match images.get_mut(&deletion.image_id) {
            Some(image) if image.status == deletion.was => {
                image.status = Status::Deleted;
                image.renditions.clear();
                image.published_at_ms = None;
                *self.deleted_events.lock().unwrap() += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn image(&self, id: &str) -> Result<Option<ImageRecord>, StoreError> {
        Ok(self.images.lock().unwrap().get(id).cloned())
    }

    async fn my_images(
        &self,
        user: &str,
        limit: i32,
        _: Option<Cursor>,
    ) -> Result<(Vec<ImageRecord>, Option<Cursor>), StoreError> {
        let mut mine: Vec<ImageRecord> = (self.images.lock().unwrap().values())
            .filter(|i| i.owner_id == user && i.status != Status::Deleted)
            .cloned()
            .collect();
        mine.sort_by_key(|i| std::cmp::Reverse(i.created_at_ms));
        Ok(page(mine, limit))
    }

    async fn thumbnails(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, snapglow::contracts::RenditionV1>, StoreError> {
        let images = self.images.lock().unwrap();
        Ok(ids
            .iter()
            .filter_map(|id| {
                let image = images.get(id).filter(|i| i.status == Status::Published)?;
                let smallest = image.renditions.iter().min_by_key(|r| r.width)?;
                Some((id.clone(), smallest.clone()))
            })
            .collect())
    }

    async fn feed(
        &self,
        limit: i32,
        _: Option<Cursor>,
    ) -> Result<(Vec<ImageRecord>, Option<Cursor>), StoreError> {
        let mut published: Vec<ImageRecord> = (self.images.lock().unwrap().values())
            .filter(|i| i.status == Status::Published)
            .cloned()
            .collect();
        published.sort_by_key(|i| std::cmp::Reverse(i.published_at_ms));
        Ok(page(published, limit))
    }
}

impl Likes for MemoryStore {
    async fn like_state(&self, id: &str, user: &str) -> Result<Option<LikeState>, StoreError> {
        let likes = self.likes.lock().unwrap();
        Ok(likes
            .get(&(id.to_owned(), user.to_owned()))
            .map(|(s, _)| *s))
    }

    async fn write_like(&self, change: &LikeChange) -> Result<bool, StoreError> {
        if let Some(id) = self.deleted_before_like.lock().unwrap().take()
            && let Some(image) = self.images.lock().unwrap().get_mut(&id)
        {
            image.status = Status::Deleted;
        }
        let key = (change.image_id.clone(), change.user_id.clone());
        let mut likes = self.likes.lock().unwrap();
        if let Some(raced) = self.race.lock().unwrap().take() {
            likes.insert(key.clone(), (raced, "{}".into()));
        }
        // The table's condition: the stored revision is still the one the change replaces.
        if likes.get(&key).map(|(s, _)| s.revision) != change.previous.map(|p| p.revision) {
            return Ok(false);
        }
        *self.writes.lock().unwrap() += 1;
        // The write sets `user_id` again: the like is back in the user's listing.
        self.retired.lock().unwrap().remove(&key);
        likes.insert(key, (change.next, change.event_json.clone()));
        Ok(true)
    }

    async fn likes_given(&self, user: &str, limit: i32) -> Result<Vec<GivenLike>, StoreError> {
        let retired = self.retired.lock().unwrap();
        Ok((self.likes.lock().unwrap().iter())
            .filter(|((image, u), _)| u == user && !retired.contains(&(image.clone(), u.clone())))
            .take(limit.max(0) as usize)
            .map(|((image, _), (state, _))| GivenLike {
                image_id: image.clone(),
                state: if *self.stale_given.lock().unwrap() {
                    LikeState {
                        revision: state.revision.saturating_sub(1),
                        ..*state
                    }
                } else {
                    *state
                },
            })
            .collect())
    }

    async fn retire_like(
        &self,
        image: &str,
        user: &str,
        revision: u64,
        unlike: Option<&LikeChange>,
        _: i64,
    ) -> Result<bool, StoreError> {
        if let Some(left) = self.retire_fails_after.lock().unwrap().as_mut() {
            if *left == 0 {
                let outage = snapglow::table::TableError::transient("memory", "an outage");
                return Err(outage.into());
            }
            *left -= 1;
        }
        let key = (image.to_owned(), user.to_owned());
        let mut likes = self.likes.lock().unwrap();
        match likes.get(&key) {
            Some((state, _)) if state.revision == revision => {}
            _ => return Ok(false),
        }
        if let Some(change) = unlike {
            *self.writes.lock().unwrap() += 1;
            likes.insert(key.clone(), (change.next, change.event_json.clone()));
        }
        self.retired.lock().unwrap().insert(key);
        Ok(true)
    }

    /// As the Query: the image's like items in user order, the standing ones.
    async fn likers(
        &self,
        id: &str,
        limit: i32,
        _: Option<Cursor>,
    ) -> Result<(Vec<LikedBy>, Option<Cursor>), StoreError> {
        let likes = self.likes.lock().unwrap();
        let standing = (likes.iter())
            .filter(|((image, _), (state, _))| image == id && state.liked)
            .map(|((_, user), (state, _))| LikedBy {
                user_id: user.clone(),
                occurred_at_ms: state.occurred_at_ms,
            })
            .collect();
        Ok(page(standing, limit))
    }

    async fn like_count(&self, id: &str) -> Result<i64, StoreError> {
        let likes = self.likes.lock().unwrap();
        let count = likes
            .iter()
            .filter(|((image, _), (state, _))| image == id && state.liked)
            .count();
        Ok(count as i64)
    }

    async fn likes_of(
        &self,
        ids: &[String],
        user: &str,
    ) -> Result<HashMap<String, (i64, bool)>, StoreError> {
        let mut all = HashMap::new();
        for id in ids {
            let mine = self.like_state(id, user).await?.is_some_and(|s| s.liked);
            all.insert(id.clone(), (self.like_count(id).await?, mine));
        }
        Ok(all)
    }
}

impl Inbox for MemoryStore {
    async fn inbox(
        &self,
        user: &str,
        limit: i32,
        _: Option<Cursor>,
    ) -> Result<(Vec<Notification>, Option<Cursor>), StoreError> {
        let inboxes = self.inboxes.lock().unwrap();
        Ok(page(inboxes.get(user).cloned().unwrap_or_default(), limit))
    }

    /// Like notifier's reader: counts the unread notifications of the user's own inbox that
    /// `keys` name and became read.
    async fn mark_read(
        &self,
        user: &str,
        keys: &[String],
        _: &Deadline,
    ) -> Result<usize, StoreError> {
        let mut inboxes = self.inboxes.lock().unwrap();
        let unread = (inboxes.get_mut(user).into_iter().flatten())
            .filter(|n| keys.contains(&n.key) && n.unread);
        Ok(unread.map(|n| n.unread = false).count())
    }
}

impl Limits for MemoryStore {
    async fn take_request(&self, user: &str, minute: i64, limit: u64) -> Result<bool, StoreError> {
        let mut requests = self.requests.lock().unwrap();
        let counted = requests.entry((user.to_owned(), minute)).or_default();
        Ok(*counted < limit && {
            *counted += 1;
            true
        })
    }
}

impl Accounts for MemoryStore {
    async fn erased(&self, user: &str) -> Result<bool, StoreError> {
        Ok(self.erased.lock().unwrap().contains(user))
    }

    async fn mark_erased(&self, user: &str, at_ms: i64) -> Result<i64, StoreError> {
        self.erased.lock().unwrap().insert(user.to_owned());
        Ok(*self
            .erased_at
            .lock()
            .unwrap()
            .entry(user.to_owned())
            .or_insert(at_ms))
    }

    async fn settle_mark(&self, user: &str, expires_at_s: i64) -> Result<(), StoreError> {
        self.mark_expires
            .lock()
            .unwrap()
            .insert(user.to_owned(), expires_at_s);
        Ok(())
    }

    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        let mut deleted = self.pool_deleted.lock().unwrap();
        if !deleted.iter().any(|u| u == username) {
            deleted.push(username.to_owned());
        }
        Ok(true)
    }
}

impl Profiles for MemoryStore {
    async fn profile(&self, user: &str) -> Result<Option<Profile>, StoreError> {
        Ok(self.profiles.lock().unwrap().get(user).cloned())
    }

    /// As the table's conditional put: a seed (`only_new`) never overwrites.
    async fn put_profile(
        &self,
        user: &str,
        profile: &Profile,
        only_new: bool,
    ) -> Result<bool, StoreError> {
        let mut profiles = self.profiles.lock().unwrap();
        if only_new && profiles.contains_key(user) {
            return Ok(false);
        }
        profiles.insert(user.to_owned(), profile.clone());
        Ok(true)
    }

    async fn erase_profile(&self, user: &str, _: i64) -> Result<(), StoreError> {
        self.profiles.lock().unwrap().remove(user);
        Ok(())
    }

    async fn display_names(
        &self,
        users: &[String],
    ) -> Result<HashMap<UserId, DisplayName>, StoreError> {
        *self.name_reads.lock().unwrap() += 1;
        let profiles = self.profiles.lock().unwrap();
        Ok((users.iter())
            .filter_map(|u| Some((u.clone(), profiles.get(u)?.display_name.clone())))
            .collect())
    }

    async fn signup_name(&self, username: &str) -> Result<Option<DisplayName>, StoreError> {
        Ok(self.signup_names.lock().unwrap().get(username).cloned())
    }
}

impl Tickets for MemoryStore {
    async fn issue_ticket(
        &self,
        key: &str,
        user: &str,
        expires_at_s: i64,
    ) -> Result<(), StoreError> {
        (self.tickets.lock().unwrap()).insert(key.to_owned(), (user.to_owned(), expires_at_s));
        Ok(())
    }
}

impl Links for MemoryStore {
    async fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        length: u64,
    ) -> Result<Presigned, StoreError> {
        Ok(Presigned {
            method: "PUT".into(),
            url: format!(
                "https://uploads.example/{key}?X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bif-none-match"
            ),
            headers: BTreeMap::from([
                ("content-type".into(), content_type.into()),
                ("content-length".into(), length.to_string()),
                ("if-none-match".into(), "*".into()),
            ]),
        })
    }

    async fn rendition_url(&self, key: &str) -> Result<String, StoreError> {
        Ok(format!("https://renditions.example/{key}?signed"))
    }
}
