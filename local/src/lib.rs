//! The no-Docker local stack: the emulator, the resources of template.yaml, the Lambda Runtime
//! API that runs the real function binaries, and the commands behind `cargo local`.

pub mod checkpoints;
pub mod clients;
pub mod demo;
pub mod drills;
pub mod emulator;
pub mod events;
pub mod faults;
pub mod functions;
pub mod http_server;
pub mod mappings;
pub mod pipeline;
pub mod producer;
pub mod project;
pub mod quarantine;
pub mod runtime_api;
pub mod stack;
pub mod template;
