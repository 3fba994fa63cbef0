//! The live terminal view of `apply` and `resume`: the same lines as [`Lines`], printed
//! above a block that is redrawn in place — each step running now with its host and
//! elapsed time, and how many steps are done of how many (indicatif). Only on a terminal:
//! anywhere else the plain lines are all there is, unchanged.
//!
//! The block is cleared when the run's output ends (`close`, or when the view is dropped on
//! the way out), so the summary and any failure print below the last line, not into it.

use super::{Lines, printable};
use crate::events::{Event, EventSink, Stamped};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const TICK: Duration = Duration::from_millis(120);

pub(crate) struct Live {
    lines: Lines,
    multi: MultiProgress,
    overall: ProgressBar,
    running: Mutex<HashMap<String, ProgressBar>>,
}

fn style(template: &str) -> ProgressStyle {
    // The templates are ours and valid; the default style is a safe fallback all the same.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Live {
    /// A live view on stdout; `done` steps are already done (a resumed run).
    pub(crate) fn stdout(color: bool, verbose: bool, done: usize) -> Live {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(style("{spinner} {msg} steps done, {elapsed}"));
        overall.set_position(done as u64);
        overall.set_message(format!("{done}/?"));
        overall.enable_steady_tick(TICK);
        Live {
            lines: Lines::stdout(color, verbose),
            multi,
            overall,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// `done/total` in the bar's message (indicatif's own `{pos}` is not redrawn reliably
    /// from another thread's `inc` under a steady tick).
    fn count(&self) {
        let total = self.overall.length().unwrap_or(0);
        self.overall
            .set_message(format!("{}/{total}", self.overall.position()));
    }

    fn clear(&self) {
        if let Ok(mut running) = self.running.lock() {
            for (_, bar) in running.drain() {
                bar.finish_and_clear();
            }
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl EventSink for Live {
    fn emit(&self, e: &Stamped) {
        let event = printable(&e.event);
        let line = self.lines.stamp(&self.lines.text(&event));
        // Printed above the live block; a terminal that went away is no reason to stop.
        let _ = self.multi.println(line);
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        match event {
            Event::RunStarted { steps, .. } => {
                self.overall.set_length(steps as u64);
                self.count();
            }
            Event::StepStarted {
                step, action, host, ..
            } => {
                let bar = self
                    .multi
                    .insert_before(&self.overall, ProgressBar::new_spinner());
                bar.set_style(style("  {spinner} {prefix:.bold} {msg} {elapsed}"));
                bar.set_prefix(step.clone());
                bar.set_message(format!("{action} on {host}"));
                bar.enable_steady_tick(TICK);
                if let Some(old) = running.insert(step, bar) {
                    old.finish_and_clear();
                }
            }
            Event::StepFinished { step, .. } => {
                if let Some(bar) = running.remove(&step) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.overall.inc(1);
                self.count();
            }
            Event::RunFinished { .. } => {
                drop(running);
                self.clear();
            }
            _ => {}
        }
    }

    fn close(&self) {
        self.clear();
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::Outcome;

    #[test]
    fn counts_steps_as_they_finish() {
        let live = Live::stdout(false, false, 1);
        let emit = |event| live.emit(&Stamped::now(event));
        emit(Event::RunStarted {
            run_id: "r".into(),
            plan: "p".into(),
            site: "s".into(),
            steps: 3,
            resumed: true,
        });
        emit(Event::StepStarted {
            step: "two".into(),
            name: "two".into(),
            action: "sleep".into(),
            host: "a (local)".into(),
            attempt: 1,
        });
        assert_eq!(live.running.lock().unwrap().len(), 1);
        emit(Event::StepFinished {
            step: "two".into(),
            name: "two".into(),
            outcome: Outcome::Succeeded {
                result: serde_json::json!({}),
            },
            duration_ms: 5,
        });
        assert!(live.running.lock().unwrap().is_empty());
        assert_eq!(live.overall.position(), 2);
        assert_eq!(live.overall.length(), Some(3));
    }
}
