//! `cargo local up` and `down`: the emulator and the template's resources in it.

use anyhow::{Context, Result, bail};

use snapglow_local::stack::emulator::{self, Emulator, LocalDir};
use snapglow_local::stack::project::project_root;
use snapglow_local::stack::{LocalPorts, StackInfo, deploy};

/// The recorded stack, if its emulator answers; the error says how to start one.
pub fn running_stack() -> Result<StackInfo> {
    let dir = LocalDir::new(&project_root());
    let stack = StackInfo::load(&dir.stack_file())?;
    if !emulator::is_up(port_of(&stack.endpoint_url)) {
        bail!(
            "the emulator of the local stack ({}) is not running; run `cargo local up`",
            stack.endpoint_url
        );
    }
    Ok(stack)
}

fn port_of(endpoint_url: &str) -> u16 {
    snapglow_local::stack::port_of(endpoint_url).unwrap_or(0)
}

/// How `up` and `demo` find their emulator: the recorded one if it answers, else a new one.
pub enum Start {
    /// Keep what the running emulator holds (`up`).
    Reuse,
    /// Wipe the running emulator, so the run's ground truth is its own (`demo`).
    Fresh,
}

/// Starts (or reuses) the emulator on `port`, creates the template's resources and records
/// the stack in `.local/stack.json`.
pub async fn bring_up(
    port: u16,
    stack_name: &str,
    ports: LocalPorts,
    start: Start,
) -> Result<StackInfo> {
    let root = project_root();
    let dir = LocalDir::new(&root);
    let template = ports.template(&root)?;
    let previous = StackInfo::load(&dir.stack_file())
        .ok()
        .filter(|s| emulator::is_up(port_of(&s.endpoint_url)));
    let started_here = previous.is_none();
    let (endpoint_url, emulator_pid) = match previous {
        Some(stack) => {
            if matches!(start, Start::Fresh) {
                emulator::reset(port_of(&stack.endpoint_url));
                let _ = std::fs::remove_dir_all(dir.checkpoints());
            } else {
                eprintln!("reusing the emulator at {}", stack.endpoint_url);
            }
            (stack.endpoint_url, stack.emulator_pid)
        }
        None => {
            let started = Emulator::start(&root, port, true)?;
            // Checkpoints belong to the previous emulator's streams.
            let _ = std::fs::remove_dir_all(dir.checkpoints());
            eprintln!(
                "emulator started at {} (log: {})",
                started.endpoint_url(),
                dir.log(&format!("emulator-{port}.log")).display()
            );
            (started.endpoint_url(), started.pid())
        }
    };
    let deployed = deploy(&template, stack_name, &endpoint_url).await;
    let mut stack = match deployed {
        Ok(stack) => stack,
        Err(error) => {
            // An emulator this call started would be left running with nothing recording it.
            if started_here && let Some(pid) = emulator_pid {
                emulator::stop_pid(pid);
            }
            return Err(error.into());
        }
    };
    stack.emulator_pid = emulator_pid;
    stack.api_url = Some(format!("http://127.0.0.1:{}", ports.api));
    stack.site_url = Some(format!("{}/", ports.site_origin()));
    stack.save(&dir.stack_file())?;
    Ok(stack)
}

pub async fn up(port: u16, stack_name: &str, ports: LocalPorts) -> Result<()> {
    let stack = bring_up(port, stack_name, ports, Start::Reuse).await?;
    for (id, resource) in &stack.resources {
        let place = resource.url().unwrap_or(&resource.name);
        let note = match (resource.function(), resource.emulated()) {
            (Some(_), _) => "  (runs under the local Runtime API: cargo local invoke)",
            (None, true) => "",
            (None, false) => "  (not emulated)",
        };
        let kind = resource.kind.type_name();
        eprintln!("  {id:<28} {kind:<28} {place}{note}");
    }
    eprintln!(
        "wrote {}",
        LocalDir::new(&project_root()).stack_file().display()
    );
    println!("{}", stack.endpoint_url);
    Ok(())
}

pub fn down() -> Result<()> {
    let dir = LocalDir::new(&project_root());
    let Ok(stack) = StackInfo::load(&dir.stack_file()) else {
        eprintln!(
            "no local stack is recorded in {}; nothing to stop",
            dir.stack_file().display()
        );
        return Ok(());
    };
    match stack.emulator_pid {
        Some(pid) if emulator::stop_pid(pid) => {
            eprintln!("stopped the emulator (pid {pid}) at {}", stack.endpoint_url)
        }
        _ if emulator::is_up(port_of(&stack.endpoint_url)) => {
            bail!(
                "an emulator answers at {} but `up` did not start it; stop it yourself",
                stack.endpoint_url
            );
        }
        _ => eprintln!("the emulator at {} was not running", stack.endpoint_url),
    }
    std::fs::remove_file(dir.stack_file())
        .with_context(|| format!("removing {}", dir.stack_file().display()))?;
    Ok(())
}
