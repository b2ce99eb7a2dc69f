//! `cargo local demo`: the whole pipeline on a fresh local stack.

use anyhow::{Result, bail};
use std::path::PathBuf;

use std::io::IsTerminal;

use super::stack::{Start, bring_up};
use snapglow_local::scenarios::demo;
use snapglow_local::stack::LocalPorts;
use snapglow_local::stack::project::{build_binaries, project_root};

pub async fn demo(photos: &[PathBuf]) -> Result<()> {
    let root = project_root();
    let port: u16 = std::env::var("SNAPGLOW_LOCAL_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(4566);
    let env_port = |name: &str, default: u16| {
        std::env::var(name)
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(default)
    };
    let ports = LocalPorts::new(
        env_port("SNAPGLOW_API_PORT", LocalPorts::default().api),
        env_port("SNAPGLOW_SITE_PORT", LocalPorts::default().site),
    );
    let stack = bring_up(port, "snapglow", ports, Start::Fresh).await?;
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
    let users = snapglow_local::site::DEMO_USERS.join(", ");
    // A newcomer at a terminal gets the populated stack in a browser; a script gets its exit.
    if std::io::stdin().is_terminal() {
        println!(
            "\nthe web client: {} (sign in as {users}); serving until Ctrl-C",
            stack.site_url.as_deref().unwrap_or_default()
        );
        return super::run::run(false, false, false, Default::default()).await;
    }
    println!(
        "\nthe web client: `cargo local run`, then open {} and sign in as {users}",
        stack.site_url.as_deref().unwrap_or_default()
    );
    Ok(())
}
