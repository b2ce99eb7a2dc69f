//! The eraser's storage in memory, for the batch tests: buckets of keys, the image statuses
//! and like items, and a bucket that fails its next deletes as DeleteObjects can (a 200 whose
//! `Errors` names keys).

use snapglow::batch::Deadline;
use snapglow::table::TableError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::{Bucket, Erasure, FilesError, KeysNotDeleted, ObjectKey, Recorded};

#[derive(Default)]
pub struct MemoryErasure {
    pub objects: Mutex<BTreeSet<(Bucket, String)>>,
    /// image id → status of its image item.
    pub images: Mutex<BTreeMap<String, String>>,
    /// (image id, user id) of like items.
    pub likes: Mutex<BTreeSet<(String, String)>>,
    /// Deletes from this bucket fail, once each, with this S3 error code.
    pub failing: Mutex<Option<(Bucket, &'static str)>>,
}

impl Erasure for MemoryErasure {
    async fn recorded(&self, image_id: &str) -> Result<Recorded, TableError> {
        Ok(match self.images.lock().unwrap().get(image_id) {
            None => Recorded::Absent,
            Some(status) if status == "deleted" => Recorded::Deleted,
            Some(status) => Recorded::Live(status.clone()),
        })
    }

    async fn renditions_of(&self, image_id: &str) -> Result<Vec<ObjectKey>, FilesError> {
        let prefix = format!("renditions/{image_id}/");
        Ok((self.objects.lock().unwrap().iter())
            .filter(|(bucket, key)| *bucket == Bucket::Renditions && key.starts_with(&prefix))
            .map(|(_, key)| key.clone())
            .collect())
    }

    async fn delete_objects(&self, bucket: Bucket, keys: &[String]) -> Result<(), FilesError> {
        let failing = {
            let mut failing = self.failing.lock().unwrap();
            match *failing {
                Some((on, code)) if on == bucket => failing.take().map(|_| code),
                _ => None,
            }
        };
        if let Some(code) = failing {
            let not_deleted = KeysNotDeleted(
                (keys.iter())
                    .map(|key| (key.clone(), code.to_owned(), String::new()))
                    .collect(),
            );
            let refused = not_deleted.refused();
            let bucket = format!("{bucket:?}");
            return Err(FilesError::of(
                &bucket,
                keys.len(),
                refused,
                Box::new(not_deleted),
            ));
        }
        let mut objects = self.objects.lock().unwrap();
        for key in keys {
            objects.remove(&(bucket, key.clone()));
        }
        Ok(())
    }

    async fn delete_like_items(&self, image_id: &str, _: &Deadline) -> Result<usize, TableError> {
        let mut likes = self.likes.lock().unwrap();
        let before = likes.len();
        likes.retain(|(image, _)| image != image_id);
        Ok(before - likes.len())
    }
}
