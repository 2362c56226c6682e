//! Types of the CNI specification, versions 0.1.0 to 1.1.0.

pub mod args;
pub mod error;
pub mod outcome;
pub mod result;
pub mod version;

pub use args::CniArgs;
pub use error::{CniError, ErrorCode};
pub use outcome::Outcome;
pub use result::CniResult;
pub use version::CniVersion;
