//! The no-Docker local stack: the emulator, the resources of template.yaml, the Lambda Runtime
//! API that runs the real function binaries, and the commands behind `cargo local`.

pub mod clients;
pub mod emulator;
pub mod events;
pub mod functions;
pub mod quarantine;
pub mod project;
pub mod runtime_api;
pub mod stack;
pub mod template;
