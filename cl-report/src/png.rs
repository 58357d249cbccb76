//! A minimal PNG writer (8-bit RGB, no interlace) over `flate2`, so that pictures need neither
//! the `image` crate nor plotters' `image_encoder`.

use std::io::Write;

use flate2::Crc;
use flate2::write::ZlibEncoder;

/// The 8-byte PNG signature.
pub(crate) const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Encodes `rgb` (`width × height` pixels, 3 bytes each, row by row) as a PNG file.
///
/// # Errors
/// If `rgb` does not hold `width × height × 3` bytes or compression fails.
pub(crate) fn encode_rgb(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, String> {
    let row = width as usize * 3;
    if rgb.len() != row * height as usize || width == 0 || height == 0 {
        return Err(format!("a {width}×{height} RGB image needs {} bytes, got {}", row * height as usize, rgb.len()));
    }
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // bit depth 8, colour type RGB, deflate, filter 0, no interlace
    let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    for line in rgb.chunks_exact(row) {
        z.write_all(&[0]).and_then(|_| z.write_all(line)).map_err(|e| e.to_string())?; // filter type None
    }
    let idat = z.finish().map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(idat.len() + 64);
    out.extend_from_slice(&SIGNATURE);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

/// Appends one chunk: length, type, data, CRC-32 of type and data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_back() {
        let (w, h) = (3u32, 2u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 13) as u8).collect();
        let bytes = encode_rgb(w, h, &rgb).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height, info.color_type), (w, h, png::ColorType::Rgb));
        assert_eq!(&buf[..info.buffer_size()], &rgb[..]);
        assert!(encode_rgb(2, 2, &[0; 5]).is_err());
        assert!(encode_rgb(0, 0, &[]).is_err());
    }
}
