//! How a command fails: one line on stderr and an exit code that says what kind of failure.
//!
//! Exit codes: 0 success; 1 the input was checked and rejected (an audit that fails, a log
//! that is truncated); 2 the command could not do its work (bad arguments, a missing or
//! unreadable file, an unreachable node). Any error converts into a setup failure (2) with
//! `?`; a failed check is made explicitly with [`Failure::rejected`].

use std::process::ExitCode;

/// Exit code for a check that ran and failed.
pub const EXIT_REJECTED: u8 = 1;

/// Exit code for a usage or setup error.
pub const EXIT_SETUP: u8 = 2;

/// A command's failure: what went wrong and the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// [`EXIT_REJECTED`] or [`EXIT_SETUP`].
    pub code: u8,
    /// The error, with its context chain.
    pub error: anyhow::Error,
}

impl Failure {
    /// A check that ran and rejected its input (exit 1).
    pub fn rejected(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: EXIT_REJECTED,
            error: error.into(),
        }
    }

    /// The error as one plain line: the context chain joined by `: `, newlines flattened.
    ///
    /// Many library errors already print their cause inside their own message (a `thiserror`
    /// message naming `{source}`); a cause whose text the line already holds is not repeated.
    pub fn one_line(&self) -> String {
        let mut line = String::new();
        for cause in self.error.chain() {
            let text = cause.to_string();
            if line.contains(&text) {
                continue;
            }
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        line.replace(['\n', '\r'], " ")
    }

    /// Prints the error line on stderr and gives the process exit code.
    pub fn report(&self) -> ExitCode {
        eprintln!("error: {}", self.one_line());
        ExitCode::from(self.code)
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure {
            code: EXIT_SETUP,
            error: error.into(),
        }
    }
}

/// What every command returns.
pub type CommandResult = Result<(), Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read config file /x/config.toml: {source}")]
    struct ReadError {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let failure = Failure::from(anyhow::Error::new(ReadError { source: io }).context("node0"));
        assert_eq!(
            failure.one_line(),
            "node0: cannot read config file /x/config.toml: No such file or directory"
        );

        let plain = Failure::from(anyhow::anyhow!("line one\nline two").context("outer"));
        assert_eq!(plain.one_line(), "outer: line one line two");
    }
}
