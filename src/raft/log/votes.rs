//! Each group's vote (and the node's identity record) in one small file, replaced whole
//! on every change: written to a temporary file, fsynced, renamed over the old one, and the
//! directory fsynced, so a crash leaves either the old file or the new one.
//!
//! ## Format
//! `"BVOT" | count:u32 LE | (group:u32 LE | len:u32 LE | bytes)* | crc32c:u32 LE` over
//! everything before the CRC. The values are opaque here (the adapter serialises votes).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;

const MAGIC: &[u8; 4] = b"BVOT";

pub struct Votes {
    path: PathBuf,
    values: Mutex<BTreeMap<u32, Bytes>>,
}

fn corrupt(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: damaged vote file", path.display()),
    )
}

fn decode(raw: &[u8]) -> Option<BTreeMap<u32, Bytes>> {
    let body_len = raw.len().checked_sub(4)?;
    let (body, crc) = raw.split_at(body_len);
    if body.get(..4)? != MAGIC || crc32c::crc32c(body).to_le_bytes() != crc {
        return None;
    }
    let count = u32::from_le_bytes(body.get(4..8)?.try_into().ok()?);
    let mut pos = 8;
    let mut values = BTreeMap::new();
    for _ in 0..count {
        let group = u32::from_le_bytes(body.get(pos..pos + 4)?.try_into().ok()?);
        let len = u32::from_le_bytes(body.get(pos + 4..pos + 8)?.try_into().ok()?) as usize;
        let value = body.get(pos + 8..pos + 8 + len)?;
        values.insert(group, Bytes::copy_from_slice(value));
        pos += 8 + len;
    }
    (pos == body.len()).then_some(values)
}

impl Votes {
    /// Loads the file at `path` (none yet: no votes). A damaged file is an error, never
    /// silently an empty one: forgetting a vote could let a node vote twice in a term.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Votes> {
        let path = path.as_ref().to_path_buf();
        let values = match std::fs::read(&path) {
            Ok(raw) => decode(&raw).ok_or_else(|| corrupt(&path))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Votes {
            path,
            values: Mutex::new(values),
        })
    }

    pub fn get(&self, group: u32) -> Option<Bytes> {
        self.values.lock().get(&group).cloned()
    }

    /// Sets `group`'s value durably before returning.
    pub fn save(&self, group: u32, value: Bytes) -> io::Result<()> {
        let mut values = self.values.lock();
        values.insert(group, value);
        let mut out = BytesMut::new();
        out.put_slice(MAGIC);
        out.put_u32_le(values.len() as u32);
        for (g, v) in values.iter() {
            out.put_u32_le(*g);
            out.put_u32_le(v.len() as u32);
            out.put_slice(v);
        }
        let crc = crc32c::crc32c(&out);
        out.put_u32_le(crc);
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&out)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn votes_survive_reopen_and_damage_is_refused() {
        let dir = std::env::temp_dir().join(format!("basalt-votes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("votes");
        let v = Votes::open(&path).unwrap();
        assert_eq!(v.get(1), None);
        v.save(1, Bytes::from_static(b"term 3 for node 2")).unwrap();
        v.save(7, Bytes::from_static(b"x")).unwrap();
        v.save(1, Bytes::from_static(b"term 4 for node 1")).unwrap();
        // A temporary file left by a crash before the rename changes nothing.
        std::fs::write(path.with_extension("tmp"), b"half").unwrap();
        let v = Votes::open(&path).unwrap();
        assert_eq!(v.get(1), Some(Bytes::from_static(b"term 4 for node 1")));
        assert_eq!(v.get(7), Some(Bytes::from_static(b"x")));
        let mut raw = std::fs::read(&path).unwrap();
        raw[10] ^= 0xff;
        std::fs::write(&path, raw).unwrap();
        assert!(Votes::open(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
