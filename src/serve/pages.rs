//! The pages, rendered with minijinja from templates compiled into the binary
//! (`templates/`, embedded with `include_str!`: the page needs nothing from anywhere else).
//! HTML templates escape every value (autoescape by the `.html` name); the Markdown report
//! escapes table cells and fences code itself (the `cell`, `code_span` and `code_block`
//! filters).
//!
//! Each live page is a `*_live.html` part inside a whole page: the page's script fetches the
//! part again (`?fragment=1`) and swaps it in, so a refresh never reloads the page.

use super::charts::{Gantt, LagChart};
use super::panels::Panels;
use crate::evidence::RunEvidence;
use crate::readiness::Report;
use minijinja::{Environment, Value, context};
use std::sync::OnceLock;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("style.css", include_str!("templates/style.css")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    (
        "dashboard_live.html",
        include_str!("templates/dashboard_live.html"),
    ),
    ("lag_svg.html", include_str!("templates/lag_svg.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("runs_live.html", include_str!("templates/runs_live.html")),
    ("run.html", include_str!("templates/run.html")),
    ("run_live.html", include_str!("templates/run_live.html")),
    ("gantt_svg.html", include_str!("templates/gantt_svg.html")),
    ("report.md", include_str!("templates/report.md")),
];

/// The script that refreshes live pages (served as `/app.js`).
pub const APP_JS: &str = include_str!("templates/app.js");

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, text) in TEMPLATES {
            // The templates are part of the binary: a broken one fails the tests, not a user.
            if let Err(e) = env.add_template(name, text) {
                panic!("template {name}: {e}");
            }
        }
        env.add_filter("secs", secs);
        env.add_filter("cell", cell);
        env.add_filter("code_span", code_span);
        env.add_filter("code_block", code_block);
        env
    })
}

/// Milliseconds as seconds: `1234` → `1.23s`.
fn secs(ms: Value) -> String {
    match i64::try_from(ms) {
        Ok(ms) => format!("{:.2}s", ms as f64 / 1000.0),
        Err(_) => "—".to_owned(),
    }
}

/// Text for one Markdown table cell (or line): no line breaks, no cell separators, no HTML.
fn cell(text: String) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace(['\n', '\r'], " ")
}

/// A Markdown code span that no backtick in `text` can end early.
fn code_span(text: String) -> String {
    let fence = "`".repeat(longest_run(&text, '`') + 1);
    format!("{fence} {} {fence}", text.replace(['\n', '\r'], " "))
}

/// A fenced Markdown code block that no line of `text` can close.
fn code_block(text: String) -> String {
    let fence = "`".repeat(longest_run(&text, '`').max(2) + 1);
    format!("{fence}text\n{}\n{fence}", text.trim_end())
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in text.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

fn render(name: &str, ctx: Value) -> String {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(page) => page,
        // A template error is a drplan bug; the page says so rather than going blank.
        Err(e) => format!("drplan could not render {name}: {e:#}"),
    }
}

/// The name of the whole page, or of its live part only.
fn page(whole: &'static str, fragment: bool) -> String {
    if fragment {
        whole.replace(".html", "_live.html")
    } else {
        whole.to_owned()
    }
}

/// What the dashboard shows.
pub struct Dashboard<'a> {
    pub site: &'a str,
    pub checks: &'a str,
    /// The refresh interval in words (`5s`), and in whole seconds for the page (at least 1).
    pub interval: String,
    pub refresh: u64,
    pub report: Option<&'a Report>,
    pub chart: LagChart,
}

pub fn dashboard(d: &Dashboard<'_>, fragment: bool) -> String {
    let panels = d.report.map(Panels::of);
    let worst = d.report.map(super::super::readiness::Report::worst);
    render(
        &page("dashboard.html", fragment),
        context! {
            site => d.site,
            checks => d.checks,
            interval => d.interval,
            refresh => d.refresh,
            report => Value::from_serialize(d.report),
            worst => Value::from_serialize(worst),
            panels => Value::from_serialize(&panels),
            chart => Value::from_serialize(&d.chart),
            standalone => false,
        },
    )
}

pub fn runs(
    runs: &[RunEvidence],
    error: Option<&str>,
    state_dir: &str,
    refresh: u64,
    fragment: bool,
) -> String {
    render(
        &page("runs.html", fragment),
        context! {
            runs => Value::from_serialize(runs),
            error => error,
            state_dir => state_dir,
            refresh => refresh,
            standalone => false,
        },
    )
}

/// One run's page; `standalone`: the self-contained report (no navigation, no script, no
/// refresh), as `drplan report --format html` writes it.
pub fn run(e: &RunEvidence, refresh: u64, fragment: bool, standalone: bool) -> String {
    let events = format!("/api/runs/{}/events", e.run);
    render(
        &page("run.html", fragment),
        context! {
            e => Value::from_serialize(e),
            gantt => Value::from_serialize(Gantt::draw(e)),
            refresh => if e.live { refresh } else { 0 },
            events => if e.live { Some(events) } else { None },
            standalone => standalone,
        },
    )
}

/// The run's evidence as Markdown, for a change ticket.
pub fn markdown(e: &RunEvidence) -> String {
    render("report.md", context! { e => Value::from_serialize(e) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(env().get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn markdown_cells_and_code_cannot_break_out() {
        assert_eq!(cell("a|b\nc<script>".into()), "a\\|b c&lt;script>");
        assert_eq!(code_span("x ` y".into()), "`` x ` y ``");
        assert_eq!(code_block("```\nend".into()), "````text\n```\nend\n````");
    }
}
