//! The disk tier under the data directory, so a restart does not synthesise every fixed phrase
//! again. One file per sentence, named by the hash of its key, bounded by bytes (oldest files
//! go first). Blocking: call it from `spawn_blocking`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::memory::Audio;

/// Marks a file as ours and its layout version: magic, sample count, samples (LE).
const MAGIC: &[u8; 4] = b"BCS1";
const HEADER: usize = 8;

pub struct DiskTier {
    dir: PathBuf,
    capacity: u64,
    held: u64,
    next: u64,
    /// Write order → (file name, size); the first is the oldest.
    order: BTreeMap<u64, (String, u64)>,
    position: HashMap<String, u64>,
}

impl DiskTier {
    /// Opens `dir`, creating it, and trims what an earlier run left beyond `capacity` bytes.
    pub fn open(dir: &Path, capacity: u64) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut found: Vec<(SystemTime, String, u64)> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".pcm") {
                continue;
            }
            let meta = entry.metadata()?;
            found.push((meta.modified()?, name, meta.len()));
        }
        found.sort();
        let mut tier = DiskTier {
            dir: dir.to_path_buf(),
            capacity,
            held: 0,
            next: 0,
            order: BTreeMap::new(),
            position: HashMap::new(),
        };
        for (_, name, size) in found {
            tier.track(name, size);
        }
        tier.trim();
        Ok(tier)
    }

    pub fn get(&self, key: &str) -> Option<Audio> {
        let name = file_name(key);
        self.position.get(&name)?;
        let bytes = fs::read(self.dir.join(&name)).ok()?;
        let audio = decode(&bytes);
        if audio.is_none() {
            tracing::warn!(file = %name, "dropping a damaged speech cache file");
            let _ = fs::remove_file(self.dir.join(&name));
        }
        audio
    }

    /// Writes `audio` (to a temporary file renamed into place, so a crash leaves no half file).
    pub fn put(&mut self, key: &str, audio: &[i16]) -> std::io::Result<()> {
        let name = file_name(key);
        let mut bytes = Vec::with_capacity(HEADER + audio.len() * 2);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(audio.len() as u32).to_le_bytes());
        for s in audio {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        if bytes.len() as u64 > self.capacity {
            return Ok(());
        }
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        drop(file);
        fs::rename(&tmp, self.dir.join(&name))?;
        self.untrack(&name);
        self.track(name, bytes.len() as u64);
        self.trim();
        Ok(())
    }

    fn track(&mut self, name: String, size: u64) {
        self.next += 1;
        self.held += size;
        self.position.insert(name.clone(), self.next);
        self.order.insert(self.next, (name, size));
    }

    fn untrack(&mut self, name: &str) {
        if let Some(at) = self.position.remove(name)
            && let Some((_, size)) = self.order.remove(&at)
        {
            self.held -= size;
        }
    }

    fn trim(&mut self) {
        while self.held > self.capacity {
            let Some((_, (name, size))) = self.order.pop_first() else {
                break;
            };
            self.position.remove(&name);
            self.held -= size;
            let _ = fs::remove_file(self.dir.join(&name));
        }
    }
}

fn file_name(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.pcm")
}

fn decode(bytes: &[u8]) -> Option<Audio> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return None;
    }
    let count = u32::from_le_bytes(bytes[4..8].try_into().ok()?) as usize;
    let body = &bytes[HEADER..];
    if body.len() != count * 2 || count == 0 {
        return None;
    }
    Some(
        body.chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut tier = DiskTier::open(dir.path(), 1 << 20).unwrap();
        tier.put("piper\0voice_james\0Hello there.", &[1, -2, 3])
            .unwrap();
        let reopened = DiskTier::open(dir.path(), 1 << 20).unwrap();
        let audio = reopened.get("piper\0voice_james\0Hello there.").unwrap();
        assert_eq!(&audio[..], &[1, -2, 3]);
        assert!(reopened.get("piper\0voice_sarah\0Hello there.").is_none());
    }

    #[test]
    fn oldest_files_go_when_over_capacity_and_at_reopen() {
        let dir = tempfile::tempdir().unwrap();
        // Each file is 8 + 200 bytes.
        let mut tier = DiskTier::open(dir.path(), 450).unwrap();
        for key in ["a", "b", "c"] {
            tier.put(key, &[7; 100]).unwrap();
        }
        assert!(tier.get("a").is_none(), "the oldest was removed");
        assert!(tier.get("b").is_some() && tier.get("c").is_some());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        let smaller = DiskTier::open(dir.path(), 250).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(smaller.held <= 250);
    }

    #[test]
    fn a_damaged_file_is_a_miss_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut tier = DiskTier::open(dir.path(), 1 << 20).unwrap();
        tier.put("k", &[5; 10]).unwrap();
        let path = dir.path().join(file_name("k"));
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(tier.get("k").is_none());
        assert!(!path.exists());
    }
}
