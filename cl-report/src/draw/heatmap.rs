//! The accuracy-matrix heatmap: one cell per (row i, experience j), coloured and annotated.

use cl_core::evaluation::AccuracyMatrix;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DESC_SIZE, DrawResult, Figure, LABEL_SIZE, UNIT, cell_of, centres, fmt_value, font, header};

/// The heatmap of an [`AccuracyMatrix`], row 0 at the top.
pub(crate) struct Heatmap<'a> {
    /// The matrix (at least one row and one column).
    pub matrix: &'a AccuracyMatrix,
    /// The title.
    pub title: String,
}

/// Pixels per cell, horizontally and vertically.
const CELL: (u32, u32) = (100, 70);

impl Figure for Heatmap<'_> {
    fn size(&self) -> (u32, u32) {
        let clamp = |n: usize| u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        let (rows, cols) = (clamp(self.matrix.n_rows()), clamp(self.matrix.n_cols()));
        let w = CELL.0.saturating_mul(cols).saturating_add(230);
        let h = CELL.1.saturating_mul(rows).saturating_add(250);
        (w.max(720), h.max(480))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let m = self.matrix;
        let (rows, cols) = (m.n_rows().max(1), m.n_cols().max(1));
        let mut summary = Vec::new();
        if let Some(a) = m.final_average_accuracy() {
            summary.push(format!("final average accuracy {}", fmt_value(a)));
        }
        if let Some(f) = m.forgetting() {
            summary.push(format!("forgetting {}", fmt_value(f)));
        }
        let mut lines = vec!["cell (i, j): accuracy on test experience j after training on experience i".to_string()];
        if !summary.is_empty() {
            lines.push(summary.join(", "));
        }
        let area = header(root, &self.title, &lines)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(15)
            .margin_right(40)
            .x_label_area_size(60)
            .y_label_area_size(130)
            .build_cartesian_2d(
                (0..cols as i32 * UNIT).with_key_points(centres(cols)),
                (0..rows as i32 * UNIT).with_key_points(centres(rows)),
            )?;
        let x_label = |x: &i32| format!("exp {}", cell_of(*x, cols));
        let y_label = |y: &i32| format!("after exp {}", rows - 1 - cell_of(*y, rows));
        chart
            .configure_mesh()
            .disable_mesh()
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_desc("evaluated on test experience j")
            .y_desc("after training on experience i")
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .draw()?;
        let cells: Vec<(usize, usize, Option<f64>)> =
            (0..rows).flat_map(|i| (0..cols).map(move |j| (i, j, m.measured(i, j)))).collect();
        chart.draw_series(cells.iter().map(|&(i, j, v)| {
            let (x, y) = (j as i32 * UNIT, (rows - 1 - i) as i32 * UNIT);
            Rectangle::new([(x, y), (x + UNIT, y + UNIT)], cell_colour(v).filled())
        }))?;
        chart.draw_series(cells.iter().map(|&(i, j, v)| {
            let (x, y) = (j as i32 * UNIT + UNIT / 2, (rows - 1 - i) as i32 * UNIT + UNIT / 2);
            let text_colour = if v.is_some_and(|v| v > 0.55) { &WHITE } else { &BLACK };
            let style = font(DESC_SIZE).color(text_colour).pos(Pos::new(HPos::Center, VPos::Center));
            Text::new(v.map_or("—".to_string(), fmt_value), (x, y), style)
        }))?;
        // A thin frame around every cell keeps equal neighbours apart.
        chart.draw_series(cells.iter().map(|&(i, j, _)| {
            let (x, y) = (j as i32 * UNIT, (rows - 1 - i) as i32 * UNIT);
            Rectangle::new([(x, y), (x + UNIT, y + UNIT)], WHITE.stroke_width(1))
        }))?;
        Ok(())
    }
}

/// White → dark blue for 0 → 1 (the "Blues" colour map); light grey when not measured.
fn cell_colour(v: Option<f64>) -> RGBColor {
    const STOPS: [(u8, u8, u8); 5] = [(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)];
    let Some(v) = v.filter(|v| v.is_finite()) else {
        return RGBColor(225, 225, 225);
    };
    let t = v.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - k as f64;
    let lerp = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::cell_of;

    #[test]
    fn colours_and_cells() {
        assert_eq!(cell_colour(Some(0.0)), RGBColor(247, 251, 255));
        assert_eq!(cell_colour(Some(1.0)), RGBColor(8, 48, 107));
        assert_eq!(cell_colour(Some(2.0)), RGBColor(8, 48, 107));
        assert_eq!(cell_colour(None), cell_colour(Some(f64::NAN)));
        assert_eq!((cell_of(4500, 5), cell_of(500, 5), cell_of(9000, 5), cell_of(-3, 5)), (4, 0, 4, 0));
    }
}
