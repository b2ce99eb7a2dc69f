//! A fresh local stack: its own emulator on a free loopback port (stopped when dropped, with
//! its files) with every resource of template.yaml. The one starting point of the integration
//! tests, the benchmarks and the fire drills, so that none of them shares state with another.

use std::path::PathBuf;

use super::clients::LocalClients;
use super::emulator::{Emulator, EmulatorError};
use super::project::{project_root, template_path};
use super::{StackError, StackInfo, deploy};
use crate::template::{Template, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum FreshStackError {
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Stack(#[from] StackError),
}

pub struct FreshStack {
    pub emulator: Emulator,
    pub stack: StackInfo,
    pub clients: LocalClients,
    /// The checkout (template.yaml, target/, .local/).
    pub root: PathBuf,
    /// Every folder [`Self::state_dir`] named, removed with the stack.
    state_dirs: std::sync::Mutex<std::collections::BTreeSet<PathBuf>>,
}

impl FreshStack {
    /// Stack name `snapglow`: the names the sample events in events/ use.
    /// AllowedOrigin is the local site's default origin, as `cargo local up` sets it.
    pub async fn start() -> Result<FreshStack, FreshStackError> {
        let template = super::LocalPorts::default().template(&project_root())?;
        Self::start_from(&template).await
    }

    /// A fresh stack of another template (a test's variant of template.yaml).
    pub async fn start_from(template: &Template) -> Result<FreshStack, FreshStackError> {
        let root = project_root();
        let emulator = Emulator::start_attached_on_free_port(&root)?;
        let stack = deploy(template, "snapglow", &emulator.endpoint_url()).await?;
        let clients = LocalClients::admin(&stack).await;
        Ok(FreshStack {
            emulator,
            stack,
            clients,
            root,
            state_dirs: Default::default(),
        })
    }

    /// The template's resources once more under another stack name, in the same emulator
    /// (a benchmark's baseline beside the real thing).
    pub async fn deploy_also(&self, stack_name: &str) -> Result<StackInfo, FreshStackError> {
        let template = Template::load(&template_path(&self.root))?;
        Ok(deploy(&template, stack_name, &self.emulator.endpoint_url()).await?)
    }

    /// A scratch folder of this stack's own (logs, checkpoints) under `.local/`. Removed with
    /// the stack unless the thread is panicking (a failed test keeps what it wrote).
    pub fn state_dir(&self, purpose: &str) -> PathBuf {
        let dir = self
            .root
            .join(".local")
            .join(format!("{purpose}-{}", self.emulator.port));
        self.state_dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dir.clone());
        dir
    }
}

impl Drop for FreshStack {
    /// A stack that served its run to the end leaves nothing under `.local/`; one dropped
    /// while a panic unwinds (a failed test) keeps its logs for the diagnosis.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let dirs = self.state_dirs.get_mut().unwrap_or_else(|e| e.into_inner());
        for dir in dirs.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = std::fs::remove_file(&self.emulator.log);
    }
}
