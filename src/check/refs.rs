//! Templates in a plan: they must parse, and read only names in scope — declared
//! params, declared roles, and results of steps this one waits for.

use super::Checker;
use crate::actions;
use crate::diag::{Diagnostic, suggest};
use crate::load::child;
use crate::plan::{Check, Step};
use crate::template::{self, Form, ROOTS, VarPath};
use serde_json::Value;

/// Where a template sits: which step (for `steps.X` scoping) and whether `result` is bound.
#[derive(Clone, Copy)]
struct Scope {
    step: Option<usize>,
    result: bool,
}

pub(super) fn check_step_templates(cx: &mut Checker, i: usize, step: &Step) {
    let base = format!("/steps/{i}");
    let scope = Scope {
        step: Some(i),
        result: false,
    };
    check_with(cx, &child(&base, "with"), &step.action, &step.with, scope);
    if let Some(when) = &step.when {
        expression(cx, &child(&base, "when"), when, scope);
    }
    if let Some(rb) = &step.rollback {
        // A rollback hook runs on the worst day: its scripts obey the same quoting rule.
        check_with(
            cx,
            &format!("{base}/rollback/with"),
            &rb.action,
            &rb.with,
            scope,
        );
    }
    for (j, c) in step.preconditions.iter().enumerate() {
        check_check_templates(cx, &format!("{base}/preconditions/{j}"), c, Some(i));
    }
}

pub(super) fn check_check_templates(cx: &mut Checker, base: &str, c: &Check, step: Option<usize>) {
    let scope = Scope {
        step,
        result: false,
    };
    check_with(cx, &child(base, "with"), &c.check, &c.with, scope);
    if let Some(expect) = &c.expect {
        expression(
            cx,
            &child(base, "expect"),
            expect,
            Scope {
                result: true,
                ..scope
            },
        );
    }
}

/// An action's `with:`, as the action declares it: every template, the quoting of each
/// script parameter, and the expression over the result of a check it runs itself
/// (`wait.until`'s `expect`, which is not a template).
fn check_with(
    cx: &mut Checker,
    pointer: &str,
    action: &str,
    with: &serde_json::Map<String, Value>,
    scope: Scope,
) {
    let about = actions::lookup(action);
    let expect = about.and_then(|a| a.runs_check).map(|nested| nested.expect);
    for (key, value) in with {
        let at = child(pointer, key);
        match value {
            Value::String(expr) if expect == Some(key.as_str()) => {
                let scope = Scope {
                    result: true,
                    ..scope
                };
                expression(cx, &at, expr, scope);
            }
            _ => walk(cx, &at, value, scope),
        }
    }
    for &key in about.map_or(&[][..], |a| a.script_params) {
        if let Some(Value::String(script)) = with.get(key) {
            check_script(cx, &child(pointer, key), script);
        }
    }
}

fn walk(cx: &mut Checker, pointer: &str, v: &Value, scope: Scope) {
    match v {
        Value::String(s) if template::is_template(s) => {
            text(cx, pointer, s, Form::Template, scope);
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, x)| walk(cx, &child(pointer, &i.to_string()), x, scope)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| walk(cx, &child(pointer, k), x, scope)),
        _ => {}
    }
}

fn expression(cx: &mut Checker, pointer: &str, expr: &str, scope: Scope) {
    text(cx, pointer, expr, Form::Expression, scope);
}

fn text(cx: &mut Checker, pointer: &str, source: &str, form: Form, scope: Scope) {
    let env = template::shared();
    match template::variables(env, source, form) {
        Err(e) => {
            let span = e.range().map(|r| {
                cx.doc
                    .span_within(pointer, source, r.start, r.end - r.start)
            });
            let what = if form == Form::Template {
                "template"
            } else {
                "expression"
            };
            let detail = e
                .detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.kind().to_string());
            let mut d = Diagnostic::new(
                "drplan::template::syntax",
                format!("{what} syntax error: {detail}"),
            )
            .label("here")
            .help("templates are minijinja (Jinja2): `{{ vars.pg.data_dir }}`, filters with `|`");
            d = d.at(
                &cx.doc.file,
                span.unwrap_or_else(|| cx.doc.value_span(pointer)),
            );
            cx.push(d);
        }
        Ok(mut vars) => {
            // An unknown function is also an undeclared name: one message for it.
            let functions = unknown_names(cx, pointer, source, form);
            vars.retain(|p| !functions.contains(&p[0]));
            // `steps['some-id']` is how ids holding `-` are read; minijinja reports only
            // `steps` for it, so find the ids in the text to check their scope too.
            vars.extend(
                subscripted_steps(source)
                    .into_iter()
                    .map(|id| vec!["steps".into(), id, "result".into()]),
            );
            let hyphenated = vars
                .iter()
                .any(|p| p[0] == "steps" && p.len() > 1 && !cx.index.contains_key(&p[1]));
            for path in vars {
                // `steps.a-b` parses as `steps.a - b`: one message for it, not one per word.
                if hyphenated
                    && !ROOTS.contains(&path[0].as_str())
                    && source.contains(&format!("-{}", path[0]))
                {
                    continue;
                }
                if path.len() == 1 && path[0] == "steps" && !subscripted_steps(source).is_empty() {
                    continue;
                }
                if let Some((message, help)) = out_of_scope(cx, &path, scope) {
                    let needle = path.join(".");
                    let span = match source.find(&needle) {
                        Some(at) => cx.doc.span_within(pointer, source, at, needle.len()),
                        None => cx.doc.value_span(pointer),
                    };
                    let d = Diagnostic::new("drplan::template::undefined", message)
                        .at(&cx.doc.file, span)
                        .label("not defined here")
                        .help_opt(help);
                    cx.push(d);
                }
            }
        }
    }
}

/// Filters, tests and functions that do not exist: found now, not when the template is
/// rendered mid-run after earlier steps changed things.
/// Returns the unknown functions' names.
fn unknown_names(cx: &mut Checker, pointer: &str, source: &str, form: Form) -> Vec<String> {
    let mut functions = Vec::new();
    for u in template::unknown_names(template::shared(), source, form) {
        if u.kind == "function" {
            functions.push(u.name.clone());
        }
        let span = match source.find(&u.name) {
            Some(at) => cx.doc.span_within(pointer, source, at, u.name.len()),
            None => cx.doc.value_span(pointer),
        };
        let help = match u.kind {
            "filter" => {
                "the filters are minijinja's built-in ones (`upper`, `replace`, `default`, `join`, …) and drplan's `shell_quote`"
            }
            "test" => {
                "the tests are minijinja's built-in ones (`defined`, `none`, `number`, `string`, …)"
            }
            _ => "the functions are minijinja's `range`, `dict`, `namespace` and `debug`",
        };
        let d = Diagnostic::new(
            "drplan::template::unknown",
            format!("unknown {} `{}`", u.kind, u.name),
        )
        .at(&cx.doc.file, span)
        .label(format!("no such {}", u.kind))
        .help(help);
        cx.push(d);
    }
    functions
}

/// Why `path` cannot be read here (message, help), or None when it can.
fn out_of_scope(cx: &Checker, path: &VarPath, scope: Scope) -> Option<(String, Option<String>)> {
    let root = path[0].as_str();
    let second = path.get(1).map(String::as_str);
    match root {
        "result" if scope.result => None,
        "result" => Some((
            "`result` is only defined in a check's `expect`".into(),
            None,
        )),
        "params" => {
            let name = second?;
            (!cx.params.iter().any(|p| p == name)).then(|| {
                let help =
                    suggest(name, cx.params.iter().map(String::as_str)).unwrap_or_else(|| {
                        "declare it under `params:` with a type and a default".into()
                    });
                (
                    format!(
                        "undefined variable `params.{name}`: the plan declares no such parameter"
                    ),
                    Some(help),
                )
            })
        }
        "hosts" => {
            let role = second?;
            (!cx.roles.iter().any(|r| r == role)).then(|| {
                (
                    format!(
                        "undefined variable `hosts.{role}`: `{role}` is not a role of this plan"
                    ),
                    suggest(role, cx.roles.iter().map(String::as_str)),
                )
            })
        }
        "steps" => {
            let Some(id) = second else {
                return Some((
                    "`steps` is read as `steps.<id>.result`".into(),
                    Some("name the step: `steps.check_lag.result`, or `steps['check-lag'].result` for ids with `-`".into()),
                ));
            };
            let Some(&target) = cx.index.get(id) else {
                if let Some(full) = cx.index.keys().find(|k| k.starts_with(&format!("{id}-"))) {
                    return Some((
                        format!("`steps.{full}` reads as a subtraction (`steps.{id}` minus …)"),
                        Some(format!(
                            "write `steps['{full}'].result`, or rename the step with `_`"
                        )),
                    ));
                }
                let ids = cx.index.keys().map(String::as_str);
                return Some((
                    format!("undefined variable `steps.{id}`: no step has the id `{id}`"),
                    suggest(id, ids),
                ));
            };
            if path.get(2).is_some_and(|p| p != "result") {
                return Some((
                    format!(
                        "`steps.{id}.{}` is not defined: a step exposes only `steps.{id}.result`",
                        path[2]
                    ),
                    None,
                ));
            }
            let ancestor = match (scope.step, &cx.dag) {
                (Some(me), Some(dag)) => target != me && dag.is_ancestor(target, me),
                _ => false,
            };
            (!ancestor).then(|| {
                let here = scope.step.map(|s| cx.id(s));
                let message = match &here {
                    Some(me) => format!("`steps.{id}.result` is not known when step `{me}` runs: `{me}` does not wait for `{id}`"),
                    None => format!("`steps.{id}.result` is not known before the first step runs"),
                };
                let help = here.map(|me| format!("add `{id}` to the `needs` of `{me}` (directly or through a step it needs)"));
                (message, help)
            })
        }
        "vars" | "secrets" => None, // checked against the site when one is bound
        other => Some((
            format!("undefined variable `{other}`"),
            suggest(other, ROOTS.iter().copied())
                .or_else(|| Some(format!("templates can read {}", ROOTS.join(", ")))),
        )),
    }
}

/// Step ids read with a subscript: `steps['id']` or `steps["id"]`.
fn subscripted_steps(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("steps[") {
        rest = &rest[at + 6..];
        let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        if let Some(end) = rest[1..].find(quote) {
            out.push(rest[1..1 + end].to_string());
        }
    }
    out
}

fn check_script(cx: &mut Checker, pointer: &str, script: &str) {
    for (at, interpolation) in template::unquoted_interpolations(script) {
        let span = cx.doc.span_within(pointer, script, at, interpolation.len());
        let message = if interpolation.contains("shell_quote") {
            format!(
                "`{interpolation}` is pasted into a shell script partly unquoted: `| shell_quote` binds to the value right before it, not to the whole expression"
            )
        } else {
            format!("`{interpolation}` is pasted into a shell script without `| shell_quote`")
        };
        let d = Diagnostic::new("drplan::template::unquoted", message)
            .at(&cx.doc.file, span)
            .label("unquoted interpolation")
            .help("write `{{ … | shell_quote }}`, or pass values as `argv:` instead of a script");
        cx.push(d);
    }
    // A tag (`{% filter %}`, `{% if %}`, …) can rewrite quoted text after it was quoted, so
    // scripts carry interpolations only.
    if let Some(at) = script.find("{%") {
        let len = script[at..].find("%}").map_or(2, |end| end + 2);
        let span = cx.doc.span_within(pointer, script, at, len);
        let d = Diagnostic::new(
            "drplan::template::script_tag",
            "a shell script may not hold template tags (`{% … %}`): they can change text after `shell_quote` quoted it",
        )
        .at(&cx.doc.file, span)
        .label("template tag in a script")
        .help("compute the value in a `vars` entry or a `when:`, interpolate it with `{{ … | shell_quote }}`, or pass values as `argv:`");
        cx.push(d);
    }
}
