//! The no-Docker local stack, in rooms that follow the flow:
//!
//! - [`template`]: template.yaml read as CloudFormation reads it, into typed properties;
//! - [`stack`]: the emulator, the template's resources created in it, `.local/stack.json`;
//! - [`lambda`]: each function's real binary under a local Lambda Runtime API;
//! - [`triggers`]: the event source mappings that invoke them, one home per source kind;
//! - [`faults`]: fault layers for fire drills, around a function or in front of a service;
//! - [`scenarios`]: the event producer, the demo and the fire drills built on the above;
//! - [`guard`]: who may reach the local servers (this machine's programs, the local site).
//!
//! `cargo local` (src/main.rs and src/commands/) is the command line over these rooms.

pub mod faults;
pub mod guard;
pub mod lambda;
pub mod logging;
pub mod scenarios;
pub mod site;
pub mod stack;
pub mod template;
pub mod triggers;
