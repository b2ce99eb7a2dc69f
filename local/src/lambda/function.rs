//! One execution environment of a function, the way Lambda runs it: the real binary with
//! Lambda's environment variables, one invocation at a time, a deadline, and a timeout that
//! kills the process. After a timeout or a crash Lambda resets the environment, so the next
//! invocation starts a new process and runs Init again.

use crate::guard::Guard;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use super::runtime_api::{Pending, Shared, route};
use crate::stack::clients::{ACCOUNT_ID, REGION};

/// What a trigger invokes: a [`LocalFunction`], or one wrapped in a fault layer
/// (`crate::faults`). Boxed futures, so that a mapping can hold any of them.
pub trait Invoke: Send {
    fn name(&self) -> &str;
    /// Invokes synchronously (RequestResponse) with `payload` as the event.
    fn invoke(&mut self, payload: Vec<u8>) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>>;
    /// Throws the execution environment away; the next invocation starts a new one.
    fn reset(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl Invoke for LocalFunction {
    fn name(&self) -> &str {
        &self.spec.name
    }
    fn invoke(&mut self, payload: Vec<u8>) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(LocalFunction::invoke(self, payload))
    }
    fn reset(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(LocalFunction::reset(self))
    }
}

/// How one invocation failed. For an event source mapping every variant is a batch failure.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum InvokeError {
    /// The function reported an error (a handler error, a panic, an undecodable event).
    #[error("function error {error_type}: {message}")]
    Function { error_type: String, message: String },
    #[error(
        "Task timed out after {seconds:.2} seconds (the process was killed; the next invocation starts a new one)"
    )]
    Timeout { seconds: f64 },
    #[error("Runtime exited before answering: {status}; see the function's log {log}")]
    Crashed { status: String, log: String },
    #[error(
        "could not start the function binary {binary}: {detail}; build it with `cargo build --bin <name>`"
    )]
    Spawn { binary: String, detail: String },
}

/// Where a function process's stdout and stderr go.
#[derive(Debug, Clone)]
pub enum LogSink {
    /// This process's stderr (so that stdout carries only the response).
    Stderr,
    /// Appended to a file.
    File(PathBuf),
}

/// How to run one function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name: String,
    pub binary: PathBuf,
    /// Template variables and the AWS endpoint; the Lambda variables are added here.
    pub environment: Vec<(String, String)>,
    pub timeout: Duration,
    pub memory_mb: u64,
    pub log_format: String,
    pub log_level: String,
    pub log: LogSink,
}

pub type Outcome = Result<Vec<u8>, InvokeError>;

/// One execution environment of a function: its Runtime API server and (when running) its process.
pub struct LocalFunction {
    spec: FunctionSpec,
    port: u16,
    queue: mpsc::UnboundedSender<Pending>,
    shared: Arc<Shared>,
    process: Option<Child>,
    server: tokio::task::JoinHandle<()>,
    /// Invocations served by the current process (0 right after Init: a cold start).
    pub invocations_since_init: u64,
    pub cold_starts: u64,
    spawned_at: Option<std::time::Instant>,
    /// Init duration of the latest cold start: process start to its first Runtime API poll.
    pub last_init: Option<Duration>,
}

impl Drop for LocalFunction {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(child) = self.process.as_mut() {
            let _ = child.start_kill();
        }
    }
}

impl LocalFunction {
    /// Starts the Runtime API on a free loopback port. The process starts on first invocation.
    pub async fn start(spec: FunctionSpec) -> std::io::Result<LocalFunction> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (queue, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            next: tokio::sync::Mutex::new(receiver),
            in_flight: Mutex::new(HashMap::new()),
            function_arn: format!(
                "arn:aws:lambda:{}:{}:function:{}",
                REGION, ACCOUNT_ID, spec.name
            ),
            first_poll: Mutex::new(None),
            last_trace_id: Mutex::new(None),
        });
        let server_state = shared.clone();
        // Only the function's own process calls its Runtime API.
        let server = super::http::serve(listener, Guard::Programs, server_state, route);
        Ok(LocalFunction {
            spec,
            port,
            queue,
            shared,
            process: None,
            server,
            invocations_since_init: 0,
            cold_starts: 0,
            spawned_at: None,
            last_init: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The function process's id, while one runs (to read its memory use, for instance).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(Child::id)
    }

    /// The `Lambda-Runtime-Trace-Id` of the latest invocation (what X-Ray would have sent).
    pub fn last_trace_id(&self) -> Option<String> {
        self.shared
            .last_trace_id
            .lock()
            .expect("trace lock")
            .clone()
    }

    pub fn runtime_api_address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> Result<(), InvokeError> {
        let spec = &self.spec;
        let (stdout, stderr) = match &spec.log {
            LogSink::Stderr => (
                Stdio::from(stderr_fd().map_err(|e| self.spawn_error(e))?),
                Stdio::from(stderr_fd().map_err(|e| self.spawn_error(e))?),
            ),
            LogSink::File(path) => {
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| self.spawn_error(e))?;
                let second = file.try_clone().map_err(|e| self.spawn_error(e))?;
                (Stdio::from(file), Stdio::from(second))
            }
        };
        let mut command = Command::new(&spec.binary);
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "en_US.UTF-8")
            .env("TZ", ":UTC")
            .env("AWS_LAMBDA_RUNTIME_API", self.runtime_api_address())
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                spec.memory_mb.to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_FORMAT", &spec.log_format)
            .env("AWS_LAMBDA_LOG_LEVEL", &spec.log_level)
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .envs(
                spec.environment
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        // Debugging aids pass through when the user sets them.
        for name in ["RUST_BACKTRACE", "RUST_LOG"] {
            if let Ok(value) = std::env::var(name) {
                command.env(name, value);
            }
        }
        *self.shared.first_poll.lock().expect("poll lock") = None;
        self.spawned_at = Some(std::time::Instant::now());
        let child = command.spawn().map_err(|e| self.spawn_error(e))?;
        self.process = Some(child);
        self.invocations_since_init = 0;
        self.cold_starts += 1;
        Ok(())
    }

    fn spawn_error(&self, e: std::io::Error) -> InvokeError {
        InvokeError::Spawn {
            binary: self.spec.binary.display().to_string(),
            detail: e.to_string(),
        }
    }

    fn log_description(&self) -> String {
        match &self.spec.log {
            LogSink::Stderr => "(stderr)".to_owned(),
            LogSink::File(path) => path.display().to_string(),
        }
    }

    /// Kills the process (if any); the next invocation starts a fresh one. Safe to call after
    /// an invocation was cut off mid-way: what it queued can no longer be answered.
    pub async fn reset(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill().await;
        }
        // Nothing that was queued for, or taken by, the old process may answer later.
        let mut next = self.shared.next.lock().await;
        while next.try_recv().is_ok() {}
        self.shared
            .in_flight
            .lock()
            .expect("in-flight lock")
            .clear();
    }

    /// Invokes the function synchronously (RequestResponse) with `payload` as the event.
    pub async fn invoke(&mut self, payload: Vec<u8>) -> Outcome {
        let running = match self.process.as_mut() {
            Some(child) => child.try_wait().ok().flatten().is_none(),
            None => false,
        };
        if !running {
            self.reset().await;
            self.spawn()?;
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            request_id,
            payload,
            deadline_ms: now_ms + self.spec.timeout.as_millis() as u64,
            done,
        };
        self.queue
            .send(pending)
            .expect("the runtime API server holds the receiver");
        let timeout = self.spec.timeout;
        let child = self.process.as_mut().expect("spawned above");
        let outcome = tokio::select! {
            answer = answer => answer.unwrap_or_else(|_| Err(InvokeError::Crashed { status: "the invocation was abandoned".into(), log: String::new() })),
            _ = tokio::time::sleep(timeout) => Err(InvokeError::Timeout { seconds: timeout.as_secs_f64() }),
            status = child.wait() => Err(InvokeError::Crashed {
                status: status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                log: String::new(),
            }),
        };
        match &outcome {
            Err(InvokeError::Timeout { .. }) => self.reset().await,
            Err(InvokeError::Crashed { .. }) => {
                self.reset().await;
                return outcome.map_err(|e| match e {
                    InvokeError::Crashed { status, .. } => InvokeError::Crashed {
                        status,
                        log: self.log_description(),
                    },
                    other => other,
                });
            }
            _ => {
                if self.invocations_since_init == 0 {
                    let polled = *self.shared.first_poll.lock().expect("poll lock");
                    self.last_init = polled
                        .zip(self.spawned_at)
                        .map(|(polled, spawned)| polled.saturating_duration_since(spawned));
                }
                self.invocations_since_init += 1;
            }
        }
        outcome
    }
}

fn stderr_fd() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::AsFd;
    std::io::stderr().as_fd().try_clone_to_owned()
}

#[cfg(test)]
mod tests {
    //! Real processes (small shell scripts) against the real Runtime API server.
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(name: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("snapglow-runtime-api-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn spec(binary: PathBuf, timeout: Duration) -> FunctionSpec {
        FunctionSpec {
            name: "test-fn".into(),
            binary,
            environment: vec![],
            timeout,
            memory_mb: 128,
            log_format: "JSON".into(),
            log_level: "INFO".into(),
            log: LogSink::File(std::env::temp_dir().join("snapglow-runtime-api-test.log")),
        }
    }

    #[tokio::test]
    async fn a_function_that_exits_is_a_crash_and_the_next_invocation_starts_it_again() {
        let mut function =
            LocalFunction::start(spec(script("exits", "exit 3"), Duration::from_secs(10)))
                .await
                .unwrap();
        let error = function.invoke(b"{}".to_vec()).await.unwrap_err();
        assert!(
            matches!(error, InvokeError::Crashed { ref status, .. } if status.contains('3')),
            "{error}"
        );
        assert!(function.invoke(b"{}".to_vec()).await.is_err());
        assert_eq!(function.cold_starts, 2);
    }

    #[tokio::test]
    async fn a_function_that_overruns_its_timeout_is_killed() {
        let mut function = LocalFunction::start(spec(
            script("sleeps", "sleep 30"),
            Duration::from_millis(500),
        ))
        .await
        .unwrap();
        let started = std::time::Instant::now();
        let error = function.invoke(b"{}".to_vec()).await.unwrap_err();
        assert!(matches!(error, InvokeError::Timeout { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(function.process.is_none(), "the timed-out process is gone");
    }

    #[tokio::test]
    async fn a_missing_binary_says_how_to_build_it() {
        let mut function = LocalFunction::start(spec(
            PathBuf::from("/nonexistent/fn"),
            Duration::from_secs(1),
        ))
        .await
        .unwrap();
        let error = function.invoke(b"{}".to_vec()).await.unwrap_err();
        assert!(error.to_string().contains("cargo build --bin"), "{error}");
    }
}
