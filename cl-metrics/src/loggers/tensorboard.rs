//! [`TensorBoardLogger`]: TensorBoard event files (TFRecord framing of `tensorflow.Event`
//! protobuf messages with scalar summaries), and [`read_events`] to read them back.
//!
//! Written without a TensorBoard crate: the maintained-looking ones (`tensorboard-rs`) pull an
//! old protobuf stack; the format needed for scalars is small. Each record is
//! `u64 length (LE) · u32 masked crc32c(length) · data · u32 masked crc32c(data)`, and the data
//! an `Event { wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
//! summary = 5 (Summary { value = 1 (repeated Value { tag = 1 (string), simple_value = 2
//! (float) }) }) }`. The first event carries `file_version = "brain.Event:2"`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use cl_core::checkpoint::StateDict;
use cl_core::evaluation::{LogEvent, Logger};
use cl_core::{ClError, Result};

use super::file::LogFile;

/// Writes every scalar value as a TensorBoard scalar (`tag` = the metric's name, `step` =
/// its `x_plot`) to `events.out.tfevents.<seconds>.<host>.<pid>` in a folder (`.1`, `.2`, ...
/// appended if that file exists); values with matrix data (confusion matrix, accuracy matrix)
/// are left out. Open with `tensorboard --logdir <folder>`.
///
/// Crash-safe: the records of a callback go to the file in one `write` call when they are
/// emitted (no buffer), so a kill leaves at most the last record torn, which [`read_events`]
/// skips and reports. Resumable: a checkpoint saves the file's name and length; a resumed run's
/// logger (which opened a new, empty file) removes its own file, cuts the checkpoint's file back
/// to the saved length and continues it.
#[derive(Debug)]
pub struct TensorBoardLogger {
    folder: PathBuf,
    file: LogFile,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl TensorBoardLogger {
    /// Creates the folder and a new event file; the file-version event is written at the first
    /// callback of a fresh run.
    pub fn new(folder: impl AsRef<Path>) -> io::Result<Self> {
        let folder = folder.as_ref().to_path_buf();
        std::fs::create_dir_all(&folder)?;
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
            .unwrap_or_else(|| "localhost".into());
        let secs = now() as u64;
        let base = format!("events.out.tfevents.{secs}.{host}.{}", std::process::id());
        let mut k = 0;
        let file = loop {
            let name = if k == 0 { base.clone() } else { format!("{base}.{k}") };
            match LogFile::create_new(folder.join(name)) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && k < 1000 => k += 1,
                other => break other?,
            }
        };
        Ok(Self { folder, file })
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// A TFRecord record: `u64 length · u32 masked crc(length) · data · u32 masked crc(data)`.
fn put_record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

impl Logger for TensorBoardLogger {
    fn log(&mut self, e: &LogEvent<'_>) -> io::Result<()> {
        let wall = now();
        let mut records = Vec::new();
        if self.file.start()? {
            put_record(&mut records, &encode_event(wall, 0, Some("brain.Event:2"), &[]));
        }
        for v in e.values.iter().filter(|v| v.data.is_none()) {
            put_record(&mut records, &encode_event(wall, v.x_plot as i64, None, &[(v.name.as_str(), v.value as f32)]));
        }
        self.file.append(&records)
    }

    /// Saves the file's name and length (after syncing it to the disk).
    fn save_state(&mut self, out: &mut StateDict) -> Result<()> {
        let name = self.file.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        out.put("file_name", &name)?;
        let mut d = StateDict::new(format!("{} (event file)", out.component()));
        self.file.save_state(&mut d)?;
        out.put_dict("file", d);
        Ok(())
    }

    /// Continues the checkpoint's event file (in this logger's folder), cut back to the saved
    /// length; this logger's own new file, still empty, is removed.
    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        let name: String = state.get("file_name")?;
        // A bare event-file name of this folder, never a path elsewhere.
        if Path::new(&name).file_name().and_then(|n| n.to_str()) != Some(name.as_str())
            || !name.starts_with("events.out.tfevents.")
        {
            return Err(ClError::CheckpointEntry {
                component: state.component().to_string(),
                key: "file_name".into(),
                reason: format!("`{name}` is not the name of an event file"),
            });
        }
        let saved = self.folder.join(&name);
        if saved == self.file.path() {
            return self.file.load_state(state.dict("file")?);
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ClError::Io { path, source }
        };
        let mut file = match LogFile::open_existing(&saved) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !state.dict("file")?.get::<bool>("started")? => {
                // Saved before the first record: nothing to continue, the new file serves.
                return Ok(());
            }
            Err(e) => return Err(io(&saved)(e)),
        };
        file.load_state(state.dict("file")?)?;
        let own = std::mem::replace(&mut self.file, file);
        if own.is_empty_new() {
            let path = own.path().to_path_buf();
            drop(own);
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
        Ok(())
    }
}

fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(buf, u64::from(field << 3 | 2));
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn encode_event(wall_time: f64, step: i64, file_version: Option<&str>, scalars: &[(&str, f32)]) -> Vec<u8> {
    let mut buf = vec![1 << 3 | 1];
    buf.extend_from_slice(&wall_time.to_le_bytes());
    if step != 0 {
        put_varint(&mut buf, 2 << 3);
        put_varint(&mut buf, step as u64);
    }
    if let Some(v) = file_version {
        put_bytes(&mut buf, 3, v.as_bytes());
    }
    if !scalars.is_empty() {
        let mut summary = Vec::new();
        for (tag, value) in scalars {
            let mut val = Vec::new();
            put_bytes(&mut val, 1, tag.as_bytes());
            val.push(2 << 3 | 5);
            val.extend_from_slice(&value.to_le_bytes());
            put_bytes(&mut summary, 1, &val);
        }
        put_bytes(&mut buf, 5, &summary);
    }
    buf
}

/// An event read back from an event file.
#[derive(Debug, Clone, PartialEq)]
pub struct TbEvent {
    /// Seconds since the epoch.
    pub wall_time: f64,
    /// The step.
    pub step: i64,
    /// The file version (first event).
    pub file_version: Option<String>,
    /// The scalar summary values: (tag, value).
    pub scalars: Vec<(String, f32)>,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// A protobuf reader over a byte slice: (field, wire type, payload) triples.
struct Fields<'a> {
    data: &'a [u8],
}

enum Payload<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Fixed32([u8; 4]),
    Bytes(&'a [u8]),
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> io::Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.data.split_first().ok_or_else(|| bad("truncated varint"))?;
            self.data = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.data.len() < n {
            return Err(bad("truncated field"));
        }
        let (a, b) = self.data.split_at(n);
        self.data = b;
        Ok(a)
    }

    fn next_field(&mut self) -> io::Result<Option<(u64, Payload<'a>)>> {
        if self.data.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let payload = match key & 7 {
            0 => Payload::Varint(self.varint()?),
            1 => Payload::Fixed64(self.take(8)?.try_into().expect("8 bytes")),
            2 => {
                let n = self.varint()? as usize;
                Payload::Bytes(self.take(n)?)
            }
            5 => Payload::Fixed32(self.take(4)?.try_into().expect("4 bytes")),
            _ => return Err(bad("unsupported wire type")),
        };
        Ok(Some((key >> 3, payload)))
    }
}

fn decode_event(data: &[u8]) -> io::Result<TbEvent> {
    let mut event = TbEvent { wall_time: 0.0, step: 0, file_version: None, scalars: Vec::new() };
    let mut f = Fields { data };
    while let Some((field, payload)) = f.next_field()? {
        match (field, payload) {
            (1, Payload::Fixed64(b)) => event.wall_time = f64::from_le_bytes(b),
            (2, Payload::Varint(v)) => event.step = v as i64,
            (3, Payload::Bytes(b)) => event.file_version = Some(String::from_utf8_lossy(b).into_owned()),
            (5, Payload::Bytes(summary)) => {
                let mut s = Fields { data: summary };
                while let Some((sf, sp)) = s.next_field()? {
                    let (1, Payload::Bytes(value)) = (sf, sp) else { continue };
                    let (mut tag, mut simple) = (String::new(), None);
                    let mut v = Fields { data: value };
                    while let Some((vf, vp)) = v.next_field()? {
                        match (vf, vp) {
                            (1, Payload::Bytes(t)) => tag = String::from_utf8_lossy(t).into_owned(),
                            (2, Payload::Fixed32(b)) => simple = Some(f32::from_le_bytes(b)),
                            _ => {}
                        }
                    }
                    if let Some(x) = simple {
                        event.scalars.push((tag, x));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(event)
}

/// The events of an event file ([`read_events`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TbEvents {
    /// The events, in file order (the file-version event first).
    pub events: Vec<TbEvent>,
    /// The byte offset of the last record if it was torn (cut before its end, as a run killed
    /// while writing leaves it) and skipped; `None` when the file ends with a whole record.
    pub torn_last_record: Option<u64>,
}

/// Reads an event file, checking both checksums of every record.
///
/// A last record cut before its end (a run killed while writing it) is skipped, reported in
/// [`TbEvents::torn_last_record`] and logged as a warning; every whole record is kept. A record
/// whose checksum does not match, anywhere, is an [`InvalidData`](io::ErrorKind::InvalidData)
/// error naming its offset.
pub fn read_events(path: impl AsRef<Path>) -> io::Result<TbEvents> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)?;
    let mut events = Vec::new();
    let mut rest = bytes.as_slice();
    let at = |rest: &[u8]| (bytes.len() - rest.len()) as u64;
    let torn = |offset: u64, events: Vec<TbEvent>| {
        tracing::warn!(
            file = %path.display(),
            offset,
            "skipping the torn last record of a TensorBoard event file (a run killed while writing it)"
        );
        Ok(TbEvents { events, torn_last_record: Some(offset) })
    };
    let bad_at = |offset: u64, msg: &str| bad(&format!("{}: record at byte {offset}: {msg}", path.display()));
    while !rest.is_empty() {
        let offset = at(rest);
        if rest.len() < 12 {
            return torn(offset, events);
        }
        let (len_bytes, after) = rest.split_at(8);
        let len_crc = u32::from_le_bytes(after[..4].try_into().expect("4 bytes"));
        if masked_crc(len_bytes) != len_crc {
            return Err(bad_at(offset, "bad length checksum"));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
        let after = &after[4..];
        // A crafted length must not overflow: checked, an error rather than a panic.
        let need = usize::try_from(len).ok().and_then(|l| l.checked_add(4));
        let Some(need) = need else { return Err(bad_at(offset, "record length too large")) };
        if after.len() < need {
            return torn(offset, events);
        }
        let (data, after) = after.split_at(need - 4);
        let data_crc = u32::from_le_bytes(after[..4].try_into().expect("4 bytes"));
        if masked_crc(data) != data_crc {
            return Err(bad_at(offset, "bad data checksum"));
        }
        events.push(decode_event(data).map_err(|e| bad_at(offset, &e.to_string()))?);
        rest = &after[4..];
    }
    Ok(TbEvents { events, torn_last_record: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_matches_tensorflow() {
        // crc32c("123456789") = 0xE3069283 (the standard check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // TensorFlow's mask ((crc >> 15) | (crc << 17)) + 0xa282ead8, computed by hand.
        assert_eq!(masked_crc(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn crafted_huge_length_is_an_error_or_a_torn_record_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        for len in [u64::MAX, u64::MAX - 3, 1 << 40] {
            let len_bytes = len.to_le_bytes();
            let mut rec = len_bytes.to_vec();
            rec.extend_from_slice(&masked_crc(&len_bytes).to_le_bytes());
            rec.extend_from_slice(&[0u8; 8]);
            let path = dir.path().join("events.out.tfevents.crafted");
            std::fs::write(&path, &rec).unwrap();
            match read_events(&path) {
                // A length that overflows is corrupt.
                Err(e) => {
                    assert!(len > u64::MAX - 4, "{len}");
                    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
                }
                // Another is a record longer than what the file holds: cut short, so skipped.
                Ok(read) => assert_eq!((read.events.len(), read.torn_last_record), (0, Some(0)), "{len}"),
            }
        }
    }

    #[test]
    fn event_encoding_is_protobuf() {
        // Event{wall_time=1.0, step=3, summary{value{tag="a", simple_value=0.5}}}, by hand.
        let e = encode_event(1.0, 3, None, &[("a", 0.5)]);
        let mut want = vec![0x09];
        want.extend_from_slice(&1.0f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 3, 0x2a, 10, 0x0a, 8, 0x0a, 1, b'a', 0x15]);
        want.extend_from_slice(&0.5f32.to_le_bytes());
        assert_eq!(e, want);
    }
}
