//! One SVG per case: rates over time (capacity, each flow's target and delivered rate) and
//! queuing delay over time, hand-written (no plotting dependency).

use std::fmt::Write as _;

use crate::svg::{axis, tick_label};

/// Colours of flows 1, 2, 3, … (repeating).
const COLOURS: [&str; 5] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
const WIDTH: f64 = 960.0;
const PANEL_HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 60.0;
const GAP: f64 = 60.0;

/// One flow's series, sampled at the same instants as [`PlotData::times_s`].
pub struct FlowSeries {
    /// The flow's label.
    pub label: String,
    /// Controller target, Mbit/s.
    pub target_mbps: Vec<f64>,
    /// Delivered rate (smoothed), Mbit/s; `None` before the flow starts.
    pub delivered_mbps: Vec<Option<f64>>,
    /// Queuing delay of its packets in each sample interval (mean), ms; `None` without
    /// deliveries.
    pub queue_ms: Vec<Option<f64>>,
}

/// What one plot shows.
pub struct PlotData {
    /// The title.
    pub title: String,
    /// Sample instants, seconds.
    pub times_s: Vec<f64>,
    /// Bottleneck capacity at each instant, Mbit/s.
    pub capacity_mbps: Vec<f64>,
    /// The flows.
    pub flows: Vec<FlowSeries>,
}

struct Panel {
    top: f64,
    x_max: f64,
    y_max: f64,
}

impl Panel {
    fn x(&self, t: f64) -> f64 {
        LEFT + t / self.x_max * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        self.top + PANEL_HEIGHT - v.clamp(0.0, self.y_max) / self.y_max * PANEL_HEIGHT
    }

    fn frame(&self, svg: &mut String, label: &str, y_step: f64, x_step: f64) {
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{}" width="{}" height="{PANEL_HEIGHT}" fill="none" stroke="#999"/>"##,
            self.top,
            WIDTH - LEFT - RIGHT
        );
        let mut v = 0.0;
        while v <= self.y_max + 1e-9 {
            let y = self.y(v);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 5.0,
                y + 4.0,
                tick_label(v)
            );
            v += y_step;
        }
        let mut t = 0.0;
        while t <= self.x_max + 1e-9 {
            let x = self.x(t);
            let _ = writeln!(
                svg,
                r##"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
                self.top + PANEL_HEIGHT + 15.0,
                tick_label(t)
            );
            t += x_step;
        }
        let _ = writeln!(
            svg,
            r##"<text x="15" y="{:.1}" font-size="12" transform="rotate(-90 15 {:.1})" text-anchor="middle">{label}</text>"##,
            self.top + PANEL_HEIGHT / 2.0,
            self.top + PANEL_HEIGHT / 2.0
        );
    }

    /// A polyline through the points with a value; gaps break it.
    fn line(&self, svg: &mut String, times: &[f64], values: &[Option<f64>], style: &str) {
        let mut points = String::new();
        let flush = |points: &mut String, svg: &mut String| {
            if !points.is_empty() {
                let _ = writeln!(svg, r#"<polyline fill="none" {style} points="{points}"/>"#);
                points.clear();
            }
        };
        for (t, v) in times.iter().zip(values) {
            match v {
                Some(v) => {
                    let _ = write!(points, "{:.1},{:.1} ", self.x(*t), self.y(*v));
                }
                None => flush(&mut points, svg),
            }
        }
        flush(&mut points, svg);
    }
}

/// The SVG document.
pub fn svg(data: &PlotData) -> String {
    let x_max = data.times_s.last().copied().unwrap_or(1.0).max(1.0);
    let (x_top, x_step) = axis(x_max);
    let rate_max = data
        .capacity_mbps
        .iter()
        .chain(data.flows.iter().flat_map(|f| f.target_mbps.iter()))
        .chain(
            data.flows
                .iter()
                .flat_map(|f| f.delivered_mbps.iter().flatten()),
        )
        .fold(0.0f64, |a, &b| a.max(b));
    let (rate_top, rate_step) = axis(rate_max * 1.05);
    let delay_max = data
        .flows
        .iter()
        .flat_map(|f| f.queue_ms.iter().flatten())
        .fold(10.0f64, |a, &b| a.max(b));
    let (delay_top, delay_step) = axis(delay_max);
    let height = TOP + 2.0 * PANEL_HEIGHT + GAP + 50.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="20" font-size="14">{}</text>"#,
        escape(&data.title)
    );
    let rates = Panel {
        top: TOP,
        x_max: x_top,
        y_max: rate_top,
    };
    rates.frame(&mut svg, "Mbit/s", rate_step, x_step);
    let capacity: Vec<Option<f64>> = data.capacity_mbps.iter().map(|&c| Some(c)).collect();
    rates.line(
        &mut svg,
        &data.times_s,
        &capacity,
        r#"stroke="black" stroke-width="2""#,
    );
    for (i, flow) in data.flows.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let target: Vec<Option<f64>> = flow
            .target_mbps
            .iter()
            .map(|&v| (v > 0.0).then_some(v))
            .collect();
        rates.line(
            &mut svg,
            &data.times_s,
            &target,
            &format!(r#"stroke="{colour}" stroke-dasharray="5,3" stroke-width="1""#),
        );
        rates.line(
            &mut svg,
            &data.times_s,
            &flow.delivered_mbps,
            &format!(r#"stroke="{colour}" stroke-width="1.5""#),
        );
    }
    let delays = Panel {
        top: TOP + PANEL_HEIGHT + GAP,
        x_max: x_top,
        y_max: delay_top,
    };
    delays.frame(&mut svg, "queuing delay, ms", delay_step, x_step);
    for (i, flow) in data.flows.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        delays.line(
            &mut svg,
            &data.times_s,
            &flow.queue_ms,
            &format!(r#"stroke="{colour}" stroke-width="1""#),
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{:.1}" font-size="12" text-anchor="middle">time, s</text>"#,
        WIDTH / 2.0,
        height - 8.0
    );
    // Legend.
    let mut x = LEFT;
    let _ = writeln!(
        svg,
        r#"<line x1="{x}" x2="{}" y1="38" y2="38" stroke="black" stroke-width="2"/><text x="{}" y="42" font-size="11">capacity</text>"#,
        x + 20.0,
        x + 24.0
    );
    x += 80.0;
    for (i, flow) in data.flows.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" x2="{}" y1="38" y2="38" stroke="{colour}" stroke-width="1.5"/><text x="{}" y="42" font-size="11">{}</text>"#,
            x + 20.0,
            x + 24.0,
            escape(&flow.label)
        );
        x += 140.0;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{x}" y="42" font-size="11">solid: delivered (500 ms mean), dashed: target</text>"#
    );
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_is_an_svg_with_one_line_per_series() {
        let data = PlotData {
            title: "t <1>".into(),
            times_s: vec![0.0, 1.0, 2.0],
            capacity_mbps: vec![1.0, 1.0, 0.5],
            flows: vec![FlowSeries {
                label: "flow 1".into(),
                target_mbps: vec![0.3, 0.5, 0.4],
                delivered_mbps: vec![Some(0.2), Some(0.5), Some(0.4)],
                queue_ms: vec![Some(1.0), None, Some(3.0)],
            }],
        };
        let svg = svg(&data);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("t &lt;1&gt;"));
        // capacity, target, delivered, and the delay line broken in two by the gap.
        assert_eq!(svg.matches("<polyline").count(), 5);
    }
}
