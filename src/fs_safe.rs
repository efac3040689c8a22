//! Reading files that a hostile local user may have planted: bounded, regular files only, no
//! symlink followed at the last component, never blocking on a FIFO or a device.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

use zeroize::Zeroizing;

/// Why a file could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Nothing at that path.
    NotFound,
    /// A symlink, FIFO, socket, device or directory.
    NotRegular(&'static str),
    /// More than the cap.
    TooLarge(u64),
    /// Any other I/O failure (permission denied, ...).
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotFound => f.write_str("the file does not exist"),
            ReadError::NotRegular(what) => write!(f, "{what}, not a regular file"),
            ReadError::TooLarge(cap) => write!(f, "the file is larger than {cap} bytes"),
            ReadError::Io(e) => write!(f, "cannot read the file: {e}"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Opens `path` for reading without following a symlink at its last component and without
/// blocking on a FIFO, and checks that what was opened is a regular file.
pub(crate) fn open_regular(path: &Path) -> Result<File, ReadError> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::NotFound),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ReadError::NotRegular("a symbolic link"));
        }
        Err(e) => return Err(ReadError::Io(e)),
    };
    let file_type = file.metadata().map_err(ReadError::Io)?.file_type();
    if !file_type.is_file() {
        return Err(ReadError::NotRegular(describe(&file_type)));
    }
    Ok(file)
}

fn describe(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        return "a directory";
    }
    if file_type.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_block_device() || file_type.is_char_device() {
            return "a device";
        }
    }
    "not a regular file"
}

/// Reads a regular file of at most `cap` bytes (see [`open_regular`]). The bytes are zeroed when
/// dropped: such files may hold secrets.
pub(crate) fn read_regular(path: &Path, cap: u64) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let file = open_regular(path)?;
    read_capped(file, cap)
}

/// Reads at most `cap` bytes from an open file; more is [`ReadError::TooLarge`]. The cap is
/// enforced while reading, whatever the file's metadata says.
pub(crate) fn read_capped(file: File, cap: u64) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(cap));
    }
    Ok(bytes)
}

/// Opens the file at `path` to take a lock on it, creating it with `mode` (exactly, whatever the
/// umask) when it does not exist: no symlink followed at the last component, never blocking on a
/// FIFO, regular files only. Returns the file and whether this call created it.
pub(crate) fn open_lock_file(path: &Path, mode: u32) -> Result<(File, bool), ReadError> {
    match create_new_file(path, mode) {
        Ok(file) => return Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ReadError::NotRegular("a symbolic link"));
        }
        Err(e) => return Err(ReadError::Io(e)),
    }
    // Someone else's lock file: opened read-only (enough to lock it), never followed.
    open_regular(path).map(|file| (file, false))
}

/// Creates a new file at `path` for writing, failing if anything (a symlink included) is there
/// (`O_CREAT|O_EXCL|O_NOFOLLOW`), with permission bits `mode` set exactly (not reduced by the
/// umask).
pub(crate) fn create_new_file(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(file)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"hello").unwrap();
        assert_eq!(&*read_regular(&file, 5).unwrap(), b"hello");
        assert!(matches!(
            read_regular(&file, 4),
            Err(ReadError::TooLarge(4))
        ));
        assert!(matches!(
            read_regular(&dir.path().join("missing"), 9),
            Err(ReadError::NotFound)
        ));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(matches!(
            read_regular(&link, 9),
            Err(ReadError::NotRegular(_))
        ));
        assert!(matches!(
            read_regular(dir.path(), 9),
            Err(ReadError::NotRegular("a directory"))
        ));
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = read_regular(&fifo, 9).unwrap_err();
            assert!(matches!(err, ReadError::NotRegular("a FIFO")), "{err}");
        }
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 9),
            Err(ReadError::NotRegular("a device"))
        ));
    }
}
