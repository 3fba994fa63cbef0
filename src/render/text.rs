//! The preview for a terminal: wave by wave, like `terraform plan`.

use super::json::{CheckView, HostView, Preview, StepView};
use serde_json::Value;
use std::fmt::Write;

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn warn(&self, s: &str) -> String {
        self.wrap("1;33", s)
    }
    fn good(&self, s: &str) -> String {
        self.wrap("32", s)
    }
}

fn at(h: &HostView) -> String {
    if h.host == "local" || h.role == "local" {
        "local (the controller)".into()
    } else {
        format!("{} ({})", h.role, h.host)
    }
}

/// `key: value, key: value` with nested values as compact JSON.
pub(super) fn inline(v: &Value) -> String {
    match v {
        Value::Object(o) if o.is_empty() => "(no parameters)".into(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn check_line(p: &Paint, out: &mut String, indent: &str, c: &CheckView) {
    let _ = writeln!(
        out,
        "{indent}• {} — {} on {}",
        c.name,
        p.bold(&c.check),
        at(&c.on)
    );
    if !matches!(&c.with, Value::Object(o) if o.is_empty()) {
        let _ = writeln!(
            out,
            "{indent}  {}",
            p.dim(&format!("with {}", inline(&c.with)))
        );
    }
    if let Some(e) = &c.expect {
        let _ = writeln!(out, "{indent}  {}", p.dim(&format!("expect {e}")));
    }
}

fn step(p: &Paint, out: &mut String, s: &StepView) {
    let marker = if s.point_of_no_return {
        p.warn("!")
    } else if s.kind == "check" {
        p.good("?")
    } else {
        p.bold("+")
    };
    let _ = writeln!(out, "  {marker} {}  {}", p.bold(&s.id), s.name);
    let _ = writeln!(out, "      on        {}", at(&s.on));
    let mut traits = vec![
        if s.idempotent {
            "idempotent"
        } else {
            "not idempotent"
        }
        .to_string(),
    ];
    if let Some(b) = &s.become_user {
        traits.push(format!("as {b}"));
    }
    if let Some(t) = &s.timeout {
        traits.push(format!("timeout {t}"));
    }
    if s.retries > 0 {
        traits.push(format!(
            "{} every {}",
            count(s.retries as usize, "retry", "retries"),
            s.retry_delay.as_deref().unwrap_or("1s")
        ));
    }
    if s.on_unreachable == "skip" {
        traits.push("skipped if unreachable".into());
    }
    let _ = writeln!(
        out,
        "      action    {} {}",
        p.bold(&s.action),
        p.dim(&format!("({})", traits.join(", ")))
    );
    let _ = writeln!(out, "      with      {}", inline(&s.with));
    if !s.needs.is_empty() {
        let _ = writeln!(out, "      after     {}", s.needs.join(", "));
    }
    if let Some(w) = &s.when {
        let _ = writeln!(out, "      when      {w}");
    }
    if !s.preconditions.is_empty() {
        let _ = writeln!(out, "      checks first:");
        for c in &s.preconditions {
            check_line(p, out, "        ", c);
        }
    }
    match &s.rollback {
        Some(r) => {
            let _ = writeln!(
                out,
                "      rollback  {} on {} — {}",
                r.action,
                at(&r.on),
                inline(&r.with)
            );
        }
        None => {
            let _ = writeln!(out, "      rollback  {}", p.dim("(none)"));
        }
    }
}

/// The preview as terminal text; `color` adds ANSI styling.
pub fn text(preview: &Preview, color: bool) -> String {
    let p = Paint(color);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} on site {}",
        p.bold("Plan"),
        p.bold(&preview.plan.name),
        p.bold(&preview.site.name)
    );
    let _ = writeln!(
        out,
        "  {}",
        p.dim(&format!("{} with {}", preview.plan.file, preview.site.file))
    );
    if let Some(d) = &preview.description {
        let _ = writeln!(out, "  {d}");
    }
    if !preview.params.is_empty() {
        let _ = writeln!(out, "\nParameters");
        for (k, v) in &preview.params {
            let _ = writeln!(out, "  {k} = {}", inline(v));
        }
    }
    if !preview.preconditions.is_empty() {
        let _ = writeln!(
            out,
            "\nBefore step one, every check must pass (nothing changes otherwise):"
        );
        for c in &preview.preconditions {
            check_line(&p, &mut out, "  ", c);
        }
    }
    for (w, ids) in preview.waves.iter().enumerate() {
        let together = if ids.len() > 1 {
            format!(" — {} steps may run together", ids.len())
        } else {
            String::new()
        };
        let _ = writeln!(out, "\n{}{together}", p.bold(&format!("Wave {}", w + 1)));
        for id in ids {
            if let Some(s) = preview.steps.iter().find(|s| &s.id == id) {
                step(&p, &mut out, s);
                if s.point_of_no_return {
                    let line = format!(
                        "── point of no return: once `{}` succeeds, rollback stops here ──",
                        s.id
                    );
                    let _ = writeln!(out, "  {}", p.warn(&line));
                }
            }
        }
    }
    let _ = writeln!(out);
    if preview.rollback_order.is_empty() {
        let _ = writeln!(out, "Rollback: nothing to undo after a complete run.");
    } else {
        let _ = writeln!(
            out,
            "Rollback after a complete run, newest first: {}",
            preview.rollback_order.join(" → ")
        );
    }
    let changes = preview.steps.iter().filter(|s| s.kind == "change").count();
    let _ = writeln!(
        out,
        "{} in {}: {}, {}; {}.",
        count(preview.steps.len(), "step", "steps"),
        count(preview.waves.len(), "wave", "waves"),
        count(changes, "change", "changes"),
        count(preview.steps.len() - changes, "check", "checks"),
        count(
            preview.points_of_no_return.len(),
            "point of no return",
            "points of no return"
        )
    );
    out
}

/// `1 step`, `2 steps`: a count with its noun in the right number.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
