//! The commands of `cargo local`, one file per family; each is a thin edge over the library's
//! rooms and turns their errors into messages that name the object and the fix.

pub mod demo;
pub mod inspect;
pub mod invoke;
pub mod moderate;
pub mod produce;
pub mod render;
pub mod run;
pub mod stack;
