//! A reader for IDX files, the format of MNIST and Fashion-MNIST.
//!
//! An IDX file is: two zero bytes, an element-type byte (`0x08` = unsigned
//! byte, the only type supported here), a byte giving the number of dimensions
//! `d`, then `d` big-endian `u32` dimension sizes, then the elements in
//! row-major order. Files may be gzip-compressed; compression is detected by
//! the gzip magic bytes `0x1f 0x8b`, never by the file name.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::bufread::GzDecoder;

use crate::data_error::DataError;

/// The IDX element-type byte for unsigned bytes.
pub const IDX_DTYPE_U8: u8 = 0x08;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An n-dimensional array of bytes read from an IDX file.
#[derive(Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimension sizes, outermost first (e.g. `[n, rows, cols]` for images).
    pub dims: Vec<usize>,
    /// The elements in row-major order; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

impl IdxArray {
    /// The number of items along the first dimension (1 for a 0-dimensional array).
    pub fn num_items(&self) -> usize {
        self.dims.first().copied().unwrap_or(1)
    }

    /// The number of bytes of one item: the product of all dimensions but the first.
    pub fn item_len(&self) -> usize {
        self.dims.iter().skip(1).product()
    }
}

impl std::fmt::Debug for IdxArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The data can be tens of megabytes: show its length, not its bytes.
        f.debug_struct("IdxArray").field("dims", &self.dims).field("data_len", &self.data.len()).finish()
    }
}

/// Reads an IDX file of unsigned bytes, raw or gzip-compressed.
///
/// Errors: [`DataError::Io`] if the file cannot be read, [`DataError::Gzip`]
/// for a corrupt gzip stream, and the errors of [`parse_idx`] (carrying `path`).
///
/// Memory is bounded by what the file declares: an uncompressed file's header is read first
/// and its size checked against it before the data is read (exactly the declared size is
/// allocated; for a pipe, whose size is unknown, at most about twice it as the buffer grows);
/// a compressed file is read whole (its size on disk) and decompressed as [`parse_idx`] does.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray, DataError> {
    let path = path.as_ref();
    let io = |e| DataError::io(path, e);
    let path_buf = || Some(path.to_path_buf());
    let mut file = std::fs::File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut head = Vec::with_capacity(MAX_HEADER_LEN);
    (&mut file).take(MAX_HEADER_LEN as u64).read_to_end(&mut head).map_err(io)?;
    if head.starts_with(&GZIP_MAGIC) {
        let mut raw = head;
        file.read_to_end(&mut raw).map_err(io)?;
        return parse_gzip(&raw, Some(path));
    }
    let (dims, header_len, data_len) = parse_header(&head, path_buf)?;
    let in_head = head.len() - header_len;
    // The size on disk, when it is known (a pipe reports 0), refuses a wrong file before its
    // data is read; the read itself is what counts (the file may change meanwhile).
    let on_disk = usize::try_from(file_len.saturating_sub(header_len as u64)).unwrap_or(usize::MAX);
    if in_head > data_len {
        let actual = if file_len > 0 { on_disk.max(in_head) } else { in_head };
        return Err(DataError::TrailingData { path: path_buf(), dims, expected: data_len, actual });
    }
    if file_len > 0 {
        check_data_len(&dims, data_len, on_disk.max(in_head), path_buf)?;
    }
    let mut data = Vec::with_capacity(data_len.min(on_disk.max(in_head)));
    data.extend_from_slice(&head[header_len..]);
    // One byte more than declared, to see trailing data.
    (&mut file).take(((data_len - in_head) as u64).saturating_add(1)).read_to_end(&mut data).map_err(io)?;
    if data.len() > data_len {
        let rest = std::io::copy(&mut file, &mut std::io::sink()).map_err(io)?;
        let actual = data.len().saturating_add(usize::try_from(rest).unwrap_or(usize::MAX));
        return Err(DataError::TrailingData { path: path_buf(), dims, expected: data_len, actual });
    }
    check_data_len(&dims, data_len, data.len(), path_buf)?;
    Ok(IdxArray { dims, data })
}

/// Parses the bytes of an IDX file of unsigned bytes, raw or gzip-compressed.
///
/// Errors: [`DataError::Gzip`], [`DataError::BadMagic`],
/// [`DataError::UnsupportedDtype`], [`DataError::Truncated`] (header or data
/// shorter than declared), [`DataError::TrailingData`] and
/// [`DataError::DimsOverflow`]; their `path` is `None`.
///
/// Memory: at most the declared data size for uncompressed input (checked before it is
/// copied), at most about twice it for gzip input (decompressed into a growing buffer capped
/// at the declared size + 1 byte).
pub fn parse_idx(bytes: &[u8]) -> Result<IdxArray, DataError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        return parse_gzip(bytes, None);
    }
    let (dims, header_len, data_len) = parse_header(bytes, || None)?;
    check_data_len(&dims, data_len, bytes.len() - header_len, || None)?;
    Ok(IdxArray { dims, data: bytes[header_len..].to_vec() })
}

/// The longest IDX header: 4 bytes and 255 dimensions of 4 bytes.
const MAX_HEADER_LEN: usize = 4 + 4 * 255;

/// [`DataError::Truncated`] or [`DataError::TrailingData`] unless `actual == data_len`.
fn check_data_len(
    dims: &[usize],
    data_len: usize,
    actual: usize,
    path: impl Fn() -> Option<PathBuf>,
) -> Result<(), DataError> {
    if actual < data_len {
        return Err(DataError::Truncated { path: path(), what: "data", expected: data_len, actual });
    }
    if actual > data_len {
        return Err(DataError::TrailingData { path: path(), dims: dims.to_vec(), expected: data_len, actual });
    }
    Ok(())
}

/// Validates the header; returns (dims, header length, data length in bytes).
fn parse_header(bytes: &[u8], path: impl Fn() -> Option<PathBuf>) -> Result<(Vec<usize>, usize, usize), DataError> {
    // Check the magic on whatever is there first, so that a short non-IDX input
    // is reported as such rather than as a truncated header.
    if bytes.len() >= 2 && bytes[..2] != [0, 0] || bytes.len() == 1 && bytes[0] != 0 {
        return Err(DataError::BadMagic { path: path(), seen: bytes[..bytes.len().min(4)].to_vec() });
    }
    if bytes.len() < 4 {
        return Err(DataError::Truncated { path: path(), what: "header", expected: 4, actual: bytes.len() });
    }
    let dtype = bytes[2];
    if dtype != IDX_DTYPE_U8 {
        return Err(DataError::UnsupportedDtype { path: path(), dtype });
    }
    let ndims = usize::from(bytes[3]);
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(DataError::Truncated { path: path(), what: "header", expected: header_len, actual: bytes.len() });
    }
    let dims: Vec<usize> =
        bytes[4..header_len].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let data_len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::DimsOverflow { path: path(), dims: dims.clone() })?;
    Ok((dims, header_len, data_len))
}

/// Decompresses and parses a gzip IDX file with memory bounded by what it holds: the header is
/// read first, then at most the declared data size + 1 byte (to detect trailing data, whose
/// length is then counted without keeping it); nothing is allocated from the gzip trailer or the
/// declared size, so a small corrupt file cannot make the reader allocate gigabytes.
fn parse_gzip(raw: &[u8], path: Option<&Path>) -> Result<IdxArray, DataError> {
    let path_buf = || path.map(Path::to_path_buf);
    let gz = |source| DataError::Gzip { path: path_buf(), source };
    let mut reader = GzMembers::new(raw);
    let mut header = Vec::with_capacity(4);
    (&mut reader).take(4).read_to_end(&mut header).map_err(gz)?;
    if header.len() == 4 {
        let ndims = u64::from(header[3]);
        (&mut reader).take(4 * ndims).read_to_end(&mut header).map_err(gz)?;
    }
    let (dims, _, data_len) = parse_header(&header, path_buf)?;
    let mut data = Vec::new();
    (&mut reader).take((data_len as u64).saturating_add(1)).read_to_end(&mut data).map_err(gz)?;
    if data.len() < data_len {
        return Err(DataError::Truncated { path: path_buf(), what: "data", expected: data_len, actual: data.len() });
    }
    if data.len() > data_len {
        let rest = std::io::copy(&mut reader, &mut std::io::sink()).map_err(gz)?;
        let actual = data_len.saturating_add(1).saturating_add(usize::try_from(rest).unwrap_or(usize::MAX));
        return Err(DataError::TrailingData { path: path_buf(), dims, expected: data_len, actual });
    }
    Ok(IdxArray { dims, data })
}

/// The decompressed bytes of the gzip members of `raw`, one after another; zero bytes after the
/// last member (the padding tar and tape tools leave, which gzip(1) accepts) end the stream.
struct GzMembers<'a> {
    current: Option<GzDecoder<&'a [u8]>>,
}

impl<'a> GzMembers<'a> {
    fn new(raw: &'a [u8]) -> Self {
        Self { current: Some(GzDecoder::new(raw)) }
    }
}

impl Read for GzMembers<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(decoder) = self.current.as_mut() else { return Ok(0) };
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The member ended: what follows is another member, zero padding, or garbage.
            let rest = self.current.take().map(GzDecoder::into_inner).unwrap_or_default();
            if rest.iter().all(|&b| b == 0) {
                return Ok(0);
            }
            if !rest.starts_with(&GZIP_MAGIC) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} bytes after the gzip stream that are neither a gzip member nor zero padding",
                        rest.len()
                    ),
                ));
            }
            self.current = Some(GzDecoder::new(rest));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fashion-mnist-mini").join(name)
    }

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, IDX_DTYPE_U8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn reads_fixture_labels_and_images() {
        let labels = read_idx(fixture("train-labels-idx1-ubyte.gz")).unwrap();
        assert_eq!(labels.dims, vec![2000]);
        // The values Python's gzip/struct read from the same file (make_fixture.py).
        assert_eq!(&labels.data[..10], &[9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
        let test_labels = read_idx(fixture("t10k-labels-idx1-ubyte.gz")).unwrap();
        assert_eq!(test_labels.dims, vec![500]);
        assert_eq!(&test_labels.data[..10], &[9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);

        let images = read_idx(fixture("train-images-idx3-ubyte.gz")).unwrap();
        assert_eq!(images.dims, vec![2000, 28, 28]);
        assert_eq!(images.data.len(), 2000 * 28 * 28);
        assert_eq!(images.num_items(), 2000);
        assert_eq!(images.item_len(), 784);
        // Python: sum(gzip.open(...).read()[16:16 + 784]) == 76247.
        assert_eq!(images.data[..784].iter().map(|&p| u32::from(p)).sum::<u32>(), 76247);
    }

    #[test]
    fn raw_and_gzip_parse_the_same() {
        let raw = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let a = parse_idx(&raw).unwrap();
        let b = parse_idx(&gzip(&raw)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn detects_gzip_by_magic_not_name() {
        let dir = tempfile::tempdir().unwrap();
        // Gzip content under a raw name, raw content under a .gz name.
        let p1 = dir.path().join("labels-idx1-ubyte");
        let p2 = dir.path().join("labels-idx1-ubyte.gz");
        let raw = idx_bytes(&[3], &[7, 8, 9]);
        std::fs::write(&p1, gzip(&raw)).unwrap();
        std::fs::write(&p2, &raw).unwrap();
        assert_eq!(read_idx(&p1).unwrap().data, vec![7, 8, 9]);
        assert_eq!(read_idx(&p2).unwrap().data, vec![7, 8, 9]);
    }

    #[test]
    fn bad_magic() {
        let mut raw = idx_bytes(&[3], &[1, 2, 3]);
        raw[0] = 0x50;
        match parse_idx(&raw) {
            Err(DataError::BadMagic { seen, path: None }) => assert_eq!(seen, vec![0x50, 0, 8, 1]),
            other => panic!("expected BadMagic, got {other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.txt");
        std::fs::write(&p, b"hello world").unwrap();
        let err = read_idx(&p).unwrap_err();
        assert!(matches!(&err, DataError::BadMagic { path: Some(q), .. } if q == &p), "{err:?}");
        assert!(err.to_string().contains("x.txt"), "{err}");
    }

    #[test]
    fn unsupported_dtype_is_named() {
        let mut raw = idx_bytes(&[1], &[0, 0, 0, 0]);
        raw[2] = 0x0d;
        let err = parse_idx(&raw).unwrap_err();
        assert!(matches!(err, DataError::UnsupportedDtype { dtype: 0x0d, .. }), "{err:?}");
        assert!(err.to_string().contains("f32"), "{err}");
    }

    #[test]
    fn truncated_header_and_data() {
        // Header cut inside the dimensions.
        let raw = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        match parse_idx(&raw[..9]) {
            Err(DataError::Truncated { what: "header", expected: 12, actual: 9, .. }) => {}
            other => panic!("expected truncated header, got {other:?}"),
        }
        match parse_idx(&[0, 0]) {
            Err(DataError::Truncated { what: "header", expected: 4, actual: 2, .. }) => {}
            other => panic!("expected truncated header, got {other:?}"),
        }
        match parse_idx(&[]) {
            Err(DataError::Truncated { what: "header", .. }) => {}
            other => panic!("expected truncated header, got {other:?}"),
        }
        // Data shorter than the dims say, raw and inside a valid gzip stream.
        for bytes in [raw[..15].to_vec(), gzip(&raw[..15])] {
            match parse_idx(&bytes) {
                Err(DataError::Truncated { what: "data", expected: 6, actual: 3, .. }) => {}
                other => panic!("expected truncated data, got {other:?}"),
            }
        }
        // A truncated file on disk names its path.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("short-idx3-ubyte");
        std::fs::write(&p, &raw[..15]).unwrap();
        let err = read_idx(&p).unwrap_err();
        assert!(matches!(&err, DataError::Truncated { path: Some(q), .. } if q == &p), "{err:?}");
    }

    #[test]
    fn trailing_data() {
        let raw = idx_bytes(&[2], &[1, 2, 3]);
        match parse_idx(&raw) {
            Err(DataError::TrailingData { expected: 2, actual: 3, .. }) => {}
            other => panic!("expected TrailingData, got {other:?}"),
        }
    }

    #[test]
    fn dims_overflow() {
        let raw = idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(matches!(parse_idx(&raw), Err(DataError::DimsOverflow { .. })));
    }

    #[test]
    fn corrupt_and_cut_gzip() {
        let gz = gzip(&idx_bytes(&[1000], &[5; 1000]));
        // Valid magic, garbage after it.
        let mut bad = gz.clone();
        for b in bad.iter_mut().skip(10) {
            *b = 0xff;
        }
        assert!(matches!(parse_idx(&bad), Err(DataError::Gzip { path: None, .. })));
        // Stream cut in the middle.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cut.gz");
        std::fs::write(&p, &gz[..gz.len() / 2]).unwrap();
        let err = read_idx(&p).unwrap_err();
        assert!(matches!(&err, DataError::Gzip { path: Some(q), .. } if q == &p), "{err:?}");
    }

    #[test]
    fn gzip_memory_is_bounded_by_what_the_file_holds() {
        // A header declaring 4 GiB of data in a tiny file: a truncation error, no 4 GiB allocation.
        let gz = gzip(&idx_bytes(&[65536, 65536], &[1, 2, 3]));
        assert!(gz.len() < 100);
        match parse_idx(&gz) {
            Err(DataError::Truncated { expected, actual: 3, .. }) => assert_eq!(expected, 1 << 32),
            other => panic!("expected Truncated, got {other:?}"),
        }
        // A trailer claiming 4 GiB: never used for an allocation; the mismatch is a gzip error.
        let mut lying = gzip(&idx_bytes(&[3], &[1, 2, 3]));
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(parse_idx(&lying), Err(DataError::Gzip { .. })), "{:?}", parse_idx(&lying));
        // Trailing data after the declared size is counted, not kept.
        let extra = gzip(&idx_bytes(&[2], &[1, 2, 3, 4, 5]));
        match parse_idx(&extra) {
            Err(DataError::TrailingData { expected: 2, actual: 5, .. }) => {}
            other => panic!("expected TrailingData, got {other:?}"),
        }
    }

    #[test]
    fn zero_padding_after_a_gzip_member_is_accepted_and_garbage_is_not() {
        let bytes = idx_bytes(&[4], &[9, 8, 7, 6]);
        let mut padded = gzip(&bytes);
        padded.extend_from_slice(&[0; 512]);
        assert_eq!(parse_idx(&padded).unwrap().data, vec![9, 8, 7, 6]);
        // Two members, as `cat a.gz b.gz` makes.
        let mut two = gzip(&bytes[..6]);
        two.extend_from_slice(&gzip(&bytes[6..]));
        assert_eq!(parse_idx(&two).unwrap().data, vec![9, 8, 7, 6]);
        let mut garbage = gzip(&bytes);
        garbage.extend_from_slice(b"not gzip");
        assert!(matches!(parse_idx(&garbage), Err(DataError::Gzip { .. })));
    }

    #[test]
    fn missing_file_is_io_error_with_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope");
        let err = read_idx(&p).unwrap_err();
        assert!(matches!(&err, DataError::Io { path, .. } if path == &p), "{err:?}");
    }
}
