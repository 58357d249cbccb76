//! The strategies comparison: per benchmark, final average accuracy and forgetting side by side
//! for each strategy.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    DESC_SIZE, DrawResult, Figure, LABEL_SIZE, TITLE_SIZE, UNIT, cell_of, centres, font, header, series_colour,
};
use crate::strategies::{StrategySummary, display_names};

/// Grouped bars, one panel per benchmark.
pub(crate) struct Bars<'a> {
    /// `(benchmark, its strategies)`, at least one group, none empty.
    pub groups: Vec<(&'a str, Vec<&'a StrategySummary>)>,
    /// The title.
    pub title: String,
}

/// Least pixels per strategy along x.
const GROUP_WIDTH: u32 = 120;
/// Height of one benchmark's panel.
const PANEL_HEIGHT: u32 = 400;

/// The two measures drawn per strategy: label and accessor.
type Measure = (&'static str, fn(&StrategySummary) -> Option<f64>);
/// Final average accuracy, then forgetting.
const MEASURES: [Measure; 2] = [
    ("final average accuracy (higher is better)", |r| r.final_average_accuracy),
    ("forgetting (lower is better)", |r| r.forgetting),
];

impl Figure for Bars<'_> {
    fn size(&self) -> (u32, u32) {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let widest = clamp(self.groups.iter().map(|(_, rows)| rows.len()).max().unwrap_or(1));
        let longest = self.groups.iter().flat_map(|(_, rows)| display_names(rows)).map(|n| n.chars().count()).max();
        let group = GROUP_WIDTH.max(clamp(longest.unwrap_or(0)).saturating_mul(9).saturating_add(24));
        let w = group.saturating_mul(widest).saturating_add(200);
        let h = PANEL_HEIGHT.saturating_mul(clamp(self.groups.len().max(1))).saturating_add(120);
        (w.max(900), h)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let area = header(root, &self.title, &[])?;
        let (legend_row, panels_area) = area.split_vertically(50);
        draw_legend(&legend_row)?;
        let panels = panels_area.split_evenly((self.groups.len().max(1), 1));
        let values = || {
            self.groups
                .iter()
                .flat_map(|(_, rows)| rows.iter())
                .flat_map(|r| MEASURES.iter().filter_map(|(_, get)| get(r)))
                .filter(|v| v.is_finite())
        };
        let lowest = values().fold(0.0f64, f64::min);
        let highest = values().fold(1.0f64, f64::max);
        let y_range = (lowest - if lowest < 0.0 { 0.1 } else { 0.0 })..highest + 0.12;
        for ((benchmark, rows), panel) in self.groups.iter().zip(&panels) {
            draw_panel(panel, benchmark, rows, y_range.clone())?;
        }
        Ok(())
    }
}

/// The legend row: one coloured square and label per measure, centred.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    let (w, _) = area.dim_in_pixel();
    let left = Pos::new(HPos::Left, VPos::Center);
    let mut x = w as i32 / 2 - 330;
    for (k, (label, _)) in MEASURES.iter().enumerate() {
        area.draw(&Rectangle::new([(x, 15), (x + 18, 33)], series_colour(k).filled()))?;
        area.draw_text(label, &font(DESC_SIZE).pos(left), (x + 26, 24))?;
        x += 380;
    }
    Ok(())
}

/// One benchmark: two bars per strategy with their values above; `n/a` where a measure is not
/// defined (e.g. JointTraining's forgetting), `run failed` where the run failed (the error is
/// in the JSON and the markdown table).
fn draw_panel<DB: DrawingBackend>(
    panel: &DrawingArea<DB, Shift>,
    benchmark: &str,
    rows: &[&StrategySummary],
    y_range: std::ops::Range<f64>,
) -> DrawResult<DB> {
    let n = rows.len().max(1);
    let mut chart = ChartBuilder::on(panel)
        .caption(benchmark, font(TITLE_SIZE - 4))
        .margin(15)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(75)
        .build_cartesian_2d((0..n as i32 * UNIT).with_key_points(centres(n)), y_range.clone())?;
    let names = display_names(rows);
    let name = |x: &i32| names.get(cell_of(*x, n)).cloned().unwrap_or_default();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&name)
        .y_label_formatter(&|y| format!("{y:.1}"))
        .y_desc("accuracy / forgetting")
        .label_style(font(LABEL_SIZE))
        .axis_desc_style(font(DESC_SIZE))
        .bold_line_style(RGBColor(220, 220, 220))
        .light_line_style(TRANSPARENT)
        .draw()?;
    if y_range.start < 0.0 {
        chart.draw_series(LineSeries::new([(0, 0.0), (n as i32 * UNIT, 0.0)], BLACK.stroke_width(1)))?;
    }
    let above = Pos::new(HPos::Center, VPos::Bottom);
    for (i, r) in rows.iter().enumerate() {
        let x = i as i32 * UNIT;
        if r.error.is_some() {
            let style = font(LABEL_SIZE).color(&RED).pos(above);
            chart.draw_series([Text::new("run failed", (x + UNIT / 2, 0.02), style)])?;
            continue;
        }
        for (k, (_, get)) in MEASURES.iter().enumerate() {
            let x0 = x + UNIT / 10 + k as i32 * UNIT * 2 / 5;
            let x1 = x0 + UNIT * 2 / 5;
            let value = get(r).filter(|v| v.is_finite());
            if let Some(v) = value {
                chart.draw_series([Rectangle::new([(x0, 0.0), (x1, v)], series_colour(k).filled())])?;
            }
            let label = value.map_or("n/a".to_string(), |v| format!("{v:.2}"));
            let style = font(LABEL_SIZE).pos(above);
            chart.draw_series([Text::new(label, ((x0 + x1) / 2, value.unwrap_or(0.0).max(0.0) + 0.01), style)])?;
        }
    }
    Ok(())
}
