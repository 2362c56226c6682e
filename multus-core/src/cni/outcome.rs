//! What a CNI plugin process answers: the bytes for stdout and the exit code.

use super::CniError;

/// What a CNI plugin prints on stdout and how it exits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes for stdout (a result, a version reply, an error document, or nothing).
    pub stdout: Vec<u8>,
    /// The process exit code: 0 on success, 1 on error.
    pub exit_code: i32,
}

impl Outcome {
    /// Success, printing `stdout`.
    pub fn success(stdout: Vec<u8>) -> Self {
        Self {
            stdout,
            exit_code: 0,
        }
    }

    /// Failure, printing the CNI error document.
    pub fn error(error: CniError) -> Self {
        Self {
            stdout: error.to_json().into_bytes(),
            exit_code: 1,
        }
    }
}
