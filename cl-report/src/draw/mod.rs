//! Rendering: a [`Figure`] is drawn once on a bitmap (encoded as PNG) and once as SVG.

pub(crate) mod bars;
pub(crate) mod curves;
pub(crate) mod heatmap;
mod text;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{ReportError, Result};
use crate::font::{FAMILY, ensure_registered};
use crate::png::encode_rgb;

/// The error of drawing on backend `DB`.
pub(crate) type DrawResult<DB> = std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A picture that can be drawn on any plotters backend.
pub(crate) trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the whole picture on `root` (already white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// The two files of one rendered picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pictures {
    /// The PNG file.
    pub png: PathBuf,
    /// The SVG file.
    pub svg: PathBuf,
}

/// The largest picture drawn, in pixels (e.g. 8000 × 5000).
const MAX_PIXELS: u64 = 40_000_000;

/// Renders `figure` to `<stem>.png` and `<stem>.svg`, creating the directory if needed.
pub(crate) fn render<F: Figure>(figure: &F, stem: &Path) -> Result<Pictures> {
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Write { path: dir.to_path_buf(), source })?;
    }
    let (w, h) = figure.size();
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        let message = format!("the picture would be {w} × {h} pixels, over {MAX_PIXELS}");
        return Err(ReportError::TooLarge { path: png, message });
    }
    ensure_registered().map_err(|message| ReportError::Render { path: png.clone(), message })?;

    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root = text::GlyphText(BitMapBackend::with_buffer(&mut rgb, (w, h))).into_drawing_area();
        draw_on(figure, &root).map_err(|message| ReportError::Render { path: png.clone(), message })?;
    }
    let bytes = encode_rgb(w, h, &rgb).map_err(|message| ReportError::Render { path: png.clone(), message })?;
    std::fs::write(&png, bytes).map_err(|source| ReportError::Write { path: png.clone(), source })?;

    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
        draw_on(figure, &root).map_err(|message| ReportError::Render { path: svg.clone(), message })?;
    }
    std::fs::write(&svg, text).map_err(|source| ReportError::Write { path: svg.clone(), source })?;
    Ok(Pictures { png, svg })
}

/// Fills `root` white, draws `figure` and flushes.
fn draw_on<F: Figure, DB: DrawingBackend>(
    figure: &F,
    root: &DrawingArea<DB, Shift>,
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    figure.draw(root).map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Title font size.
pub(crate) const TITLE_SIZE: u32 = 26;
/// Subtitle, panel caption and axis description font size.
pub(crate) const DESC_SIZE: u32 = 18;
/// Tick label and annotation font size.
pub(crate) const LABEL_SIZE: u32 = 15;

/// A text style of the bundled font, `size` pixels.
pub(crate) fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size))
}

/// Draws a centred title and subtitle lines (grey) at the top of `root`; returns the rest.
pub(crate) fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &[String],
) -> std::result::Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (w, _) = root.dim_in_pixel();
    let centre = Pos::new(HPos::Center, VPos::Top);
    let (top, rest) = root.split_vertically(56 + 26 * subtitle.len() as u32);
    top.draw_text(title, &font(TITLE_SIZE).pos(centre), (w as i32 / 2, 12))?;
    for (k, line) in subtitle.iter().enumerate() {
        let style = font(DESC_SIZE - 1).color(&RGBColor(80, 80, 80)).pos(centre);
        top.draw_text(line, &style, (w as i32 / 2, 50 + 26 * k as i32))?;
    }
    Ok(rest)
}

/// A colour from a palette that stays distinct for the first ten entries (tableau 10).
pub(crate) fn series_colour(i: usize) -> RGBColor {
    const TAB10: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = TAB10[i % TAB10.len()];
    RGBColor(r, g, b)
}

/// Units per cell (or strategy group) on a discrete axis: integer coordinates, because plotters
/// only accepts custom key points (centred labels) on an integer axis with a custom formatter.
pub(crate) const UNIT: i32 = 1000;

/// The centres of `n` cells of [`UNIT`] width, where the labels go.
pub(crate) fn centres(n: usize) -> Vec<i32> {
    (0..n as i32).map(|k| k * UNIT + UNIT / 2).collect()
}

/// The cell at coordinate `v` (clamped to `0..n`).
pub(crate) fn cell_of(v: i32, n: usize) -> usize {
    ((v.max(0) / UNIT) as usize).min(n.saturating_sub(1))
}

/// A value for labels: 3 decimals, or `—` for NaN.
pub(crate) fn fmt_value(v: f64) -> String {
    if v.is_finite() { format!("{v:.3}") } else { "—".into() }
}

/// A legend in its own area: a heading, then one line sample (dashed if asked) and label per
/// entry, top to bottom.
pub(crate) fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: &str,
    entries: &[(String, RGBColor, bool)],
) -> DrawResult<DB> {
    let left = Pos::new(HPos::Left, VPos::Center);
    let (x, mut y) = (12, 40);
    area.draw_text(heading, &font(DESC_SIZE).pos(left), (x, y))?;
    for (label, colour, dashed) in entries {
        y += 30;
        if *dashed {
            for k in 0..3 {
                area.draw(&PathElement::new(vec![(x + k * 12, y), (x + k * 12 + 8, y)], colour.stroke_width(3)))?;
            }
        } else {
            area.draw(&PathElement::new(vec![(x, y), (x + 32, y)], colour.stroke_width(3)))?;
            area.draw(&Circle::new((x + 16, y), 4, colour.filled()))?;
        }
        area.draw_text(label, &font(DESC_SIZE).pos(left), (x + 44, y))?;
    }
    Ok(())
}
