//! `boltcall replay`: runs a fixture call through the whole pipeline faster than real time.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;

pub async fn run(_config: &Config, _fixture: &Path) -> anyhow::Result<ExitCode> {
    anyhow::bail!("replay: not built yet")
}
