//! The commands.

pub mod config;
pub mod daemon;
pub mod exec;
pub mod generate;
pub mod identity;
pub mod nad;
pub mod pod;
pub mod state;
