//! `cargo local <command>`: the no-Docker local stack. See README.md, "Local stack".

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use snapglow_local::clients::LocalClients;
use snapglow_local::emulator::{self, Emulator, LocalDir};
use snapglow_local::pipeline::{self, PipelineOptions, Progress};
use snapglow_local::project::{build_binaries, project_root, template_path};
use snapglow_local::runtime_api::LogSink;
use snapglow_local::stack::{StackInfo, deploy};
use snapglow_local::template::Template;
use snapglow_local::{functions, quarantine};

#[derive(Parser)]
#[command(
    name = "cargo local",
    about = "Run snapglow on this machine: an AWS emulator on 127.0.0.1 and the real function binaries, no Docker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the emulator (installing it on first use) and create every resource of template.yaml.
    Up {
        /// Port on 127.0.0.1 for the emulator.
        #[arg(long, env = "SNAPGLOW_LOCAL_PORT", default_value_t = 4566)]
        port: u16,
        /// Stack name: the prefix of every resource name, as with `sam deploy`.
        #[arg(long, default_value = "snapglow")]
        stack_name: String,
    },
    /// Run one function's real binary under a local Lambda Runtime API with an event file.
    Invoke {
        /// The function's folder under functions/: resize, like-counter, notifier.
        function: String,
        /// An event JSON file, e.g. events/resize/s3-upload.json.
        #[arg(long)]
        event: PathBuf,
        /// Build and run the release binary.
        #[arg(long)]
        release: bool,
    },
    /// Run every function's event source mappings as template.yaml declares them, on the
    /// local stack (`cargo local up` first): uploads → resize, the stream → like-counter and notifier.
    Run {
        /// Exit once every queue and shard is drained and nothing is in flight.
        #[arg(long)]
        until_idle: bool,
        /// Forget the saved stream positions and start again from each mapping's
        /// StartingPosition (TRIM_HORIZON): a replay of the whole stream.
        #[arg(long)]
        replay: bool,
        /// Build and run the release binaries.
        #[arg(long)]
        release: bool,
    },
    /// List the quarantined records as JSON lines (oldest first), without removing them.
    Quarantine,
    /// The whole pipeline on a fresh local stack: uploads, renditions, a like burst, counts and
    /// notifications, checked against the ground truth.
    Demo {
        /// Photos to upload (default: Debian wallpapers under /usr/share/backgrounds).
        photos: Vec<PathBuf>,
    },
    /// Print an image's like count: {"image_id": ..., "likes": N}.
    Likes { image_id: String },
    /// Put an ImageLiked event on the stream, as the likes API would.
    Like {
        image_id: String,
        user_id: String,
        /// Reuse an event id (a producer retry) instead of a fresh one.
        #[arg(long)]
        event_id: Option<uuid::Uuid>,
    },
    /// Put an ImageLikeUndone event on the stream, as the likes API would.
    Unlike {
        image_id: String,
        user_id: String,
        #[arg(long)]
        event_id: Option<uuid::Uuid>,
    },
    /// Print a user's notifications as a JSON array, most recent first.
    Inbox { user_id: String },
    /// Render a local image file exactly as the resize function does, writing the renditions.
    Render {
        file: PathBuf,
        #[arg(long, default_value = "renditions")]
        out: PathBuf,
        /// Renditions as name:long-edge pairs (the function's RENDITION_SIZES).
        #[arg(
            long,
            env = "RENDITION_SIZES",
            default_value = "large:2048,medium:1024,thumb:320"
        )]
        sizes: String,
    },
    /// Stop the emulator `up` started and forget the local stack.
    Down,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up { port, stack_name } => up(port, &stack_name).await,
        Command::Invoke {
            function,
            event,
            release,
        } => invoke(&function, &event, release).await,
        Command::Run {
            until_idle,
            replay,
            release,
        } => run(until_idle, replay, release).await,
        Command::Quarantine => list_quarantine().await,
        Command::Demo { photos } => demo(&photos).await,
        Command::Likes { image_id } => likes(&image_id).await,
        Command::Like {
            image_id,
            user_id,
            event_id,
        } => like(&image_id, &user_id, true, event_id).await,
        Command::Unlike {
            image_id,
            user_id,
            event_id,
        } => like(&image_id, &user_id, false, event_id).await,
        Command::Inbox { user_id } => inbox(&user_id).await,
        Command::Render { file, out, sizes } => render(&file, &out, &sizes),
        Command::Down => down(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn running_stack() -> Result<StackInfo, String> {
    let dir = LocalDir::new(&project_root());
    let stack = StackInfo::load(&dir.stack_file()).map_err(|e| e.to_string())?;
    let port = port_of(&stack.endpoint_url);
    if !emulator::is_up(port) {
        return Err(format!(
            "the emulator of the local stack ({}) is not running; run `cargo local up`",
            stack.endpoint_url
        ));
    }
    Ok(stack)
}

fn port_of(endpoint_url: &str) -> u16 {
    endpoint_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

async fn up(port: u16, stack_name: &str) -> Result<(), String> {
    let root = project_root();
    let dir = LocalDir::new(&root);
    let template = Template::load(&template_path(&root)).map_err(|e| e.to_string())?;
    let previous = StackInfo::load(&dir.stack_file())
        .ok()
        .filter(|s| emulator::is_up(port_of(&s.endpoint_url)));
    let (endpoint_url, emulator_pid) = match &previous {
        Some(stack) => {
            eprintln!("reusing the emulator at {}", stack.endpoint_url);
            (stack.endpoint_url.clone(), stack.emulator_pid)
        }
        None => {
            let started = Emulator::start(&root, port, true).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_dir_all(dir.checkpoints());
            eprintln!(
                "emulator started at {} (log: {})",
                started.endpoint_url(),
                dir.log(&format!("emulator-{port}.log")).display()
            );
            (started.endpoint_url(), started.pid())
        }
    };
    let mut stack = deploy(&template, stack_name, &endpoint_url)
        .await
        .map_err(|e| e.to_string())?;
    stack.emulator_pid = emulator_pid;
    stack.save(&dir.stack_file()).map_err(|e| e.to_string())?;
    for (id, resource) in &stack.resources {
        let place = resource
            .url
            .as_deref()
            .or(resource.name.as_deref())
            .unwrap_or("");
        let note = match (&resource.function, resource.emulated) {
            (Some(_), _) => "  (runs under the local Runtime API: cargo local invoke)",
            (None, true) => "",
            (None, false) => "  (not emulated)",
        };
        eprintln!("  {id:<28} {:<28} {place}{note}", resource.kind);
    }
    eprintln!("wrote {}", dir.stack_file().display());
    println!("{}", stack.endpoint_url);
    Ok(())
}

async fn invoke(function: &str, event: &std::path::Path, release: bool) -> Result<(), String> {
    let root = project_root();
    let stack = running_stack()?;
    let payload = std::fs::read(event)
        .map_err(|e| format!("cannot read the event file {}: {e}", event.display()))?;
    serde_json::from_slice::<serde_json::Value>(&payload)
        .map_err(|e| format!("{} is not JSON: {e}", event.display()))?;
    if stack.function_by_binary(function).is_none() {
        return Err(format!(
            "unknown function {function:?}; choose one of: {}",
            functions::known_binaries(&stack).join(", ")
        ));
    }
    let binary_dir = build_binaries(&root, &[function], release).map_err(|e| e.to_string())?;
    let mut local = functions::start(&stack, function, &binary_dir, LogSink::Stderr)
        .await
        .map_err(|e| e.to_string())?;
    let response = local.invoke(payload).await.map_err(|e| e.to_string())?;
    if let Some(init) = local.last_init {
        eprintln!(
            "cold start: init {} ms (process start to first Runtime API poll)",
            init.as_millis()
        );
    }
    println!("{}", String::from_utf8_lossy(&response));
    Ok(())
}

async fn run(until_idle: bool, replay: bool, release: bool) -> Result<(), String> {
    let root = project_root();
    let dir = LocalDir::new(&root);
    let stack = running_stack()?;
    if replay {
        let _ = std::fs::remove_dir_all(dir.checkpoints());
        eprintln!("replay: every stream mapping starts again from its StartingPosition");
    }
    let binaries = functions::known_binaries(&stack);
    let binary_dir = build_binaries(
        &root,
        &binaries.iter().map(String::as_str).collect::<Vec<_>>(),
        release,
    )
    .map_err(|e| e.to_string())?;
    let options = PipelineOptions {
        checkpoints_dir: Some(dir.checkpoints()),
        ..Default::default()
    };
    let mut mappings = pipeline::mappings(&stack, &binary_dir, &dir.logs(), &options).await?;
    for mapping in &mappings {
        eprintln!(
            "mapping {} → {} (log: {})",
            mapping.name(),
            mapping.function().name(),
            dir.logs().display()
        );
    }
    let clients = LocalClients::new(&stack.endpoint_url).await;
    let mut progress = Progress::every(std::time::Duration::from_secs(1));
    let started = std::time::Instant::now();
    let result = if until_idle {
        let limit = std::time::Duration::from_secs(1800);
        pipeline::run(&mut mappings, &clients, Some(limit), &mut progress).await
    } else {
        eprintln!("running until Ctrl-C");
        tokio::select! {
            result = pipeline::run(&mut mappings, &clients, None, &mut progress) => result,
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

async fn list_quarantine() -> Result<(), String> {
    let stack = running_stack()?;
    let clients = LocalClients::new(&stack.endpoint_url).await;
    for body in quarantine::list(&clients, stack.url_of("QuarantineQueue")).await? {
        println!("{body}");
    }
    Ok(())
}

fn down() -> Result<(), String> {
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
            return Err(format!(
                "an emulator answers at {} but `up` did not start it; stop it yourself",
                stack.endpoint_url
            ));
        }
        _ => eprintln!("the emulator at {} was not running", stack.endpoint_url),
    }
    std::fs::remove_file(dir.stack_file()).map_err(|e| e.to_string())?;
    Ok(())
}

async fn demo(photos: &[PathBuf]) -> Result<(), String> {
    let root = project_root();
    let dir = LocalDir::new(&root);
    let template = Template::load(&template_path(&root)).map_err(|e| e.to_string())?;
    // A fresh stack, so that the ground truth is this run's alone.
    let running = StackInfo::load(&dir.stack_file())
        .ok()
        .filter(|s| emulator::is_up(port_of(&s.endpoint_url)));
    let (endpoint_url, emulator_pid) = match running {
        Some(stack) => {
            emulator::reset(port_of(&stack.endpoint_url));
            let _ = std::fs::remove_dir_all(dir.checkpoints());
            (stack.endpoint_url, stack.emulator_pid)
        }
        None => {
            let port: u16 = std::env::var("SNAPGLOW_LOCAL_PORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(4566);
            let started = Emulator::start(&root, port, true).map_err(|e| e.to_string())?;
            (started.endpoint_url(), started.pid())
        }
    };
    let mut stack = deploy(&template, "snapglow", &endpoint_url)
        .await
        .map_err(|e| e.to_string())?;
    stack.emulator_pid = emulator_pid;
    stack.save(&dir.stack_file()).map_err(|e| e.to_string())?;
    println!("local stack at {endpoint_url} (from template.yaml)");
    let binaries = snapglow_local::functions::known_binaries(&stack);
    let binary_dir = build_binaries(
        &root,
        &binaries.iter().map(String::as_str).collect::<Vec<_>>(),
        false,
    )
    .map_err(|e| e.to_string())?;
    if snapglow_local::demo::run(&stack, &root, &binary_dir, photos).await? {
        Ok(())
    } else {
        Err("the like counts do not match the ground truth".into())
    }
}

async fn likes(image_id: &str) -> Result<(), String> {
    let stack = running_stack()?;
    let clients = LocalClients::new(&stack.endpoint_url).await;
    let table = like_counter::table::LikesTable::new(
        clients.dynamodb,
        stack.name_of("LikesTable"),
        std::time::Duration::from_secs(3600),
    );
    let count = table.count(image_id).await.map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::json!({ "image_id": image_id, "likes": count })
    );
    Ok(())
}

async fn like(
    image_id: &str,
    user_id: &str,
    liked: bool,
    event_id: Option<uuid::Uuid>,
) -> Result<(), String> {
    let stack = running_stack()?;
    let clients = LocalClients::new(&stack.endpoint_url).await;
    let publisher =
        snapglow::stream::StreamPublisher::new(clients.kinesis, stack.name_of("ImageSocialEvents"));
    let envelope = snapglow_local::producer::like_event(
        image_id,
        user_id,
        liked,
        event_id,
        snapglow::contracts::Timestamp::now(),
    );
    let sequence = publisher
        .publish(&envelope)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::json!({ "event_id": envelope.event_id, "type": envelope.event.type_name(), "sequence_number": sequence })
    );
    Ok(())
}

async fn inbox(user_id: &str) -> Result<(), String> {
    let stack = running_stack()?;
    let clients = LocalClients::new(&stack.endpoint_url).await;
    let table = notifier::table::NotificationsTable::new(
        clients.dynamodb,
        stack.name_of("NotificationsTable"),
        std::time::Duration::from_secs(86_400),
        std::time::Duration::from_secs(3600),
    );
    let notifications = table.inbox(user_id).await.map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&notifications).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn render(file: &std::path::Path, out: &std::path::Path, sizes: &str) -> Result<(), String> {
    let specs = resize::render::parse_specs(sizes).map_err(|e| format!("--sizes: {e}"))?;
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let rendered = resize::render::render(&bytes, &specs, resize::render::Limits::default())
        .map_err(|e| format!("{}: rejected ({}): {e}", file.display(), e.reason_code()))?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for r in &rendered.renditions {
        let path = out.join(format!("{}.{}", r.name, r.extension));
        std::fs::write(&path, &r.bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        println!(
            "{}",
            serde_json::json!({ "name": r.name, "width": r.width, "height": r.height, "bytes": r.bytes.len(), "content_type": r.content_type, "path": path })
        );
    }
    Ok(())
}
