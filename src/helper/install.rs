//! `podgrace install-helper DIR`: what the injected init container runs. Copies the running
//! binary into the shared volume, atomically (write a temporary file, then rename), so that a
//! restarted init container never leaves a half-written binary behind.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Copies the current executable to `dir/podgrace`, mode 0755; returns the path.
pub fn install(dir: &Path) -> io::Result<PathBuf> {
    let source = std::env::current_exe()?;
    let target = dir.join("podgrace");
    let tmp = dir.join(".podgrace.tmp");
    std::fs::copy(&source, &tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, &target)?;
    Ok(target)
}
