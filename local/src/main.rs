//! `cargo local <command>`: the no-Docker local stack. See README.md, "The local stack".

mod commands;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use commands::{demo, inspect, invoke, produce, render, run, stack};

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
        /// An event JSON file, e.g. events/sqs/s3-object-created.json.
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
    snapglow_local::logging::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up { port, stack_name } => stack::up(port, &stack_name).await,
        Command::Invoke {
            function,
            event,
            release,
        } => invoke::invoke(&function, &event, release).await,
        Command::Run {
            until_idle,
            replay,
            release,
        } => run::run(until_idle, replay, release).await,
        Command::Quarantine => inspect::quarantine().await,
        Command::Demo { photos } => demo::demo(&photos).await,
        Command::Likes { image_id } => inspect::likes(&image_id).await,
        Command::Like {
            image_id,
            user_id,
            event_id,
        } => produce::like(&image_id, &user_id, true, event_id).await,
        Command::Unlike {
            image_id,
            user_id,
            event_id,
        } => produce::like(&image_id, &user_id, false, event_id).await,
        Command::Inbox { user_id } => inspect::inbox(&user_id).await,
        Command::Render { file, out, sizes } => render::render(&file, &out, &sizes),
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
