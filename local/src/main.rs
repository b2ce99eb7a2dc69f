//! `cargo local <command>`: the no-Docker local stack. See README.md, "The local stack".

mod commands;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use commands::{demo, inspect, invoke, moderate, produce, render, run, stack};
use snapglow_local::stack::LocalPorts;

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
        /// Port on 127.0.0.1 where `cargo local run` serves the template's HTTP API.
        #[arg(long, env = "SNAPGLOW_API_PORT", default_value_t = 3001)]
        api_port: u16,
        /// Port on 127.0.0.1 where `cargo local run` serves the web client; the stack's
        /// AllowedOrigin (CORS) is this origin.
        #[arg(long, env = "SNAPGLOW_SITE_PORT", default_value_t = 3000)]
        site_port: u16,
    },
    /// Run one function's real binary under a local Lambda Runtime API with an event file.
    Invoke {
        /// The function's folder under functions/: resize, like-counter, notifier, relay, eraser,
        /// api.
        function: String,
        /// An event JSON file, e.g. events/sqs/s3-object-created.json.
        #[arg(long)]
        event: PathBuf,
        /// Build and run the release binary.
        #[arg(long)]
        release: bool,
    },
    /// Run every function's event source mappings as template.yaml declares them, on the
    /// local stack (`cargo local up` first), and serve its HTTP API: uploads → resize, the
    /// images table's stream → relay → the event stream → like-counter, notifier and eraser.
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
        /// Close a WebSocket connection idle this long (API Gateway: 600 s).
        #[arg(long, default_value_t = 600)]
        ws_idle_seconds: u64,
        /// Close every WebSocket connection after this long (API Gateway: 7200 s).
        #[arg(long, default_value_t = 7200)]
        ws_lifetime_seconds: u64,
    },
    /// List the quarantined records as JSON lines (oldest first, each with its message `id`),
    /// without removing them; `redrive <id>` puts one back where it came from.
    Quarantine {
        #[command(subcommand)]
        action: Option<QuarantineAction>,
    },
    /// Put every event the images table holds from `--since` on back on the stream (image
    /// events first): what a reader missed for longer than the stream keeps records.
    ReplayOutbox {
        /// RFC 3339 time, e.g. 2026-12-07T00:00:00Z; within DedupRetentionHours of now.
        #[arg(long)]
        since: String,
    },
    /// The whole pipeline on a fresh local stack: uploads, renditions, a like burst, counts and
    /// notifications, checked against the ground truth.
    Demo {
        /// Photos to upload (default: Debian wallpapers under /usr/share/backgrounds).
        photos: Vec<PathBuf>,
    },
    /// Print an image's like count: {"image_id": ..., "likes": N}.
    Likes { image_id: String },
    /// Like an image as a user, through the HTTP API (`cargo local run` serves it).
    Like {
        image_id: String,
        /// The user (created in the local user pool on first use).
        #[arg(long = "as")]
        user: String,
    },
    /// Take back a like, through the HTTP API.
    Unlike {
        image_id: String,
        #[arg(long = "as")]
        user: String,
    },
    /// Print a bearer token of a user of the local user pool (created on first use).
    Token { username: String },
    /// Print a user's notifications as a JSON array, most recent first.
    Inbox { username: String },
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
        /// Render the file this many more times in the same process, after a first render
        /// that warms it (as a Lambda execution environment is between invocations), and print
        /// the median CPU time per render: the figure the bill follows.
        #[arg(long, default_value_t = 0)]
        repeat: usize,
    },
    /// Classify image files (JPEG or PNG; `-` reads one from stdin) with the local classifier
    /// (open_nsfw in tract), printing what Rekognition's DetectModerationLabels would answer.
    Moderate {
        #[arg(required = true)]
        files: Vec<String>,
        /// The model `make model` fetches.
        #[arg(long, env = "MODERATION_MODEL_PATH", default_value = moderation::open_nsfw::LOCAL_PATH)]
        model: PathBuf,
    },
    /// Stop the emulator `up` started and forget the local stack.
    Down,
}

#[derive(Subcommand)]
enum QuarantineAction {
    /// Put the record of quarantine message <id> back on its stream (under its partition key)
    /// or queue, once what made it fail is fixed, and delete the message. The consumers
    /// deduplicate, so a record redriven twice changes nothing.
    Redrive { id: String },
}

#[tokio::main]
async fn main() -> ExitCode {
    snapglow_local::logging::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up {
            port,
            stack_name,
            api_port,
            site_port,
        } => stack::up(port, &stack_name, LocalPorts::new(api_port, site_port)).await,
        Command::Invoke {
            function,
            event,
            release,
        } => invoke::invoke(&function, &event, release).await,
        Command::Run {
            until_idle,
            replay,
            release,
            ws_idle_seconds,
            ws_lifetime_seconds,
        } => {
            let limits = snapglow_local::triggers::websocket::Limits {
                idle: std::time::Duration::from_secs(ws_idle_seconds),
                lifetime: std::time::Duration::from_secs(ws_lifetime_seconds),
            };
            run::run(until_idle, replay, release, limits).await
        }
        Command::Quarantine { action: None } => inspect::quarantine().await,
        Command::Quarantine {
            action: Some(QuarantineAction::Redrive { id }),
        } => inspect::redrive(&id).await,
        Command::ReplayOutbox { since } => inspect::replay_outbox(&since).await,
        Command::Demo { photos } => demo::demo(&photos).await,
        Command::Likes { image_id } => inspect::likes(&image_id).await,
        Command::Like { image_id, user } => produce::like(&image_id, &user, true).await,
        Command::Unlike { image_id, user } => produce::like(&image_id, &user, false).await,
        Command::Token { username } => produce::token(&username).await,
        Command::Inbox { username } => inspect::inbox(&username).await,
        Command::Render {
            file,
            out,
            sizes,
            repeat,
        } => render::render(&file, &out, &sizes, repeat),
        Command::Moderate { files, model } => moderate::moderate(&files, &model),
        Command::Down => stack::down(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The whole chain: what was being done, and the cause.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
