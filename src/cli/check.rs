//! `drplan check --site SITE [--checks FILE] [--watch [--interval 5s]] [--format text|json]`:
//! a read-only readiness report of a site — replication, config sync, VIP owner, health.
//!
//! The checks are a plan file with `steps: []` whose `preconditions:` are the checks, so the
//! same loader, schema and diagnostics validate them; a checks file with steps, or without
//! checks, is refused before anything runs. Exit 0 when every check is ok, 1 when the worst is
//! a warning, 2 when any is critical (2 also for invalid input). It must never change a host:
//! the loader already refuses a changing action as a check, and this command runs nothing else.

use super::pipeline::bind_graph;
use super::validate::Format;
use super::{Failure, Global};
use crate::actions::{ActionRunner, Approvals};
use crate::events::Silent;
use crate::exec::{Cancel, Shared};
use crate::plan::Severity;
use crate::readiness::{self, Report, Status};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit status: 0 every check ok; 1 the worst is a warning; 2 a check is critical (a check on an \
unreachable host always is), or the input is invalid.
With --watch, Ctrl-C (or SIGTERM) ends the watch with the exit status of the last complete \
report; 130 only when interrupted before the first report was complete.")]
pub struct Args {
    /// The site whose readiness to report.
    #[arg(long)]
    pub site: PathBuf,
    /// The checks: a plan file with `steps: []` whose `preconditions:` are the checks, each
    /// with an optional `severity: warning|critical`; a shipped one by its name when no such
    /// file exists (the default: gocd/readiness, shipped with drplan).
    #[arg(long, value_name = "FILE", default_value = "gocd/readiness")]
    pub checks: PathBuf,
    /// Report again every --interval until interrupted (the screen is cleared between
    /// reports on a terminal; with --format json, one report per line).
    #[arg(long)]
    pub watch: bool,
    /// Pause between two reports with --watch (`500ms`, `5s`, `1m`).
    #[arg(long, default_value = "5s", requires = "watch", value_parser = interval)]
    pub interval: crate::plan::Duration,
    /// How many checks may run at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// text, or json for machines.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub(super) fn interval(text: &str) -> Result<crate::plan::Duration, String> {
    let d = crate::plan::Duration::parse(text)?;
    if d.std().is_zero() {
        return Err("the interval must be longer than 0".into());
    }
    Ok(d)
}

pub(super) async fn run(args: Args, global: &Global) -> Result<(), Failure> {
    let path = args.checks;
    let graph = bind_graph(readiness::load_checks(&path), &args.site)?;
    let secrets = super::session::secrets(&graph)?;
    // SSH control sockets in a private temporary directory: a report must not leave a
    // `.drplan` behind in whatever directory a monitoring job runs it from.
    let control = tempfile::Builder::new()
        .prefix("drplan-check-")
        .tempdir()
        .map_err(Failure::io("create a temporary directory"))?;
    let stop = Cancel::on_signals();
    let show = Show {
        json: matches!(args.format, Format::Json),
        watch: args.watch,
        terminal: std::io::stdout().is_terminal(),
        color: global.stdout_color(),
        quiet: global.quiet,
        checks: path,
        interval: args.interval,
    };
    let mut last = None;
    loop {
        // A runner of its own each round: hosts are connected afresh.
        let runner = ActionRunner::new(
            &graph.bound,
            control.path(),
            Approvals::new(Vec::new(), false),
            secrets.redactor().clone(),
        );
        let shared = Arc::new(Shared::new(
            graph.clone(),
            runner,
            secrets.clone(),
            Arc::new(Silent),
        ));
        let report = readiness::round(&shared, args.parallel.into(), &stop, None).await;
        if let Ok(shared) = Arc::try_unwrap(shared) {
            shared.runner.close().await;
        }
        let Some(report) = report else {
            break;
        };
        show.print(&report, last.is_none());
        last = Some(report.worst());
        if !args.watch {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(args.interval.std()) => {}
            () = stop.cancelled() => break,
        }
    }
    match last {
        None => Err(Failure::ChecksInterrupted),
        Some(Status::Ok) => Ok(()),
        Some(Status::Warning) => Err(Failure::Unready {
            severity: Severity::Warning,
        }),
        Some(Status::Critical) => Err(Failure::Unready {
            severity: Severity::Critical,
        }),
    }
}

/// How reports are shown.
struct Show {
    json: bool,
    watch: bool,
    terminal: bool,
    color: bool,
    quiet: bool,
    checks: PathBuf,
    interval: crate::plan::Duration,
}

impl Show {
    fn print(&self, report: &Report, first: bool) {
        let text = if self.json {
            let encoded = if self.watch {
                serde_json::to_string(report)
            } else {
                serde_json::to_string_pretty(report)
            };
            format!("{}\n", encoded.unwrap_or_default())
        } else {
            let mut t = String::new();
            if self.watch && self.terminal {
                t.push_str("\x1b[2J\x1b[H"); // clear the screen, cursor home
            } else if self.watch && !first {
                t.push('\n');
            }
            t.push_str(&self.text(report));
            t
        };
        // A closed stdout (a pager that quit) must not panic; the exit status still tells.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn text(&self, report: &Report) -> String {
        let mut t = String::new();
        if !self.quiet {
            let every = if self.watch {
                format!(", again every {} until Ctrl-C", self.interval)
            } else {
                String::new()
            };
            t.push_str(&format!(
                "site {}: {} at {}{every}\n",
                report.site,
                self.checks.display(),
                report.checked_at
            ));
        }
        for c in &report.checks {
            let mark = match c.status {
                Status::Ok if self.quiet => continue,
                Status::Ok => self.paint("32", "✓"),
                Status::Warning => self.paint("33", "!"),
                Status::Critical => self.paint("31", "✗"),
            };
            let detail = c
                .detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            t.push_str(&format!("{mark} {} — on {}{detail}\n", c.name, c.label));
        }
        let plural = if report.warnings == 1 { "" } else { "s" };
        t.push_str(&format!(
            "{} ok, {} warning{plural}, {} critical\n",
            report.ok, report.warnings, report.critical
        ));
        t
    }
}
