//! Subscribers that show executor events: plain timestamped lines for people (coloured on
//! a terminal), the same lines under a live view of the steps running now on a terminal
//! (`live.rs`), or one JSON object per line for automation.

mod live;

pub(crate) use live::Live;

use crate::events::{Event, EventSink, Stamped};
use crate::step::{Outcome, SkipReason};
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

/// Print a line to stdout, best effort: a run that changes a site must not stop half-way
/// because whoever read its output went away (`drplan apply … | head`).
pub(crate) fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// One line per event, prefixed with the time since the run (re)started.
pub(crate) struct Lines {
    started: Instant,
    color: bool,
    /// `-v`: also show each step's result (already redacted).
    verbose: bool,
    out: Mutex<Box<dyn Write + Send>>,
}

impl Lines {
    pub(crate) fn stdout(color: bool, verbose: bool) -> Self {
        Lines {
            started: Instant::now(),
            color,
            verbose,
            out: Mutex::new(Box::new(std::io::stdout())),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// `text` prefixed with the time since the run (re)started.
    fn stamp(&self, text: &str) -> String {
        let t = self.started.elapsed().as_secs_f64();
        format!("[{t:>7.2}s] {text}")
    }

    fn line(&self, text: &str) {
        let line = self.stamp(text);
        if let Ok(mut out) = self.out.lock() {
            // A closed stdout must not stop a failover half-way: progress is best effort.
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

fn secs(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

/// What a host printed may hold terminal control sequences (a hostile `stderr` can move the
/// cursor, recolour, or rewrite the screen an operator reads): every control character but
/// newline and tab is shown escaped (`\u{1b}`) before anything reaches the terminal.
fn printable(e: &Event) -> Event {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s)
                if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') =>
            {
                *s = s
                    .chars()
                    .map(|c| {
                        if c.is_control() && c != '\n' && c != '\t' {
                            format!("\\u{{{:x}}}", c as u32)
                        } else {
                            c.to_string()
                        }
                    })
                    .collect();
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            serde_json::Value::Object(o) => o.values_mut().for_each(walk),
            _ => {}
        }
    }
    let Ok(mut v) = serde_json::to_value(e) else {
        return e.clone();
    };
    walk(&mut v);
    serde_json::from_value(v).unwrap_or_else(|_| e.clone())
}

impl EventSink for Lines {
    fn emit(&self, e: &Stamped) {
        self.line(&self.text(&printable(&e.event)));
    }
}

impl Lines {
    /// The line an event is shown as (already made printable).
    fn text(&self, e: &Event) -> String {
        match e {
            Event::RunStarted {
                run_id,
                plan,
                site,
                steps,
                resumed,
            } => {
                let verb = if *resumed { "resuming" } else { "run" };
                let steps = crate::render::count(*steps, "step", "steps");
                format!("{verb} {run_id}: plan {plan} on site {site} ({steps})")
            }
            Event::CheckPassed { check, host } => {
                format!("{} check: {check} — on {host}", self.paint("32", "✓"))
            }
            Event::CheckFailed { check, host, error } => {
                format!(
                    "{} check: {check} — on {host}: {}",
                    self.paint("1;31", "✗"),
                    error.message
                )
            }
            Event::StepStarted {
                step,
                action,
                host,
                attempt,
                ..
            } => {
                let again = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                format!(
                    "{} {} {action} on {host}{again}",
                    self.paint("1", "▶"),
                    self.paint("1", step)
                )
            }
            Event::StepRetrying {
                step,
                attempt,
                error,
            } => format!("↻ {step}: retry {attempt} after: {}", error.message),
            Event::StepFinished {
                step,
                outcome,
                duration_ms,
                ..
            } => match outcome {
                Outcome::Succeeded { result } if self.verbose => format!(
                    "{} {step} done in {}\n            result: {result}",
                    self.paint("32", "✓"),
                    secs(*duration_ms)
                ),
                // A result's `note` (the `note` action's message, what a sync did) is for
                // the operator: shown without -v.
                Outcome::Succeeded { result } => {
                    let mut s = format!(
                        "{} {step} done in {}",
                        self.paint("32", "✓"),
                        secs(*duration_ms)
                    );
                    if let Some(note) = result.get("note").and_then(|n| n.as_str()) {
                        s.push_str(&format!("\n            · {note}"));
                    }
                    s
                }
                Outcome::Skipped { reason } => {
                    let why = match reason {
                        SkipReason::When => "its `when` is false",
                        SkipReason::Unreachable => "its host is unreachable",
                        SkipReason::Operator => "the operator marked it done",
                    };
                    format!("{} {step} skipped: {why}", self.paint("33", "–"))
                }
                Outcome::Failed { error } => {
                    let mut s = format!(
                        "{} {step} failed on {}: {}",
                        self.paint("1;31", "✗"),
                        error.host,
                        error.message
                    );
                    if let Some(c) = &error.command {
                        s.push_str(&format!("\n            ran: {c}"));
                    }
                    if let Some(st) = error.status {
                        s.push_str(&format!("\n            exit status: {st}"));
                    }
                    if let Some(t) = error.stderr_tail.as_ref().filter(|t| !t.trim().is_empty()) {
                        for l in t.lines() {
                            s.push_str(&format!("\n            | {l}"));
                        }
                    }
                    s
                }
            },
            Event::CompensationStarted { step, action, host } => {
                format!("↶ undo {step}: {action} on {host}")
            }
            Event::CompensationFinished {
                step,
                error: None,
                duration_ms,
            } => format!(
                "{} undid {step} in {}",
                self.paint("32", "✓"),
                secs(*duration_ms)
            ),
            Event::CompensationFinished {
                step,
                error: Some(e),
                ..
            } => format!(
                "{} undoing {step} failed: {}",
                self.paint("1;31", "✗"),
                e.message
            ),
            Event::RollbackStopped { at_step } => {
                format!("■ rollback stops at {at_step}: it is a point of no return")
            }
            Event::Note { message } => format!("· {message}"),
            Event::RunFinished { summary, .. } => summary.clone(),
        }
    }
}

/// One JSON object per line on stdout.
pub(crate) struct JsonLines;

impl EventSink for JsonLines {
    fn emit(&self, e: &Stamped) {
        self.emit_all(std::slice::from_ref(e));
    }

    /// One write (and flush) for all of them: each line is out as soon as it happened.
    fn emit_all(&self, events: &[Stamped]) {
        let mut lines = Vec::new();
        for e in events {
            let at = lines.len();
            match serde_json::to_writer(&mut lines, e) {
                Ok(()) => lines.push(b'\n'),
                // Never half a line: the next event's line would be glued to it.
                Err(_) => lines.truncate(at),
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&lines);
        let _ = out.flush();
    }
}
