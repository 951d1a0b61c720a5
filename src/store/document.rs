//! The one-document store: a whole ring in one file, in the layout of .NET's Azure Blob
//! repository (UTF-8 BOM, declaration, `<repository>`, elements unindented in insertion order).
//!
//! Reading, and the bytes of each write, are shared with the Azure Blob store: indented documents
//! and `<root>` documents are read too; an absent or zero-length file is an empty ring; a write keeps
//! every byte already there (a new element goes just before `</repository>`, a re-wrapped element
//! replaces exactly the old one's bytes). The new document goes to a temporary file in the same
//! directory, is flushed, and is renamed over the old one; the directory is flushed after.
//!
//! Concurrency between dpwrap processes: every write holds an advisory lock on `{file}.lock` (an
//! OS file lock, released even when the process is killed) from the read to the rename. Against
//! writers that do not take the lock, the file is compared with the bytes that were read just
//! before the rename, and the write starts again (up to a few times) if it changed.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{Addition, Change, Entry, KeyStore, ring_document};
use crate::error::{Error, ErrorKind, Result};
use crate::key_file::read_bounded;
use crate::xml::Limits;

/// How often a write starts again when another writer (not holding the lock) changed the file
/// between the read and the rename.
const MAX_ATTEMPTS: usize = 5;

/// A ring kept as one XML document in a local file.
#[derive(Debug, Clone)]
pub struct DocumentStore {
    path: PathBuf,
}

impl DocumentStore {
    /// The store at `path` (nothing is read until it is used).
    pub fn new(path: impl Into<PathBuf>) -> DocumentStore {
        DocumentStore { path: path.into() }
    }

    /// The document's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn describe_path(&self) -> String {
        super::redact(&self.path.display().to_string())
    }

    /// Reads every element (see [`KeyStore::read`]), synchronously.
    pub fn read_sync(&self) -> Result<Vec<Entry>> {
        match self.current()? {
            Some(bytes) => ring_document::entries(&bytes, &self.describe_path()),
            None => Ok(Vec::new()),
        }
    }

    /// Adds elements (see [`KeyStore::append`]), synchronously.
    pub fn append_sync(&self, elements: &[Addition]) -> Result<()> {
        if elements.is_empty() {
            return Ok(());
        }
        let describe = self.describe_path();
        self.modify(|current| ring_document::appended(current, elements, &describe))
    }

    /// Replaces elements in place (see [`KeyStore::replace`]), synchronously.
    pub fn replace_sync(&self, changes: &[Change<'_>]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let describe = self.describe_path();
        self.modify(|current| ring_document::replaced(current, changes, &describe))
    }

    /// The document's bytes, or `None` when the file does not exist.
    fn current(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        match read_bounded(&self.path, Limits::ring_document().max_input_bytes) {
            Ok(b) => Ok(Some(Zeroizing::new(b))),
            Err(e) if e.kind() == ErrorKind::Io && !self.path.exists() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Read-modify-write under the lock: `edit` gets the document's bytes (`None` when the file
    /// does not exist) and returns the new bytes.
    fn modify(
        &self,
        mut edit: impl FnMut(Option<&[u8]>) -> Result<Zeroizing<Vec<u8>>>,
    ) -> Result<()> {
        let describe = self.describe_path();
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display(), e))?;
        let _lock = self.lock()?;
        for _ in 0..MAX_ATTEMPTS {
            let before = self.current()?;
            let new_bytes = edit(before.as_deref().map(Vec::as_slice))?;
            let temp = self.write_temp(&dir, &new_bytes)?;
            let after = self.current();
            let same = match (&before, &after) {
                (Some(a), Ok(Some(b))) => a.as_slice() == b.as_slice(),
                (None, Ok(None)) => true,
                _ => false,
            };
            if !same {
                remove_quietly(&temp);
                after?;
                // Someone who does not take the lock wrote in between: start again.
                continue;
            }
            if let Err(e) = fs::rename(&temp, &self.path) {
                remove_quietly(&temp);
                return Err(Error::io(self.path.display(), e));
            }
            return sync_dir(&dir);
        }
        Err(Error::new(
            ErrorKind::Store,
            format!(
                "{describe}: the document kept changing while it was written ({MAX_ATTEMPTS} attempts); another program writes it without dpwrap's lock: stop it and retry"
            ),
        ))
    }

    fn lock(&self) -> Result<File> {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let path = self.path.with_file_name(name);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(path.display(), e))?;
        f.lock().map_err(|e| {
            Error::new(
                ErrorKind::Store,
                format!("{}: could not lock: {e}", path.display()),
            )
        })?;
        Ok(f)
    }

    fn write_temp(&self, dir: &Path, bytes: &[u8]) -> Result<PathBuf> {
        let base = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{base}.{}.tmp", uuid::Uuid::new_v4()));
        let result = (|| -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        match result {
            Ok(()) => Ok(temp),
            Err(e) => {
                remove_quietly(&temp);
                Err(Error::io(temp.display(), e))
            }
        }
    }
}

fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir.display(), e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[async_trait]
impl KeyStore for DocumentStore {
    fn describe(&self) -> String {
        self.describe_path()
    }

    async fn read(&self) -> Result<Vec<Entry>> {
        self.read_sync()
    }

    async fn append(&self, elements: &[Addition]) -> Result<()> {
        self.append_sync(elements)
    }

    async fn replace(&self, changes: &[Change<'_>]) -> Result<()> {
        self.replace_sync(changes)
    }
}
