//! The geometry of the two charts, drawn server-side as SVG by the templates: replication
//! lag over the last hour, and a run's steps by host (a Gantt chart). Numbers only here;
//! every text reaches the page through the templates, which escape it.

use crate::evidence::RunEvidence;
use serde::Serialize;

/// One refresh's replication lag: the standby's un-replayed WAL, and what a failover now
/// would lose (the primary's current position against the standby's replay), in bytes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LagPoint {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub replay: Option<f64>,
    pub loss: Option<f64>,
}

/// The lag chart, ready to draw.
#[derive(Debug, Clone, Serialize)]
pub struct LagChart {
    pub width: u32,
    pub height: u32,
    /// SVG path data (`M x y L x y …`) per series; empty when there is no point.
    pub replay: String,
    pub loss: String,
    /// y, label
    pub y_ticks: Vec<(f64, String)>,
    /// x, label (minutes ago)
    pub x_ticks: Vec<(f64, String)>,
    pub points: usize,
    /// The last values, in words.
    pub last_replay: String,
    pub last_loss: String,
}

const W: f64 = 720.0;
const H: f64 = 180.0;
const LEFT: f64 = 70.0;
/// Room for the last tick's label.
const RIGHT: f64 = 24.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;
/// One hour, in milliseconds.
pub const WINDOW_MS: i64 = 3_600_000;

impl LagChart {
    pub fn draw(points: &[LagPoint], now_ms: i64) -> LagChart {
        let from = now_ms - WINDOW_MS;
        let shown: Vec<&LagPoint> = points.iter().filter(|p| p.at_ms >= from).collect();
        let max = shown
            .iter()
            .flat_map(|p| [p.replay, p.loss])
            .flatten()
            .fold(0.0f64, f64::max);
        let top = nice_ceiling(max.max(1024.0));
        let x = |at: i64| r1(LEFT + (at - from) as f64 / WINDOW_MS as f64 * (W - LEFT - RIGHT));
        let y = |v: f64| r1(TOP + (H - TOP - BOTTOM) * (1.0 - v / top));
        let path = |pick: fn(&LagPoint) -> Option<f64>| {
            let mut d = String::new();
            let mut pen_down = false;
            for p in &shown {
                match pick(p) {
                    Some(v) => {
                        let cmd = if pen_down { 'L' } else { 'M' };
                        d.push_str(&format!("{cmd}{:.1} {:.1} ", x(p.at_ms), y(v)));
                        pen_down = true;
                    }
                    // A refresh without a value (the check could not run): a gap.
                    None => pen_down = false,
                }
            }
            d.trim_end().to_owned()
        };
        let y_ticks = (0..=4)
            .map(|i| {
                let v = top * f64::from(i) / 4.0;
                (y(v), super::panels::bytes(v))
            })
            .collect();
        let x_ticks = (0..=6)
            .map(|i| {
                let ago = 60 - i * 10;
                let label = if ago == 0 {
                    "now".to_owned()
                } else {
                    format!("-{ago} min")
                };
                (x(now_ms - i64::from(ago) * 60_000), label)
            })
            .collect();
        let last = |pick: fn(&LagPoint) -> Option<f64>| {
            shown
                .last()
                .and_then(|p| pick(p))
                .map_or_else(|| "—".to_owned(), super::panels::bytes)
        };
        LagChart {
            width: W as u32,
            height: H as u32,
            replay: path(|p| p.replay),
            loss: path(|p| p.loss),
            y_ticks,
            x_ticks,
            points: shown.len(),
            last_replay: last(|p| p.replay),
            last_loss: last(|p| p.loss),
        }
    }
}

/// The next power of two: a round top for a y axis in bytes (its quarters are round too).
fn nice_ceiling(v: f64) -> f64 {
    v.log2().ceil().exp2()
}

/// A coordinate to a tenth of a pixel (shorter pages).
fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A run's Gantt chart: one lane per host, one bar per step (and per rollback hook).
#[derive(Debug, Clone, Serialize)]
pub struct Gantt {
    pub width: u32,
    pub height: u32,
    pub label_width: u32,
    pub lanes: Vec<GanttLane>,
    /// Points of no return crossed: x, step.
    pub markers: Vec<(f64, String)>,
    /// The measured outage: x, width.
    pub outage: Option<(f64, f64)>,
    pub x_ticks: Vec<(f64, String)>,
    pub span_ms: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GanttLane {
    pub host: String,
    pub y: f64,
    pub bars: Vec<Bar>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub x: f64,
    pub w: f64,
    pub class: String,
    pub step: String,
    /// The tooltip: step, state, duration.
    pub title: String,
}

const GW: f64 = 900.0;
const LABEL: f64 = 230.0;
const LANE: f64 = 26.0;

impl Gantt {
    pub fn draw(e: &RunEvidence) -> Gantt {
        let span = e
            .steps
            .iter()
            .flat_map(|s| [s.end_ms, s.undo.as_ref().and_then(|u| u.end_ms)])
            .flatten()
            .chain([e.duration_ms])
            .max()
            .unwrap_or(0)
            .max(1);
        let x = |ms: i64| r1(LABEL + ms as f64 / span as f64 * (GW - LABEL - 10.0));
        let width_of = |from: i64, to: i64| r1((x(to) - x(from)).max(2.0));
        let now = e.duration_ms;
        let lanes: Vec<GanttLane> = e
            .lanes
            .iter()
            .enumerate()
            .map(|(n, lane)| {
                let mut bars = Vec::new();
                for &i in &lane.steps {
                    let s = &e.steps[i];
                    let Some(from) = s.offset_ms else { continue };
                    // A step still running (or in doubt) reaches to the last record.
                    let to = s.end_ms.unwrap_or(now);
                    bars.push(Bar {
                        x: x(from),
                        w: width_of(from, to),
                        class: s.class.to_owned(),
                        step: s.id.clone(),
                        title: format!(
                            "{} — {} ({:.2}s)",
                            s.id,
                            s.state,
                            (to - from) as f64 / 1000.0
                        ),
                    });
                    if let Some(u) = &s.undo {
                        let to = u.end_ms.unwrap_or(now);
                        bars.push(Bar {
                            x: x(u.offset_ms),
                            w: width_of(u.offset_ms, to),
                            class: if u.error.is_some() {
                                "failed undo".to_owned()
                            } else {
                                "undo".to_owned()
                            },
                            step: s.id.clone(),
                            title: format!("undo {}", s.id),
                        });
                    }
                }
                GanttLane {
                    host: lane.host.clone(),
                    y: 24.0 + n as f64 * LANE,
                    bars,
                }
            })
            .collect();
        let markers = e
            .points_of_no_return
            .iter()
            .filter_map(|c| c.offset_ms.map(|ms| (x(ms), c.step.clone())))
            .collect();
        let t0 = e.started_at.as_millis();
        let outage = e.outage.as_ref().map(|o| {
            let from = o.from.as_millis() - t0;
            let to = o.to.as_millis() - t0;
            (x(from), width_of(from, to))
        });
        let x_ticks = (0..=5)
            .map(|i| {
                let ms = span * i / 5;
                (x(ms), format!("{:.1}s", ms as f64 / 1000.0))
            })
            .collect();
        Gantt {
            width: GW as u32,
            height: (24.0 + lanes.len() as f64 * LANE + 24.0) as u32,
            label_width: LABEL as u32,
            lanes,
            markers,
            outage,
            x_ticks,
            span_ms: span,
        }
    }
}
