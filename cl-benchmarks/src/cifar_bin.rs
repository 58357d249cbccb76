//! A reader for the CIFAR **binary** format (the files of `cifar-10-binary.tar.gz` and
//! `cifar-100-binary.tar.gz`; the Python "pickle" and MATLAB versions are not read).
//!
//! A file is a sequence of fixed-size records, each one or two label bytes followed by an image
//! of [`IMAGE_LEN`] bytes in channel-major order (`[3, 32, 32]`: 1024 red, 1024 green, 1024 blue
//! bytes, rows top to bottom):
//!
//! | dataset   | record                                             |
//! |-----------|----------------------------------------------------|
//! | CIFAR-10  | label, 3072 pixels (3073 bytes)                    |
//! | CIFAR-100 | coarse label, fine label, 3072 pixels (3074 bytes) |
//!
//! The layout is described by a [`RecordFormat`]; [`crate::cifar_files`] knows which files
//! of which dataset use which format.

use std::path::Path;

use crate::data_error::DataError;

/// The shape of a CIFAR image: `[channels, height, width]`.
pub const IMAGE_SHAPE: [usize; 3] = [3, 32, 32];
/// The number of bytes (values) of a CIFAR image: 3 × 32 × 32.
pub const IMAGE_LEN: usize = 3 * 32 * 32;

/// The record layout of a CIFAR binary file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFormat {
    /// The dataset, for messages (`CIFAR-10`).
    pub dataset: &'static str,
    /// The number of (fine) classes: labels are below it.
    pub n_classes: usize,
    /// The number of coarse classes when each record starts with a coarse label (CIFAR-100's
    /// 20 superclasses), `None` when it holds a single label.
    pub n_coarse_classes: Option<usize>,
}

impl RecordFormat {
    /// The number of label bytes before the pixels: 1, or 2 with a coarse label.
    pub fn label_bytes(&self) -> usize {
        if self.n_coarse_classes.is_some() { 2 } else { 1 }
    }

    /// The size of one record in bytes: the label byte(s) and [`IMAGE_LEN`] pixels.
    pub fn record_len(&self) -> usize {
        self.label_bytes() + IMAGE_LEN
    }
}

/// The decoded records of one or more files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Records {
    /// One (fine) label per record.
    pub labels: Vec<u8>,
    /// One coarse label per record, when the format has them.
    pub coarse_labels: Option<Vec<u8>>,
    /// The images, [`IMAGE_LEN`] bytes each, one after the other.
    pub images: Vec<u8>,
}

impl Records {
    /// Concatenates the records of several files, in order.
    pub fn concat(format: &RecordFormat, parts: Vec<Records>) -> Records {
        let n: usize = parts.iter().map(|p| p.labels.len()).sum();
        let mut out = Records {
            labels: Vec::with_capacity(n),
            coarse_labels: format.n_coarse_classes.map(|_| Vec::with_capacity(n)),
            images: Vec::with_capacity(n * IMAGE_LEN),
        };
        for p in parts {
            out.labels.extend_from_slice(&p.labels);
            if let (Some(all), Some(c)) = (&mut out.coarse_labels, &p.coarse_labels) {
                all.extend_from_slice(c);
            }
            out.images.extend_from_slice(&p.images);
        }
        out
    }
}

/// Decodes the records of one file's bytes (`path` is for messages), checking the size and
/// the labels.
///
/// Errors: [`DataError::RecordSize`] if `bytes` is empty or not a multiple of the record size;
/// [`DataError::LabelOutOfRange`] for a label not below the number of classes.
pub fn parse_records(format: &RecordFormat, bytes: &[u8], path: &Path) -> Result<Records, DataError> {
    let record_len = format.record_len();
    if bytes.is_empty() || !bytes.len().is_multiple_of(record_len) {
        return Err(DataError::RecordSize {
            path: path.to_path_buf(),
            dataset: format.dataset.to_string(),
            record_len,
            actual: bytes.len(),
        });
    }
    let n = bytes.len() / record_len;
    let mut labels = Vec::with_capacity(n);
    let mut coarse = format.n_coarse_classes.map(|_| Vec::with_capacity(n));
    let mut images = Vec::with_capacity(n * IMAGE_LEN);
    let bad = |which, index, label, n_classes| DataError::LabelOutOfRange {
        path: path.to_path_buf(),
        which,
        index,
        label,
        n_classes,
    };
    for (index, record) in bytes.chunks_exact(record_len).enumerate() {
        let (head, pixels) = record.split_at(format.label_bytes());
        let label = match (&mut coarse, format.n_coarse_classes) {
            (Some(coarse), Some(n_coarse)) => {
                if usize::from(head[0]) >= n_coarse {
                    return Err(bad("coarse label", index, head[0], n_coarse));
                }
                coarse.push(head[0]);
                head[1]
            }
            _ => head[0],
        };
        if usize::from(label) >= format.n_classes {
            let which = if format.n_coarse_classes.is_some() { "fine label" } else { "label" };
            return Err(bad(which, index, label, format.n_classes));
        }
        labels.push(label);
        images.extend_from_slice(pixels);
    }
    Ok(Records { labels, coarse_labels: coarse, images })
}

/// Reads and decodes one file; the errors of [`parse_records`] and [`DataError::Io`].
///
/// The size is checked on the file's metadata before it is read, so a file of the wrong size
/// (such as another dataset's multi-gigabyte file) is refused without reading it.
pub fn read_records(format: &RecordFormat, path: &Path) -> Result<Records, DataError> {
    let size = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?.len();
    let record_len = format.record_len() as u64;
    if size == 0 || !size.is_multiple_of(record_len) {
        return Err(DataError::RecordSize {
            path: path.to_path_buf(),
            dataset: format.dataset.to_string(),
            record_len: format.record_len(),
            actual: usize::try_from(size).unwrap_or(usize::MAX),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_records(format, &bytes, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const C10: RecordFormat = RecordFormat { dataset: "CIFAR-10", n_classes: 10, n_coarse_classes: None };
    const C100: RecordFormat = RecordFormat { dataset: "CIFAR-100", n_classes: 100, n_coarse_classes: Some(20) };

    fn record(labels: &[u8], pixel: u8) -> Vec<u8> {
        let mut r = labels.to_vec();
        r.extend(std::iter::repeat_n(pixel, IMAGE_LEN));
        r
    }

    #[test]
    fn parses_and_concatenates() {
        let p = Path::new("x.bin");
        let bytes = [record(&[3], 1), record(&[9], 2)].concat();
        let a = parse_records(&C10, &bytes, p).unwrap();
        assert_eq!((a.labels.clone(), a.coarse_labels.clone(), a.images.len()), (vec![3, 9], None, 2 * IMAGE_LEN));
        let b = parse_records(&C10, &record(&[0], 7), p).unwrap();
        let all = Records::concat(&C10, vec![a, b]);
        assert_eq!(all.labels, vec![3, 9, 0]);
        assert_eq!(all.images[2 * IMAGE_LEN], 7);
        let c = parse_records(&C100, &[record(&[19, 99], 0), record(&[0, 1], 0)].concat(), p).unwrap();
        assert_eq!((c.labels, c.coarse_labels), (vec![99, 1], Some(vec![19, 0])));
        assert_eq!((C10.record_len(), C100.record_len()), (3073, 3074));
    }
}
