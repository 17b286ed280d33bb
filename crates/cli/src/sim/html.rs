//! The report as one self-contained HTML page: inline SVG plots and tables, no scripts,
//! no external assets.

use std::fmt::Write as _;

use super::report::{ParticipantReport, Report, StatsPoint};
use crate::svg::{axis, tick_label};

/// Line colours, by participant (repeating).
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
];
const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

/// One line (or set of markers) of a chart.
struct Line {
    label: String,
    colour: &'static str,
    dashed: bool,
    markers: bool,
    points: Vec<(f64, f64)>,
}

impl Line {
    /// Participant `p`'s statistics series as a line: `value` of every point, labelled
    /// "`p`: `what`", in the participant's colour.
    fn of_stats(
        p: &ParticipantReport,
        what: &str,
        dashed: bool,
        value: impl Fn(&StatsPoint) -> f64,
    ) -> Line {
        Line {
            label: format!("{}: {what}", p.participant),
            colour: COLOURS[(p.participant - 1) % COLOURS.len()],
            dashed,
            markers: false,
            points: p.stats.points.iter().map(|s| (s.t_s, value(s))).collect(),
        }
    }
}

/// Escapes text for HTML and SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG chart of `lines` against time (seconds, 0 to `x_max`).
fn chart(title: &str, y_label: &str, x_max: f64, lines: &[Line]) -> String {
    let y_top = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let (y_max, y_step) = axis(y_top);
    let (x_max, x_step) = axis(x_max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |t: f64| LEFT + t.clamp(0.0, x_max) / x_max * plot_w;
    let y = |v: f64| TOP + plot_h - v.clamp(0.0, y_max) / y_max * plot_h;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>"##
    );
    let mut v = 0.0;
    while v <= y_max + 1e-9 {
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 4.0,
            y(v) + 4.0,
            tick_label(v),
            y = y(v),
        );
        v += y_step;
    }
    let mut t = 0.0;
    while t <= x_max + 1e-9 {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(t),
            TOP + plot_h + 14.0,
            tick_label(t)
        );
        t += x_step;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time (s)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 6.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        escape(y_label)
    );
    for (k, line) in lines.iter().enumerate() {
        let finite = line
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite());
        if line.markers {
            for &(t, v) in finite {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                    x(t),
                    y(v),
                    line.colour
                );
            }
        } else {
            let path: Vec<String> = finite
                .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5"{} points="{}"/>"#,
                line.colour,
                if line.dashed {
                    r#" stroke-dasharray="5,3""#
                } else {
                    ""
                },
                path.join(" ")
            );
        }
        let ly = TOP + 10.0 + 14.0 * k as f64;
        let lx = LEFT + plot_w + 10.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{}" stroke-width="2"{}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 18.0,
            ly - 4.0,
            ly - 4.0,
            line.colour,
            if line.dashed {
                r#" stroke-dasharray="5,3""#
            } else {
                ""
            },
            lx + 22.0,
            ly,
            escape(&line.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn opt(value: Option<f64>, unit: &str) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.1}{unit}"))
}

/// The page.
pub fn page(report: &Report) -> String {
    let c = &report.config;
    let x_max = c.duration_s;
    let mut html = String::new();
    let _ = writeln!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tincan sim: {} participants</title>\n<style>body{{font-family:sans-serif;margin:2em;max-width:960px}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}th{{background:#f4f4f4}}td:first-child,th:first-child{{text-align:left}}</style></head><body>",
        c.participants
    );
    let _ = writeln!(
        html,
        "<h1>tincan sim</h1><p>{} participants, {} media, {:.1} s simulated in {:.2} s ({:.1}× real time), seed {}, talk turns of {} s after {} s of silence.</p>",
        c.participants,
        c.media,
        c.duration_s,
        report.speed.wall_s,
        report.speed.times_real_time,
        c.seed,
        c.turn_s,
        c.gap_s
    );

    html.push_str("<h2>Mouth-to-ear delay and loss per direction</h2>\n<p>Mouth-to-ear is measured from the audio: each 1 s window of a talk turn's microphone is cross-correlated with what the listener heard (a window counts as heard at a correlation of 0.3 or more); median and p95 are over the heard windows.</p>\n<table><tr><th>talker → listener</th><th>profile</th><th>median (ms)</th><th>p95 (ms)</th><th>min–max (ms)</th><th>windows heard</th><th>correlation</th><th>network loss</th><th>loss before recovery</th><th>after recovery</th><th>MOS</th><th>quality</th></tr>\n");
    for d in &report.directions {
        let m = &d.mouth_to_ear;
        let pct = |v: Option<f64>| v.map_or_else(|| "–".into(), |v| format!("{:.2}%", v * 100.0));
        let _ = writeln!(
            html,
            "<tr><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}–{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.from,
            d.to,
            escape(&d.profile),
            opt(m.median_ms, ""),
            opt(m.p95_ms, ""),
            opt(m.min_ms, ""),
            opt(m.max_ms, ""),
            m.heard_windows,
            m.windows,
            m.mean_correlation
                .map_or_else(|| "–".into(), |c| format!("{c:.3}")),
            pct(Some(d.network.loss)),
            pct(d.loss_before_recovery),
            pct(d.loss_after_recovery),
            d.mos.map_or_else(|| "–".into(), |m| format!("{m:.2}")),
            escape(d.quality.as_deref().unwrap_or("–")),
        );
    }
    html.push_str("</table>\n");
    let turns: Vec<Line> = report
        .participants
        .iter()
        .map(|p| Line {
            label: format!("talker {}", p.participant),
            colour: COLOURS[(p.participant - 1) % COLOURS.len()],
            dashed: false,
            markers: true,
            points: report
                .directions
                .iter()
                .filter(|d| d.from == p.participant)
                .flat_map(|d| d.mouth_to_ear.turns.iter())
                .filter_map(|t| t.mouth_to_ear_ms.map(|m| (t.start_s, m)))
                .collect(),
        })
        .collect();
    html.push_str(&chart(
        "Mouth-to-ear per turn (median of its windows, every listener)",
        "ms",
        x_max,
        &turns,
    ));

    html.push_str("<h2>Bitrate and estimated bandwidth</h2>\n");
    for p in &report.participants {
        let series = |f: fn(&super::report::StatsPoint) -> f64| -> Vec<(f64, f64)> {
            p.stats.points.iter().map(|s| (s.t_s, f(s))).collect()
        };
        let lines = [
            Line {
                label: "target".into(),
                colour: COLOURS[0],
                dashed: false,
                markers: false,
                points: series(|s| s.target_bps as f64 / 1e3),
            },
            Line {
                label: "sent".into(),
                colour: COLOURS[1],
                dashed: false,
                markers: false,
                points: series(|s| s.send_bps as f64 / 1e3),
            },
            Line {
                label: "estimated bandwidth".into(),
                colour: COLOURS[2],
                dashed: true,
                markers: false,
                points: series(|s| s.estimated_bandwidth_bps as f64 / 1e3),
            },
            Line {
                label: "audio policy".into(),
                colour: COLOURS[3],
                dashed: true,
                markers: false,
                points: series(|s| f64::from(s.audio_policy_bps) / 1e3),
            },
        ];
        html.push_str(&chart(
            &format!("Participant {}: send rates", p.participant),
            "kbit/s",
            x_max,
            &lines,
        ));
    }

    html.push_str("<h2>Jitter buffer delay</h2>\n");
    let mut delay_lines = Vec::new();
    for p in &report.participants {
        delay_lines.push(Line::of_stats(p, "delay", false, |s| {
            s.jitter_buffer_delay_ms
        }));
        delay_lines.push(Line::of_stats(p, "target", true, |s| {
            s.jitter_buffer_target_ms
        }));
    }
    html.push_str(&chart(
        "Jitter buffer delay (interval mean) and target, per listener",
        "ms",
        x_max,
        &delay_lines,
    ));

    html.push_str("<h2>Loss before and after recovery</h2>\n<p>Before: the share of datagrams the network dropped on the way to each listener (mean over its incoming directions). After: the share of the listener's played samples that were concealed.</p>\n");
    let mut loss_lines = Vec::new();
    for p in &report.participants {
        let colour = COLOURS[(p.participant - 1) % COLOURS.len()];
        let incoming: Vec<_> = report
            .directions
            .iter()
            .filter(|d| d.to == p.participant)
            .collect();
        let points = incoming.first().map_or_else(Vec::new, |first| {
            (0..first.network_series.points.len())
                .map(|k| {
                    let losses: Vec<f64> = incoming
                        .iter()
                        .filter_map(|d| d.network_series.points.get(k).map(|q| q.loss))
                        .collect();
                    let t = first.network_series.points[k].t_s;
                    (
                        t,
                        100.0 * losses.iter().sum::<f64>() / losses.len().max(1) as f64,
                    )
                })
                .collect()
        });
        loss_lines.push(Line {
            label: format!("{}: before", p.participant),
            colour,
            dashed: false,
            markers: false,
            points,
        });
        loss_lines.push(Line::of_stats(p, "after", true, |s| {
            100.0 * s.concealed_interval
        }));
    }
    html.push_str(&chart("Loss per listener", "%", x_max, &loss_lines));

    html.push_str(&video_section(report, x_max));

    html.push_str("<h2>Participants</h2>\n<table><tr><th>participant</th><th>microphone</th><th>said</th><th>heard</th><th>RTT (ms)</th><th>jitter buffer mean (ms)</th><th>concealed</th><th>concealment events</th><th>session errors</th></tr>\n");
    for p in &report.participants {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td><a href=\"{}\">{}</a></td><td><a href=\"{}\">{}</a></td><td>{}</td><td>{:.1}</td><td>{:.2}%</td><td>{}</td><td>{}</td></tr>",
            p.participant,
            escape(&p.mic),
            escape(&p.said_wav),
            escape(&p.said_wav),
            escape(&p.heard_wav),
            escape(&p.heard_wav),
            opt(p.final_stats.rtt_ms, ""),
            p.playout.mean_delay_ms,
            100.0 * p.playout.concealed_samples as f64 / p.playout.total_samples.max(1) as f64,
            p.playout.concealment_events,
            p.session_errors,
        );
    }
    html.push_str("</table>\n");
    let r = &report.relay;
    let _ = writeln!(
        html,
        "<h2>Relay</h2><p>RTP: {} in, {} forwarded. RTCP: {} in, {} compounds forwarded, {} packets or blocks about nobody dropped, {} transport-cc given to the sole peer, {} of kinds not forwarded, {} malformed.</p>",
        r.rtp_in,
        r.rtp_out,
        r.rtcp_in,
        r.rtcp_out,
        r.rtcp_unaddressed,
        r.rtcp_sole_peer,
        r.rtcp_unforwarded_kind,
        r.malformed
    );
    if let (Some(first), Some(last)) = (report.memory.first(), report.memory.last()) {
        let _ = writeln!(
            html,
            "<p>Simulator memory (resident): {} KiB at {:.0} s, {} KiB at {:.0} s.</p>",
            first.rss_kib, first.t_s, last.rss_kib, last.t_s
        );
    }
    html.push_str("</body></html>\n");
    html
}

/// Video: per direction the pictures shown, frame rate, freezes; the frame rate and the
/// freezes over time; each participant's video bitrate.
fn video_section(report: &Report, x_max: f64) -> String {
    let mut html = String::from("<h2>Video and freezes</h2>\n");
    if !report.directions.iter().any(|d| d.video.is_some()) {
        html.push_str("<p>This call carries audio only: there is no video to freeze.</p>\n");
        return html;
    }
    html.push_str("<table><tr><th>from→to</th><th>pictures shown</th><th>decoded (session)</th><th>frame rate</th><th>freezes</th><th>frozen (s)</th><th>first picture (s)</th><th>resolution</th><th>packets lost before / after recovery</th><th>Y4M</th></tr>\n");
    for d in &report.directions {
        let Some(v) = &d.video else { continue };
        let y4m = v.y4m.as_deref().map_or_else(
            || "–".to_string(),
            |f| format!("<a href=\"{}\">{}</a>", escape(f), escape(f)),
        );
        let _ = writeln!(
            html,
            "<tr><td>{}→{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td></tr>",
            d.from,
            d.to,
            v.frames_shown,
            v.frames_decoded,
            opt(v.fps, " fps"),
            v.freeze_count,
            v.freeze_s,
            opt(v.first_frame_s, ""),
            escape(v.resolution.as_deref().unwrap_or("–")),
            v.packets_lost_before_recovery,
            v.packets_lost_after_recovery,
            y4m,
        );
    }
    html.push_str("</table>\n");
    let mut fps_lines = Vec::new();
    let mut freeze_lines = Vec::new();
    for (k, d) in report
        .directions
        .iter()
        .filter(|d| d.video.is_some())
        .enumerate()
    {
        let colour = COLOURS[k % COLOURS.len()];
        fps_lines.push(Line {
            label: format!("{}→{}", d.from, d.to),
            colour,
            dashed: false,
            markers: false,
            points: d
                .remote_stats
                .points
                .iter()
                .map(|p| (p.t_s, p.video_fps))
                .collect(),
        });
        freeze_lines.push(Line {
            label: format!("{}→{}", d.from, d.to),
            colour,
            dashed: false,
            markers: true,
            points: d
                .remote_stats
                .points
                .iter()
                .map(|p| (p.t_s, p.video_freeze_s))
                .collect(),
        });
    }
    html.push_str(&chart(
        "Video frame rate per direction",
        "fps",
        x_max,
        &fps_lines,
    ));
    html.push_str(&chart(
        "Video frozen so far per direction (freezes: WebRTC's definition)",
        "s",
        x_max,
        &freeze_lines,
    ));
    let mut rate_lines = Vec::new();
    for p in &report.participants {
        rate_lines.push(Line::of_stats(p, "video sent", false, |s| {
            s.video_send_bps as f64 / 1e3
        }));
        rate_lines.push(Line::of_stats(p, "video target", true, |s| {
            s.video_target_bps as f64 / 1e3
        }));
    }
    html.push_str(&chart(
        "Video bitrate sent and target",
        "kbit/s",
        x_max,
        &rate_lines,
    ));
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_labels_and_survive_empty_data() {
        let svg = chart(
            "a <b> & c",
            "ms",
            0.0,
            &[Line {
                label: "\"x\"".into(),
                colour: COLOURS[0],
                dashed: true,
                markers: false,
                points: vec![(f64::NAN, 1.0)],
            }],
        );
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert!(svg.contains("&quot;x&quot;"));
        assert!(!svg.contains("NaN"));
    }
}
