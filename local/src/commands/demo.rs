//! `cargo local demo`: the whole pipeline on a fresh local stack.

use anyhow::{Result, bail};
use std::path::PathBuf;

use super::stack::{Start, bring_up};
use snapglow_local::scenarios::demo;
use snapglow_local::stack::project::{build_binaries, project_root};

pub async fn demo(photos: &[PathBuf]) -> Result<()> {
    let root = project_root();
    let port: u16 = std::env::var("SNAPGLOW_LOCAL_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(4566);
    let api_port: u16 = std::env::var("SNAPGLOW_API_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let stack = bring_up(port, "snapglow", api_port, Start::Fresh).await?;
    println!("local stack at {} (from template.yaml)", stack.endpoint_url);
    let binaries = stack.binaries();
    let binary_dir = build_binaries(
        &root,
        &binaries.iter().map(String::as_str).collect::<Vec<_>>(),
        false,
    )?;
    if !demo::run(&stack, &root, &binary_dir, photos).await? {
        bail!(
            "the like counts do not match the ground truth; the tables are left as they are for `cargo local likes`"
        );
    }
    Ok(())
}
