//! The host directory that holds one run's input files.

use std::path::{Path, PathBuf};

use super::SandboxError;

/// A private directory on the host holding one run's input files; removed
/// when dropped. Readable only by the user the run is done as.
pub(crate) struct WorkDir {
    path: PathBuf,
    owner: Option<(u32, u32)>,
}

impl WorkDir {
    pub(crate) async fn create(owner: Option<(u32, u32)>) -> Result<WorkDir, SandboxError> {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("steward-sandbox-{}", uuid::Uuid::new_v4()));
        tokio::fs::create_dir(&path).await.map_err(SandboxError::io("creating the script's directory"))?;
        let dir = WorkDir { path, owner };
        tokio::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o700))
            .await
            .map_err(SandboxError::io("restricting the script's directory"))?;
        dir.chown(&dir.path)?;
        Ok(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) async fn write(&self, name: &str, contents: &[u8]) -> Result<(), SandboxError> {
        let path = self.path.join(name);
        tokio::fs::write(&path, contents).await.map_err(SandboxError::io("writing the script's files"))?;
        self.chown(&path)
    }

    /// Hands `path` to the sandbox's user, who has to read it.
    fn chown(&self, path: &Path) -> Result<(), SandboxError> {
        match self.owner {
            Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(SandboxError::io("handing files to the sandbox user")),
            None => Ok(()),
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a sandbox run's directory");
        }
    }
}
