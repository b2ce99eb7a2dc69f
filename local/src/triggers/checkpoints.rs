//! Where a Kinesis mapping stands in each shard, kept on disk, so that a restarted
//! `cargo local run` goes on where the last one stopped, as an event source mapping does
//! on AWS. Deleting the file is a replay from the starting position (TRIM_HORIZON here).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    stream_arn: String,
    /// Shard id → the last sequence number processed or given up on.
    shards: BTreeMap<String, String>,
}

/// The checkpoints of one mapping: in memory only (tests, benchmarks) or in a JSON file.
#[derive(Debug, Clone, Default)]
pub struct CheckpointStore {
    path: Option<PathBuf>,
}

impl CheckpointStore {
    pub fn in_memory() -> CheckpointStore {
        CheckpointStore { path: None }
    }

    /// `{dir}/{mapping}.json`.
    pub fn in_dir(dir: &Path, mapping: &str) -> CheckpointStore {
        CheckpointStore {
            path: Some(dir.join(format!("{mapping}.json"))),
        }
    }

    /// Where the positions are kept, for messages.
    pub fn describe(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => "memory".to_owned(),
        }
    }

    /// The saved positions, if they belong to this stream. Checkpoints of another stream (a
    /// stack created anew has a new stream under the same name) are ignored: its sequence
    /// numbers mean nothing here.
    pub fn load(&self, stream_arn: &str) -> BTreeMap<String, String> {
        let Some(path) = &self.path else {
            return BTreeMap::new();
        };
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Saved>(&bytes).ok())
            .filter(|saved| saved.stream_arn == stream_arn)
            .map(|saved| saved.shards)
            .unwrap_or_default()
    }

    /// Writes the positions atomically (a temporary file renamed over the old one), so a
    /// process killed mid-write leaves the previous checkpoint, never a torn one.
    pub fn save(&self, stream_arn: &str, shards: &BTreeMap<String, String>) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let saved = Saved {
            stream_arn: stream_arn.to_owned(),
            shards: shards.clone(),
        };
        let temporary = path.with_extension("json.tmp");
        std::fs::write(
            &temporary,
            serde_json::to_vec_pretty(&saved).expect("checkpoints serialize"),
        )?;
        std::fs::rename(&temporary, path)
    }

    /// Forgets the positions: the next run starts from the mapping's starting position.
    pub fn clear(&self) -> std::io::Result<()> {
        match &self.path {
            Some(path) if path.exists() => std::fs::remove_file(path),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_survive_a_restart_of_the_same_stream_only() {
        // GIVEN a mapping that checkpointed a shard
        let dir = std::env::temp_dir().join(format!("snapglow-checkpoints-{}", std::process::id()));
        let store = CheckpointStore::in_dir(&dir, "Likes.Stream");
        let positions = BTreeMap::from([("shardId-000000000000".to_owned(), "42".to_owned())]);
        store.save("arn:stream/a", &positions).unwrap();

        // WHEN it starts again, THEN it continues on that stream, and not on a new one
        assert_eq!(store.load("arn:stream/a"), positions);
        assert!(store.load("arn:stream/b").is_empty());

        // AND a cleared store starts over
        store.clear().unwrap();
        assert!(store.load("arn:stream/a").is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
