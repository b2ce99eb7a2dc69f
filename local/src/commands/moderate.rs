//! `cargo local moderate`: the local classifier (open_nsfw in tract) on image files, answered
//! as Rekognition's `DetectModerationLabels` answers. The emulator runs it (`-`: the image on
//! stdin) to answer that call, which moto does not implement.

use anyhow::{Context, Result};
use moderation::Label;
use moderation::open_nsfw::{MODEL_NAME, OpenNsfw};
use serde_json::{Value, json};
use std::io::Read;
use std::path::Path;
use std::time::Instant;

/// Rekognition's answer: `ModerationLabels` (a top-level label's `ParentName` is empty, and its
/// `TaxonomyLevel` 1) and the model's version.
pub fn rekognition_answer(labels: &[Label]) -> Value {
    let labels: Vec<Value> = (labels.iter())
        .map(|l| {
            json!({
                "Name": l.name,
                "ParentName": l.parent,
                "Confidence": l.confidence,
                "TaxonomyLevel": if l.parent.is_empty() { 1 } else { 2 },
            })
        })
        .collect();
    json!({ "ModerationLabels": labels, "ModerationModelVersion": MODEL_NAME })
}

pub fn moderate(files: &[String], model: &Path) -> Result<()> {
    let loading = Instant::now();
    let classifier = OpenNsfw::load(model)?;
    let load_ms = loading.elapsed().as_secs_f64() * 1000.0;
    for file in files {
        let bytes = if file == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading the image from stdin")?;
            bytes
        } else {
            std::fs::read(file).with_context(|| format!("reading {file}"))?
        };
        let started = Instant::now();
        let scan = classifier
            .scan(&bytes)
            .with_context(|| format!("classifying {file}"))?;
        let mut answer = rekognition_answer(&scan.labels);
        if file != "-" {
            answer["file"] = json!(file);
            answer["scan_ms"] = json!(started.elapsed().as_secs_f64() * 1000.0);
            answer["model_load_ms"] = json!(load_ms);
        }
        println!("{answer}");
    }
    Ok(())
}
