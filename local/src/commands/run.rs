//! `cargo local run`: every mapping of the template against the real binaries.

use anyhow::{Context, Result};
use std::time::{Duration, Instant};

use super::stack::running_stack;
use snapglow_local::guard::Guard;
use snapglow_local::site::SiteServer;
use snapglow_local::stack::clients::LocalClients;
use snapglow_local::stack::emulator::LocalDir;
use snapglow_local::stack::presigned::PresignedGate;
use snapglow_local::stack::project::{build_binaries, project_root, template_path};
use snapglow_local::template::Template;
use snapglow_local::triggers::http::HttpApiServer;
use snapglow_local::triggers::pipeline::{self, Progress};
use snapglow_local::triggers::websocket::{Limits, LiveServer};
use snapglow_local::triggers::{MappingOptions, mappings};

/// `limits`: when the local WebSocket API closes connections (API Gateway's by default).
pub async fn run(until_idle: bool, replay: bool, release: bool, limits: Limits) -> Result<()> {
    let root = project_root();
    let dir = LocalDir::new(&root);
    let stack = running_stack()?;
    if replay {
        let _ = std::fs::remove_dir_all(dir.checkpoints());
        eprintln!("replay: every stream mapping starts again from its StartingPosition");
    }
    let binaries = stack.binaries();
    let binary_dir = build_binaries(
        &root,
        &binaries.iter().map(String::as_str).collect::<Vec<_>>(),
        release,
    )?;
    let gate = PresignedGate::for_stack(&stack)
        .await
        .context("starting the gate in front of S3 that checks presigned URLs")?;
    // The live WebSocket API first: the API issues tickets naming its URL, the pusher posts to
    // its management endpoint, and the site's policy lets pages reach it.
    let template = Template::load(&template_path(&root))?;
    let site_origin = format!("http://127.0.0.1:{}", stack.site_port());
    let live = LiveServer::start(
        &stack,
        &template,
        &binary_dir,
        &dir.logs(),
        0,
        limits,
        Guard::Origins(vec![site_origin]),
    )
    .await?;
    eprintln!("live WebSocket API at {}", live.url);
    let options = MappingOptions {
        checkpoints_dir: Some(dir.checkpoints()),
        ..Default::default()
    };
    let options = live.mapping_options(&gate.url, options);
    let mut mappings = mappings(&stack, &binary_dir, &dir.logs(), &options).await?;
    let api = HttpApiServer::start_with(
        &stack,
        &binary_dir,
        &dir.logs(),
        stack.api_port(),
        &gate.url,
        &live.api_environment(),
    )
    .await?;
    eprintln!(
        "HTTP API at {} (sign in: cargo local token <user>)",
        api.url
    );
    let clients = LocalClients::admin(&stack).await;
    let mailbox = snapglow_local::stack::port_of(&stack.endpoint_url)
        .map(|port| {
            snapglow_local::stack::emulator::mailbox(&root, port)
                .display()
                .to_string()
        })
        .unwrap_or_else(|| "the emulator's log directory".into());
    let site = SiteServer::start(
        &stack,
        &clients,
        &root.join("web"),
        &api.url,
        Some(&live.url),
        &gate.url,
        stack.site_port(),
    )
    .await?;
    eprintln!(
        "web client at {} (sign in as {}; sign-up codes, the local stand-in for email: {})",
        site.url,
        snapglow_local::site::DEMO_USERS.join(", "),
        mailbox
    );
    for mapping in &mappings {
        eprintln!(
            "mapping {} → {} (log: {})",
            mapping.name(),
            mapping.function().name(),
            dir.logs().display()
        );
    }
    let mut progress = Progress::every(Duration::from_secs(1));
    let started = Instant::now();
    let result = if until_idle {
        let limit = Duration::from_secs(1800);
        pipeline::run(&mut mappings, Some(limit), &mut progress).await
    } else {
        eprintln!("running until Ctrl-C");
        tokio::select! {
            result = pipeline::run(&mut mappings, None, &mut progress) => result,
            // A batch cut off here was not checkpointed: the next run delivers it again.
            _ = tokio::signal::ctrl_c() => Ok(Default::default()),
        }
    };
    for line in progress.lines() {
        eprintln!("{line}");
    }
    let stats = result?;
    println!(
        "{}",
        serde_json::json!({
            "seconds": started.elapsed().as_secs_f64(),
            "records": stats.records,
            "invocations": stats.invocations,
            "failed_invocations": stats.failed_invocations,
            "given_up": stats.given_up,
            "max_iterator_age_ms": stats.max_iterator_age_ms,
        })
    );
    Ok(())
}
