//! The AWS emulator: moto server, pinned in `local/emulator-requirements.txt`, installed into a
//! git-ignored venv (`.local/venv`) on first use and run on 127.0.0.1 only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(
        "python3 was not found or cannot create a venv ({0}); install it (Debian: apt-get install python3 python3-venv) and run again"
    )]
    NoPython(String),
    #[error(
        "installing the emulator into {venv} failed: {detail}; check that PyPI is reachable (pip install -r local/emulator-requirements.txt) or delete {venv} and retry"
    )]
    Install { venv: String, detail: String },
    #[error(
        "port {port} on 127.0.0.1 is already in use by another program; stop it, or pick another port with --port (or SNAPGLOW_LOCAL_PORT)"
    )]
    PortTaken { port: u16 },
    #[error(
        "the emulator did not come up on {endpoint} within {seconds}s; its log ({log}) ends with:\n{tail}"
    )]
    NotStarted {
        endpoint: String,
        seconds: u64,
        log: String,
        tail: String,
    },
    #[error("preparing the emulator's files under .local/ or its process")]
    Io(#[from] std::io::Error),
}

/// Where the local stack keeps its files: `<project>/.local/`.
#[derive(Debug, Clone)]
pub struct LocalDir {
    pub root: PathBuf,
}

impl LocalDir {
    pub fn new(project_root: &Path) -> Self {
        Self {
            root: project_root.join(".local"),
        }
    }
    pub fn venv(&self) -> PathBuf {
        self.root.join("venv")
    }
    pub fn moto_server(&self) -> PathBuf {
        self.venv().join("bin").join("moto_server")
    }
    pub fn stack_file(&self) -> PathBuf {
        self.root.join("stack.json")
    }
    pub fn log(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(name)
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// The stream positions of `cargo local run`. They belong to one emulator's streams: a
    /// fresh emulator has new streams with the same ARNs, so its start forgets them.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
}

/// Installs the pinned emulator unless the venv already holds exactly these pins.
/// Safe to call from several processes at once (tests run in parallel): a file lock serializes it.
pub fn ensure_installed(project_root: &Path) -> Result<PathBuf, EmulatorError> {
    let dir = LocalDir::new(project_root);
    std::fs::create_dir_all(&dir.root)?;
    let requirements = project_root.join("local").join("emulator-requirements.txt");
    let pins = std::fs::read_to_string(&requirements)?;
    let marker = dir.venv().join(".snapglow-installed");
    let lock = std::fs::File::create(dir.root.join("venv.lock"))?;
    lock.lock()?;
    if dir.moto_server().exists()
        && std::fs::read_to_string(&marker).ok().as_deref() == Some(pins.as_str())
    {
        return Ok(dir.moto_server());
    }
    let venv = dir.venv().display().to_string();
    eprintln!("installing the emulator (moto server, pinned) into {venv} ...");
    let made = Command::new("python3")
        .args(["-m", "venv", &venv])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| EmulatorError::NoPython(e.to_string()))?;
    if !made.status.success() {
        return Err(EmulatorError::NoPython(
            String::from_utf8_lossy(&made.stderr).trim().to_owned(),
        ));
    }
    let pip = dir.venv().join("bin").join("pip");
    let installed = Command::new(pip)
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements)
        .output()
        .map_err(|e| EmulatorError::Install {
            venv: venv.clone(),
            detail: e.to_string(),
        })?;
    if !installed.status.success() {
        return Err(EmulatorError::Install {
            venv,
            detail: String::from_utf8_lossy(&installed.stderr).trim().to_owned(),
        });
    }
    std::fs::write(&marker, pins)?;
    Ok(dir.moto_server())
}

/// A running emulator. Dropping an attached one stops it; a detached one (from `cargo local up`)
/// outlives this process and is stopped by `cargo local down`.
pub struct Emulator {
    pub port: u16,
    /// `.local/logs/emulator-{port}.log`: moto's output.
    pub log: PathBuf,
    /// Attached: the process, killed on drop.
    child: Option<Child>,
    /// Detached: only its pid, for `cargo local down`.
    detached_pid: Option<u32>,
}

impl Emulator {
    pub fn endpoint_url(&self) -> String {
        endpoint_url(self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id).or(self.detached_pid)
    }

    /// Starts moto on 127.0.0.1:`port` and waits until it answers.
    pub fn start(
        project_root: &Path,
        port: u16,
        detached: bool,
    ) -> Result<Emulator, EmulatorError> {
        let moto = ensure_installed(project_root)?;
        if TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).is_err() {
            return Err(EmulatorError::PortTaken { port });
        }
        let dir = LocalDir::new(project_root);
        let log_path = dir.log(&format!("emulator-{port}.log"));
        std::fs::create_dir_all(log_path.parent().expect("logs dir"))?;
        let log = std::fs::File::create(&log_path)?;
        // The launcher next to the pins starts moto's server with its transactions' undo made
        // cheap (local/emulator/moto_server.py says why and how).
        let python = moto.with_file_name("python");
        let launcher = project_root
            .join("local")
            .join("emulator")
            .join("moto_server.py");
        let mut command = Command::new(python);
        command
            .arg(launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // Rekognition's DetectModerationLabels is answered by the local classifier (the
            // launcher's ninth change): `snapglow-local moderate`, with the model `make model`
            // fetched.
            .env("SNAPGLOW_CLASSIFIER", classifier_binary(project_root))
            .env(
                "MODERATION_MODEL_PATH",
                project_root.join(moderation::open_nsfw::LOCAL_PATH),
            )
            // Where sign-up codes are delivered (the launcher's tenth change).
            .env("SNAPGLOW_MAILBOX", mailbox(project_root, port))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if detached {
            // Its own process group: a Ctrl-C in the terminal that ran `up` must not stop it.
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let mut child = command.spawn()?;
        let started = Instant::now();
        let limit = Duration::from_secs(60);
        loop {
            if is_up(port) {
                // Another program's server may have taken the port after the check above: then
                // ours has exited, and the answer came from theirs.
                if child.try_wait()?.is_some() {
                    return Err(EmulatorError::PortTaken { port });
                }
                let detached_pid = detached.then(|| child.id());
                let child = if detached { None } else { Some(child) };
                return Ok(Emulator {
                    port,
                    log: log_path,
                    child,
                    detached_pid,
                });
            }
            let exited = child.try_wait()?.is_some();
            if exited || started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = text
                    .lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                return Err(EmulatorError::NotStarted {
                    endpoint: endpoint_url(port),
                    seconds: limit.as_secs(),
                    log: log_path.display().to_string(),
                    tail: tail.join("\n"),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts an emulator on a free port, stopped when dropped (for tests and one-off runs).
    pub fn start_attached_on_free_port(project_root: &Path) -> Result<Emulator, EmulatorError> {
        let mut attempts = 0;
        loop {
            // Another process may take the port between the probe and moto's bind: try again.
            match Emulator::start(project_root, free_port()?, false) {
                Err(EmulatorError::PortTaken { .. }) if attempts < 5 => attempts += 1,
                other => return other,
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn endpoint_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// A port nobody listens on right now, and never handed out before by this process.
///
/// Hazard: the port is free only until its probe closes. The kernel may give the same port to
/// the next probe before the first caller's server binds it; two tests of one process starting
/// their emulators at once then both see the first moto answer on it and share one emulator
/// (one test's deploy wiping the other's queues). Remembering what was handed out closes that
/// race inside a process.
pub fn free_port() -> std::io::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return Ok(port);
        }
    }
}

/// Whether a moto server answers on the port. One small request whatever the stack holds:
/// moto's `/moto-api/config` is a few hundred bytes, where its `/moto-api/data.json` dumps
/// every resource and item (seconds on a populated stack, longer than any sane timeout).
pub fn is_up(port: u16) -> bool {
    http_request(port, "GET", "/moto-api/config").is_some_and(|status| (200..300).contains(&status))
}

/// Wipes every resource in the emulator (`POST /moto-api/reset`).
pub fn reset(port: u16) -> bool {
    http_request(port, "POST", "/moto-api/reset").is_some_and(|status| status == 200)
}

/// A minimal HTTP/1.0 request on loopback; returns the status code.
fn http_request(port: u16, method: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 32];
    let read = stream.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..read]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Stops a detached emulator by pid, only if that pid is still a moto server.
pub fn stop_pid(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains("moto_server") {
        return false;
    }
    let signalled = Command::new("kill")
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success());
    // Wait for it to go, so that an `up` right after a `down` finds the port free.
    let deadline = Instant::now() + Duration::from_secs(10);
    while signalled && Instant::now() < deadline && Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    signalled
}

/// The file the emulator on `port` delivers sign-up codes to, one JSON line per message: the
/// local stand-in for the pool's email.
pub fn mailbox(project_root: &Path, port: u16) -> PathBuf {
    LocalDir::new(project_root).log(&format!("mailbox-{port}.jsonl"))
}

/// The `snapglow-local` binary the emulator runs to classify an image: the debug build
/// `cargo local` and `make test` make (under `CARGO_TARGET_DIR` when it is set).
pub fn classifier_binary(project_root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root.join("target"))
        .join("debug")
        .join("snapglow-local")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_never_handed_the_same_free_port_twice() {
        // Prepare: threads asking at once, as parallel tests starting their emulators do
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| (0..500).map(|_| free_port().unwrap()).collect::<Vec<u16>>())
            })
            .collect();

        // Act
        let mut ports: Vec<u16> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect::<Vec<u16>>();

        // Assess: 2,000 ports from the kernel's ephemeral range, no two alike
        let handed_out = ports.len();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), handed_out);
    }
}
