//! The bundled font (DejaVu Sans, Bitstream Vera licence: `assets/DejaVuSans-LICENSE.txt`),
//! registered with plotters' `ab_glyph` text renderer so that no system font library is needed.

use std::sync::OnceLock;

use plotters::style::FontStyle;

/// The font family every picture uses; DejaVu Sans is registered under it.
pub(crate) const FAMILY: &str = "sans-serif";

/// DejaVu Sans Book.
pub(crate) static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the font once; `Err` (a message) if plotters rejects it.
pub(crate) fn ensure_registered() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS)
                .map_err(|_| "the bundled DejaVu Sans font could not be loaded".to_string())
        })
        .clone()
}
