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

    /// Prefixes the message with `context` (`context: message`), unless it already starts with
    /// it (store errors name their store themselves).
    pub fn context(self, context: impl fmt::Display) -> Fail {
        let context = context.to_string();
        let prefix = |m: String| {
            if m.starts_with(&context) {
                m
            } else {
                format!("{context}: {m}")
            }
        };
        match self {
            Fail::Usage(m) => Fail::Usage(prefix(m)),
            Fail::Run(m) => Fail::Run(prefix(m)),
        }
    }

    /// Appends `note` to the message (`message; note`), unless the message already says it.
    pub fn note(self, note: impl fmt::Display) -> Fail {
        let note = note.to_string();
        let append = |m: String| {
            if m.contains(&note) {
                m
            } else {
                format!("{m}; {note}")
            }
        };
        match self {
            Fail::Usage(m) => Fail::Usage(append(m)),
            Fail::Run(m) => Fail::Run(append(m)),
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
