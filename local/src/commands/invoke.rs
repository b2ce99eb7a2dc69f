//! `cargo local invoke`: one function's real binary, one event file.

use anyhow::{Context, Result, bail};
use std::path::Path;

use super::stack::running_stack;
use snapglow_local::lambda::{self, LogSink};
use snapglow_local::stack::project::{build_binaries, project_root};

pub async fn invoke(function: &str, event: &Path, release: bool) -> Result<()> {
    let root = project_root();
    let stack = running_stack()?;
    let payload = std::fs::read(event)
        .with_context(|| format!("cannot read the event file {}", event.display()))?;
    serde_json::from_slice::<serde_json::Value>(&payload).with_context(|| {
        format!(
            "{} is not JSON; sample events are in events/",
            event.display()
        )
    })?;
    if stack.function_by_binary(function).is_none() {
        bail!(
            "unknown function {function:?}; choose one of: {}",
            stack.binaries().join(", ")
        );
    }
    let binary_dir = build_binaries(&root, &[function], release)?;
    let mut local = lambda::start(&stack, function, &binary_dir, LogSink::Stderr).await?;
    let response = local
        .invoke(payload)
        .await
        .with_context(|| format!("invoking {function} with {}", event.display()))?;
    if let Some(init) = local.last_init {
        eprintln!(
            "cold start: init {} ms (process start to first Runtime API poll)",
            init.as_millis()
        );
    }
    println!("{}", String::from_utf8_lossy(&response));
    Ok(())
}
