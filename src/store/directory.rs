//! The directory store: one file per element, as `FileSystemXmlRepository` keeps a ring.
//!
//! Reading takes every `*.xml` file directly in the directory (no subdirectories). A missing
//! directory is an empty ring, as a missing Redis key or blob is; it is created on the first write.
//!
//! Writing follows .NET: the element goes to `{guid}.tmp` in the same directory (UTF-8 BOM,
//! declaration, two-space indentation), is flushed to disk, and is then moved to
//! `{friendly name}.xml` **without overwriting** an existing file: a hard link to the final name
//! (which fails if the name exists) and the removal of the temporary name, or, where the file
//! system has no hard links, an exclusive create and copy. The directory is flushed afterwards,
//! so the new name survives a crash.
//!
//! [`replace`](KeyStore::replace) rewrites each changed file the same way but renames over the
//! old file (an atomic swap): after a crash every key is readable, with its old or its new
//! protection. Before each rename the file is compared with the bytes that were loaded; a file
//! changed in between is a conflict and is left alone. Two dpwrap processes re-wrapping the same
//! directory at once can both pass that check for one file; the later rename wins, and both
//! versions protect the same master key, so nothing is lost.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{Addition, Change, Entry, KeyStore, StoredElement, conflict};
use crate::error::{Error, ErrorKind, Result};
use crate::key_file::{check_file_name, read_bounded};
use crate::xml::{self, Limits, WriteOptions};

/// A directory holding one file per element.
#[derive(Debug, Clone)]
pub struct DirectoryStore {
    dir: PathBuf,
}

impl DirectoryStore {
    /// The store at `dir` (nothing is read until it is used).
    pub fn new(dir: impl Into<PathBuf>) -> DirectoryStore {
        DirectoryStore { dir: dir.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file name .NET gives an element with `friendly_name`: `{friendly name}.xml` when the
    /// name is made only of ASCII letters, digits, `-` and `_`, else `{new guid}.xml`.
    pub fn file_name_for(friendly_name: &str) -> String {
        if is_safe_file_name(friendly_name) {
            format!("{friendly_name}.xml")
        } else {
            format!("{}.xml", uuid::Uuid::new_v4())
        }
    }

    /// Reads every element file (see [`KeyStore::read`]), synchronously.
    pub fn read_sync(&self) -> Result<Vec<Entry>> {
        let paths = match list_xml_files(&self.dir) {
            Ok(p) => p,
            Err(e) if e.kind() == ErrorKind::Io && !self.dir.exists() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(paths
            .into_iter()
            .enumerate()
            .map(|(position, path)| {
                let name = file_name(&path);
                Entry {
                    element: read_element(&path, name.clone(), position)
                        .map_err(|e| e.context(&name)),
                    name,
                }
            })
            .collect())
    }

    /// Adds elements (see [`KeyStore::append`]), synchronously.
    pub fn append_sync(&self, elements: &[Addition]) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(self.dir.display(), e))?;
        for addition in elements {
            let bytes = xml::to_secret_bytes(&addition.element, WriteOptions::KEY_FILE);
            let name = DirectoryStore::file_name_for(&addition.friendly_name);
            self.write_new(&name, &bytes)?;
        }
        sync_dir(&self.dir)
    }

    /// Replaces elements in place (see [`KeyStore::replace`]), synchronously.
    pub fn replace_sync(&self, changes: &[Change<'_>]) -> Result<()> {
        let describe = self.dir.display().to_string();
        // Check everything first, so that a stale load changes nothing at all.
        for change in changes {
            let path = self.member(change.old.name())?;
            if !self.unchanged(&path, change.old.raw())? {
                return Err(conflict(&describe, change.old.name()));
            }
        }
        for change in changes {
            let path = self.member(change.old.name())?;
            let bytes = xml::to_secret_bytes(&change.new, WriteOptions::KEY_FILE);
            let temp = self.write_temp(&bytes)?;
            // Compare again just before the swap: the window left is the rename itself.
            let still = self.unchanged(&path, change.old.raw());
            if !matches!(still, Ok(true)) {
                remove_quietly(&temp);
                still?;
                return Err(conflict(&describe, change.old.name()));
            }
            if let Err(e) = fs::rename(&temp, &path) {
                remove_quietly(&temp);
                return Err(Error::io(path.display(), e));
            }
        }
        sync_dir(&self.dir)
    }

    /// The path of an element file of this directory, refusing a name that is not a plain file
    /// name (a stored element's name always is).
    fn member(&self, name: &str) -> Result<PathBuf> {
        let plain = Path::new(name)
            .file_name()
            .is_some_and(|f| f.to_str() == Some(name));
        if !plain || name.starts_with('.') {
            return Err(Error::new(
                ErrorKind::Store,
                format!("'{name}' is not an element of the directory store"),
            ));
        }
        Ok(self.dir.join(name))
    }

    fn unchanged(&self, path: &Path, raw: &[u8]) -> Result<bool> {
        match read_bounded(path, Limits::default().max_input_bytes) {
            Ok(current) => Ok(Zeroizing::new(current).as_slice() == raw),
            Err(e) if e.kind() == ErrorKind::Io && !path.exists() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes `bytes` to `{guid}.tmp` in the directory and flushes it; returns its path.
    fn write_temp(&self, bytes: &[u8]) -> Result<PathBuf> {
        let temp = self.dir.join(format!("{}.tmp", uuid::Uuid::new_v4()));
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

    /// Writes a new element file under `name`, never overwriting an existing file.
    fn write_new(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(name);
        let temp = self.write_temp(bytes)?;
        let linked = fs::hard_link(&temp, &path);
        let result = match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists(&path)),
            // No hard links here (some network and FAT file systems): copy into a file that
            // must not exist yet, as .NET falls back to File.Copy.
            Err(_) => copy_exclusive(bytes, &path),
        };
        remove_quietly(&temp);
        result
    }
}

fn exists(path: &Path) -> Error {
    Error::new(
        ErrorKind::Store,
        format!(
            "{} already exists; an element with that name is already in the ring (nothing was overwritten)",
            path.display()
        ),
    )
}

fn copy_exclusive(bytes: &[u8], path: &Path) -> Result<()> {
    let mut f = match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(path)),
        Err(e) => return Err(Error::io(path.display(), e)),
    };
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written {
        drop(f);
        remove_quietly(path);
        return Err(Error::io(path.display(), e));
    }
    Ok(())
}

fn remove_quietly(path: &Path) {
    // Best effort: a temporary file left behind is ignored by every reader (it is not *.xml).
    let _ = fs::remove_file(path);
}

/// Flushes a directory's entries (the names just created or renamed) to disk.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir.display(), e))
    }
    #[cfg(not(unix))]
    {
        // Windows flushes directory entries with the file; a directory cannot be opened here.
        let _ = dir;
        Ok(())
    }
}

/// .NET's `IsSafeFilename`: non-empty, only `A-Z a-z 0-9 - _`.
fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every `*.xml` file (extension in any case) directly in `dir`, in file-name order.
pub(crate) fn list_xml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir.display(), e))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir.display(), e))?;
        let path = entry.path();
        let is_xml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"));
        if is_xml && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Reads one element file: bounded, parsed, and a key checked against a `key-{guid}.xml` name.
fn read_element(path: &Path, name: String, position: usize) -> Result<StoredElement> {
    let raw = Zeroizing::new(read_bounded(path, Limits::default().max_input_bytes)?);
    let element = xml::parse(&raw)?;
    if element.is(None, "key")
        && let Some(id) = element
            .attribute(None, "id")
            .and_then(|id| uuid::Uuid::parse_str(id.trim()).ok())
    {
        check_file_name(path, id)?;
    }
    Ok(StoredElement::new(element, name, raw, position))
}

#[async_trait]
impl KeyStore for DirectoryStore {
    fn describe(&self) -> String {
        super::redact(&self.dir.display().to_string())
    }

    async fn read(&self) -> Result<Vec<Entry>> {
        self.read_sync()
    }

    async fn append(&self, elements: &[Addition]) -> Result<()> {
        self.append_sync(elements)
            .map_err(|e| e.context(self.describe()))
    }

    async fn replace(&self, changes: &[Change<'_>]) -> Result<()> {
        self.replace_sync(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_follow_dotnet() {
        assert!(is_safe_file_name(
            "key-0f8a1c2e-1111-2222-3333-444455556666"
        ));
        assert!(is_safe_file_name("revocation-20240202T01020345Z"));
        assert!(!is_safe_file_name(""));
        assert!(!is_safe_file_name("../evil"));
        assert!(!is_safe_file_name("a b"));
        assert!(!is_safe_file_name("clé"));
        let n = DirectoryStore::file_name_for("../evil");
        assert!(
            n.ends_with(".xml") && uuid::Uuid::parse_str(&n[..36]).is_ok(),
            "{n}"
        );
    }

    #[test]
    fn member_refuses_paths() {
        let s = DirectoryStore::new("/tmp/x");
        assert!(s.member("key-1.xml").is_ok());
        assert!(s.member("../key-1.xml").is_err());
        assert!(s.member("sub/key-1.xml").is_err());
        assert!(s.member(".hidden.xml").is_err());
    }
}
