//! The commands.

pub mod config;
pub mod exec;
pub mod nad;
pub mod pod;
pub mod state;
