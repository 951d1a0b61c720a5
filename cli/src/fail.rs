//! How a command fails: a usage error (exit 2: the command line itself is wrong) or a run failure
//! (exit 1: a file, key, store or service failed). Both carry a lower-case message that names what
//! failed and never a secret.

use std::fmt;

/// A failed command.
#[derive(Debug)]
pub enum Fail {
    /// The command line is wrong (exit status 2).
    Usage(String),
    /// Something named on the command line failed (exit status 1).
    Run(String),
}

impl Fail {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Fail {
        Fail::Usage(message.into())
    }

    /// A run failure.
    pub fn run(message: impl Into<String>) -> Fail {
        Fail::Run(message.into())
    }

    /// Prefixes the message with `context` (`context: message`).
    pub fn context(self, context: impl fmt::Display) -> Fail {
        match self {
            Fail::Usage(m) => Fail::Usage(format!("{context}: {m}")),
            Fail::Run(m) => Fail::Run(format!("{context}: {m}")),
        }
    }

    /// Appends `note` to the message (`message; note`).
    pub fn note(self, note: impl fmt::Display) -> Fail {
        match self {
            Fail::Usage(m) => Fail::Usage(format!("{m}; {note}")),
            Fail::Run(m) => Fail::Run(format!("{m}; {note}")),
        }
    }

    /// The exit status.
    pub fn status(&self) -> u8 {
        match self {
            Fail::Usage(_) => 2,
            Fail::Run(_) => 1,
        }
    }

    /// Prints the message on stderr.
    pub fn report(&self) {
        match self {
            Fail::Usage(m) => eprintln!("dpwrap: {m} (see dpwrap help)"),
            Fail::Run(m) => eprintln!("dpwrap: {m}"),
        }
    }
}

impl From<dpwrap::Error> for Fail {
    fn from(e: dpwrap::Error) -> Fail {
        Fail::Run(e.to_string())
    }
}

/// A command's result.
pub type Outcome<T> = Result<T, Fail>;
