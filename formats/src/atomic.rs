//! Write-to-temporary-then-rename, so readers never see a half-written output file.
//!
//! The temporary lives next to the target (same file system, so the rename is atomic)
//! under a hidden name `.{name}.tmp-XXXXXX`, made by `tempfile`: a unique name created
//! exclusively (two writers of one target never share it, and a symlink planted at the
//! name is not followed), opened with the usual `0666 & !umask` permissions, as
//! `File::create` would. It is removed on every path that does not end in a successful
//! rename: an error while writing, a failed sync, a failed rename, or a drop without
//! [`AtomicFile::commit`]. Errors name the user's path, never the temporary's.
//! The target must be absent or a regular file: renaming onto a device node would
//! replace the node (as root, `-o /dev/null` once replaced `/dev/null`), and onto a
//! directory fails only after all the work.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{FormatError, Result};
use crate::output::{ensure_parent_dir, ensure_regular_or_absent};

/// A file written under a temporary name in the target's directory and renamed onto the
/// target by [`AtomicFile::commit`]. Dropped without commit, the temporary is removed.
pub struct AtomicFile {
    file: NamedTempFile,
    target: PathBuf,
}

impl AtomicFile {
    pub fn create(target: &Path) -> Result<Self> {
        ensure_regular_or_absent(target)?;
        ensure_parent_dir(target)?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .ok_or_else(|| FormatError::Invalid {
                what: "output path",
                message: format!("{} has no file name", target.display()),
            })?
            .to_string_lossy()
            .into_owned();
        let prefix = format!(".{name}.tmp-");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        // What `File::create` asks for (the umask applies); tempfile's own is 0600.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let file = builder
            .tempfile_in(&dir)
            .map_err(|e| FormatError::io(target, e))?;
        Ok(AtomicFile {
            file,
            target: target.to_path_buf(),
        })
    }

    /// The path the file will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Syncs and renames onto the target; on failure the temporary is removed.
    pub fn commit(self) -> Result<PathBuf> {
        let AtomicFile { file, target } = self;
        file.as_file()
            .sync_all()
            .map_err(|e| FormatError::io(&target, e))?;
        // The target may have changed since `create`: re-check right before.
        ensure_regular_or_absent(&target)
            .map_err(|e| FormatError::io(&target, io::Error::other(e)))?;
        // On failure the returned temporary is dropped, which removes it.
        file.persist(&target)
            .map_err(|e| FormatError::io(&target, e.error))?;
        Ok(target)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes `bytes` to `target` atomically.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(target)?;
    f.write_all(bytes).map_err(|e| FormatError::io(target, e))?;
    f.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn directory_target_is_refused_before_writing_and_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("out");
        fs::create_dir(&target).unwrap();
        let e = write_atomic(&target, b"data").unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
        assert!(leftovers(d.path()).is_empty());
    }

    #[test]
    fn target_turned_directory_before_commit_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("out");
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"data").unwrap();
        fs::create_dir(&target).unwrap();
        let e = f.commit().unwrap_err().to_string();
        assert!(e.starts_with(&target.display().to_string()), "{e}");
        assert!(leftovers(d.path()).is_empty(), "{:?}", leftovers(d.path()));
    }

    #[test]
    fn missing_parent_names_the_users_path() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("missing").join("t.msgpack");
        let e = write_atomic(&target, b"x").unwrap_err().to_string();
        assert!(e.contains("t.msgpack") && !e.contains(".tmp-"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn device_nodes_are_never_replaced() {
        let e = AtomicFile::create(Path::new("/dev/null"))
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("device node"), "{e}");
        assert!(!Path::new("/dev/null").metadata().unwrap().is_file());
    }
}
