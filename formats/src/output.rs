//! Output safety: what a command may do to the path it was told to write.
//!
//! Every llm-infer-bench command that writes a file goes through an [`OutputGuard`]
//! before it writes anything, because the costly mistakes are silent ones: `-o` naming
//! the trace being replayed (the trace is gone), a run log written over yesterday's run,
//! `-o /dev/null` run as root replacing the device node with a regular file. The rules:
//!
//! * an existing file is replaced only when the user said `--force`;
//! * a command's own inputs are never replaced, not even with `--force`; an input is
//!   recognised by canonical path and by device and inode, so symlinks and hard links
//!   to it count as the input;
//! * only regular files are written: a directory, device node, FIFO or socket at the
//!   output path is refused (writing there would block, replace the node, or fail after
//!   the run);
//! * the directory the file goes into must exist, and errors name the user's path.
//!
//! The checks run before the work starts, so a bad `-o` costs nothing; writers also
//! re-check when they open the file ([`AtomicFile`](crate::AtomicFile) and
//! [`LogWriter`](crate::LogWriter) refuse non-regular targets themselves).

use std::fs::Metadata;
use std::path::{Path, PathBuf};

/// Why an output path was refused. One line each, naming the user's path.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path} already exists (use --force to replace it)")]
    Exists { path: PathBuf },
    #[error(
        "{path} is {what} (an input of this command); refusing to overwrite it, even with --force"
    )]
    IsInput { path: PathBuf, what: String },
    #[error("{path} is {kind}, not a regular file; refusing to write to it")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("cannot write {path}: directory {dir} does not exist")]
    NoParent { path: PathBuf, dir: PathBuf },
    #[error("{path} is {kind}, not a directory")]
    NotADir { path: PathBuf, kind: &'static str },
    #[error("cannot write {path}: {dir} is not a directory")]
    ParentNotDir { path: PathBuf, dir: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The identity of an input file: where it really is, and which inode it is.
#[derive(Debug, Clone)]
struct InputId {
    /// What the input is, for messages ("the trace", "the spec file").
    what: String,
    canonical: Option<PathBuf>,
    #[cfg(unix)]
    dev_ino: Option<(u64, u64)>,
}

impl InputId {
    fn of(path: &Path, what: &str) -> InputId {
        InputId {
            what: what.to_string(),
            canonical: std::fs::canonicalize(path).ok(),
            #[cfg(unix)]
            dev_ino: std::fs::metadata(path).ok().map(|m| dev_ino(&m)),
        }
    }

    fn matches(&self, canonical: Option<&Path>, meta: &Metadata) -> bool {
        #[cfg(unix)]
        if self.dev_ino == Some(dev_ino(meta)) {
            return true;
        }
        #[cfg(not(unix))]
        let _ = meta;
        matches!((&self.canonical, canonical), (Some(a), Some(b)) if a == b)
    }
}

#[cfg(unix)]
fn dev_ino(m: &Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// What kind of non-regular file `m` describes, for messages.
pub fn file_kind(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_block_device() || t.is_char_device() {
            return "a device node";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// Refuses anything but a regular file (or nothing) at `path`.
pub fn ensure_regular_or_absent(path: &Path) -> Result<(), OutputError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) => Err(OutputError::NotRegular {
            path: path.to_path_buf(),
            kind: file_kind(&m),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(OutputError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// The directory a file at `path` goes into, checked to exist.
pub fn ensure_parent_dir(path: &Path) -> Result<(), OutputError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => return Ok(()),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(OutputError::ParentNotDir {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(OutputError::NoParent {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        }),
        Err(e) => Err(OutputError::Io {
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

/// A command's output policy: `--force` and the files it reads.
#[derive(Debug, Clone, Default)]
pub struct OutputGuard {
    force: bool,
    inputs: Vec<InputId>,
}

impl OutputGuard {
    /// `force`: existing regular files may be replaced (never inputs).
    pub fn new(force: bool) -> OutputGuard {
        OutputGuard {
            force,
            inputs: Vec::new(),
        }
    }

    /// Registers an input file (`what` names it in messages: "the trace").
    pub fn input(mut self, path: &Path, what: &str) -> OutputGuard {
        self.add_input(path, what);
        self
    }

    /// Registers an input file.
    pub fn add_input(&mut self, path: &Path, what: &str) {
        self.inputs.push(InputId::of(path, what));
    }

    pub fn force(&self) -> bool {
        self.force
    }

    /// The same guard (same inputs) with `--force` set: for outputs a command
    /// regenerates in place by design (`--readme` figures).
    pub fn forced(&self) -> OutputGuard {
        OutputGuard {
            force: true,
            inputs: self.inputs.clone(),
        }
    }

    /// Checks a file output path: parent directory exists; nothing there, or a regular
    /// file that is not an input and `--force` was given.
    pub fn check_file(&self, path: &Path) -> Result<(), OutputError> {
        if self.check_replace(path)? {
            Ok(())
        } else {
            ensure_parent_dir(path)
        }
    }

    /// Checks a file output path whose directory the writer creates itself: nothing
    /// there, or a regular file that is not an input and `--force` was given. Returns
    /// whether something exists at `path`.
    pub fn check_replace(&self, path: &Path) -> Result<bool, OutputError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                return Err(OutputError::Io {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        };
        self.check_not_input(path, &meta)?;
        if !meta.is_file() {
            return Err(OutputError::NotRegular {
                path: path.to_path_buf(),
                kind: file_kind(&meta),
            });
        }
        if !self.force {
            return Err(OutputError::Exists {
                path: path.to_path_buf(),
            });
        }
        Ok(true)
    }

    /// Checks a file output path that is written without following a symbolic link
    /// (the `--server-metrics` sidecar, whose name is derived, not chosen): as
    /// [`OutputGuard::check_file`], and a link at `path`, even a dangling one, is an
    /// existing file: refused without `--force`, replaced (the link, never its target)
    /// with it, unless it leads to an input.
    pub fn check_file_no_follow(&self, path: &Path) -> Result<(), OutputError> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(target) = std::fs::metadata(path) {
                    self.check_not_input(path, &target)?;
                }
                if !self.force {
                    return Err(OutputError::Exists {
                        path: path.to_path_buf(),
                    });
                }
                ensure_parent_dir(path)
            }
            _ => self.check_file(path),
        }
    }

    /// Checks an output directory (created later if missing): not a file, not an input.
    pub fn check_dir(&self, dir: &Path) -> Result<(), OutputError> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(m) => {
                self.check_not_input(dir, &m)?;
                Err(OutputError::NotADir {
                    path: dir.to_path_buf(),
                    kind: file_kind(&m),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(OutputError::Io {
                path: dir.to_path_buf(),
                source: e,
            }),
        }
    }

    /// Checks every file a command will write into directories, all before any is
    /// written.
    /// The directories are created by the writer, so only existing files are checked.
    pub fn check_files<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a Path>,
    ) -> Result<(), OutputError> {
        for p in paths {
            self.check_replace(p)?;
        }
        Ok(())
    }

    fn check_not_input(&self, path: &Path, meta: &Metadata) -> Result<(), OutputError> {
        let canonical = std::fs::canonicalize(path).ok();
        match self
            .inputs
            .iter()
            .find(|i| i.matches(canonical.as_deref(), meta))
        {
            Some(i) => Err(OutputError::IsInput {
                path: path.to_path_buf(),
                what: i.what.clone(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_in_existing_dir_is_fine() {
        let d = tempfile::tempdir().unwrap();
        OutputGuard::new(false)
            .check_file(&d.path().join("new.msgpack"))
            .unwrap();
    }

    #[test]
    fn existing_file_needs_force() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        std::fs::write(&p, b"x").unwrap();
        let e = OutputGuard::new(false).check_file(&p).unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
        OutputGuard::new(true).check_file(&p).unwrap();
    }

    #[test]
    fn inputs_are_refused_even_with_force_by_path_symlink_and_hard_link() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("trace.msgpack");
        std::fs::write(&input, b"x").unwrap();
        let guard = OutputGuard::new(true).input(&input, "the trace");
        let e = guard.check_file(&input).unwrap_err();
        assert!(matches!(e, OutputError::IsInput { .. }), "{e}");
        assert!(e.to_string().contains("the trace"), "{e}");
        // The same file through another spelling of its path.
        let dotted = d.path().join(".").join("trace.msgpack");
        assert!(guard.check_file(&dotted).is_err());
        #[cfg(unix)]
        {
            let link = d.path().join("link");
            std::os::unix::fs::symlink(&input, &link).unwrap();
            assert!(matches!(
                guard.check_file(&link),
                Err(OutputError::IsInput { .. })
            ));
            let hard = d.path().join("hard");
            std::fs::hard_link(&input, &hard).unwrap();
            assert!(matches!(
                guard.check_file(&hard),
                Err(OutputError::IsInput { .. })
            ));
        }
    }

    #[test]
    fn directories_and_devices_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let e = OutputGuard::new(true).check_file(d.path()).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        #[cfg(unix)]
        {
            let e = OutputGuard::new(true)
                .check_file(Path::new("/dev/null"))
                .unwrap_err();
            assert!(e.to_string().contains("a device node"), "{e}");
        }
    }

    #[test]
    fn missing_parent_is_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("nope").join("x.msgpack");
        let e = OutputGuard::new(false).check_file(&p).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("x.msgpack") && s.contains("does not exist"),
            "{s}"
        );
        assert!(!s.contains(".tmp-"), "{s}");
    }

    #[cfg(unix)]
    #[test]
    fn links_are_existing_files_when_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("trace.msgpack");
        std::fs::write(&input, b"x").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(d.path().join("nowhere"), &link).unwrap();
        let e = OutputGuard::new(false)
            .check_file_no_follow(&link)
            .unwrap_err();
        assert!(matches!(e, OutputError::Exists { .. }), "{e}");
        OutputGuard::new(true).check_file_no_follow(&link).unwrap();
        let to_input = d.path().join("to-input");
        std::os::unix::fs::symlink(&input, &to_input).unwrap();
        let e = OutputGuard::new(true)
            .input(&input, "the trace")
            .check_file_no_follow(&to_input)
            .unwrap_err();
        assert!(matches!(e, OutputError::IsInput { .. }), "{e}");
        let dir = d.path().join("dir");
        std::fs::create_dir(&dir).unwrap();
        assert!(OutputGuard::new(true).check_file_no_follow(&dir).is_err());
    }

    #[test]
    fn output_dir_checks() {
        let d = tempfile::tempdir().unwrap();
        let g = OutputGuard::new(false);
        g.check_dir(d.path()).unwrap();
        g.check_dir(&d.path().join("new")).unwrap();
        let f = d.path().join("file");
        std::fs::write(&f, b"x").unwrap();
        assert!(g.check_dir(&f).is_err());
    }
}
