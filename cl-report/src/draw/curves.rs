//! Accuracy curves: accuracy on each test experience against training iterations.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{DESC_SIZE, DrawResult, Figure, LABEL_SIZE, font, header, legend, series_colour};
use crate::curves::AccuracyCurves;

/// The curves of an [`AccuracyCurves`], one colour per experience, the stream dashed black.
pub(crate) struct Curves<'a> {
    /// The curves (at least one point).
    pub curves: &'a AccuracyCurves,
    /// The title.
    pub title: String,
}

impl Figure for Curves<'_> {
    fn size(&self) -> (u32, u32) {
        (1100, 640)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let area = header(
            root,
            &self.title,
            &["top-1 accuracy on each test experience at each evaluation, against the training iterations done"
                .to_string()],
        )?;
        let (w, _) = area.dim_in_pixel();
        let (plot, side) = area.split_horizontally(w.saturating_sub(200));
        let x_max = (self.curves.max_x().max(1) as f64) * 1.03;
        let mut chart = ChartBuilder::on(&plot)
            .margin(15)
            .x_label_area_size(55)
            .y_label_area_size(75)
            .build_cartesian_2d(0f64..x_max, y_range(self.curves))?;
        chart
            .configure_mesh()
            .x_desc("training iterations")
            .y_desc("top-1 accuracy")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .label_style(font(LABEL_SIZE))
            .axis_desc_style(font(DESC_SIZE))
            .bold_line_style(RGBColor(220, 220, 220))
            .light_line_style(TRANSPARENT)
            .draw()?;
        let mut entries = Vec::new();
        for (k, (experience, points)) in self.curves.experiences().iter().enumerate() {
            let colour = series_colour(k);
            let points: Vec<(f64, f64)> =
                points.iter().filter(|(_, v)| v.is_finite()).map(|&(x, v)| (x as f64, v)).collect();
            chart.draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))?;
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
            entries.push((format!("exp {experience}"), colour, false));
        }
        let stream: Vec<(f64, f64)> =
            self.curves.stream().iter().filter(|(_, v)| v.is_finite()).map(|&(x, v)| (x as f64, v)).collect();
        if !stream.is_empty() {
            chart.draw_series(DashedLineSeries::new(stream.iter().copied(), 8, 5, BLACK.stroke_width(2)))?;
            chart.draw_series(stream.iter().map(|&p| Cross::new(p, 5, BLACK.stroke_width(2))))?;
            entries.push(("whole stream".to_string(), BLACK, true));
        }
        legend(&side, "test experience", &entries)
    }
}

/// 0 to 1.02, widened to hold any value outside `[0, 1]`.
fn y_range(curves: &AccuracyCurves) -> std::ops::Range<f64> {
    let values = curves.experiences().iter().flat_map(|(_, p)| p.iter()).chain(curves.stream()).map(|(_, v)| *v);
    let (low, high) = values.filter(|v| v.is_finite()).fold((0.0f64, 1.0f64), |(l, h), v| (l.min(v), h.max(v)));
    low..high + 0.02
}
