//! minijinja, strict: the environment, the `shell_quote` filter, and rendering values.
//!
//! Templates see `params`, `vars`, `hosts.<role>`, `secrets.<name>`, `steps.<id>.result`,
//! and `result` inside `expect`. An undefined name is an error, never an empty string: a
//! failover that silently runs `pg_ctl promote -D ""` is worse than one that stops. This
//! module does no I/O.

mod optional;
mod strict;

pub use optional::optional_variables;

use crate::load::push_token;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;
use std::collections::BTreeSet;

/// Shown in previews for values only known while the plan runs.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";
pub use crate::redact::SENSITIVE;

/// The top-level names a template may use.
pub const ROOTS: &[&str] = &["params", "vars", "hosts", "secrets", "steps", "result"];

/// Does this string hold template syntax (and so need rendering)?
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// How many instructions one render or evaluation may execute. Plans' templates need a few
/// hundred; nested loops in a hostile template would otherwise spin at 100% CPU while the
/// run holds the site lock, deaf to signals.
pub const FUEL: u64 = 200_000;

/// The strict environment every template and expression is compiled in.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_keep_trailing_newline(true);
    env.add_filter("shell_quote", shell_quote);
    env
}

/// The environment, built once per process: templates are parsed tens of thousands of
/// times in a large plan, and building an environment registers every builtin.
pub fn shared() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(environment)
}

/// Quote a value for POSIX sh: `'…'`, with each `'` written as `'\''`.
pub fn shell_quote(value: minijinja::Value) -> String {
    let s = match value.as_str() {
        Some(s) => s.to_string(),
        None => value.to_string(),
    };
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Is this a template or a bare expression (`when`, `expect`)?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Template,
    Expression,
}

/// A variable a template reads, split into dotted parts (`steps.promote.result`).
pub type VarPath = Vec<String>;

/// Parse `text` and list the variables it reads (nested: `vars.pg.port`).
pub fn variables(
    env: &Environment<'_>,
    text: &str,
    form: Form,
) -> Result<BTreeSet<VarPath>, minijinja::Error> {
    let names = match form {
        Form::Template => env.template_from_str(text)?.undeclared_variables(true),
        Form::Expression => strict::compile(env, text)?.undeclared_variables(true),
    };
    Ok(names
        .into_iter()
        .map(|n| n.split('.').map(str::to_string).collect())
        .collect())
}

/// The single expression of a string that is exactly `{{ expr }}`, if it is one.
fn sole_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%"))
        .then_some(inner.trim())
}

/// A piece of a template that only interpolates plain dotted names.
#[derive(Debug, PartialEq)]
enum Part<'a> {
    Lit(&'a str),
    Path(Vec<&'a str>),
}

/// Split a template made only of literal text and `{{ a.b.c }}` interpolations; None for
/// anything else (filters, tags, comments, odd syntax), which minijinja then handles. Most
/// real templates are this simple, and a large plan has tens of thousands of them.
fn simple_parts(s: &str) -> Option<Vec<Part<'_>>> {
    let plain = |t: &str| {
        !t.contains("}}")
            && !t.contains("{%")
            && !t.contains("{#")
            && !t.contains("%}")
            && !t.contains("#}")
    };
    let name = |t: &str| {
        let mut chars = t.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        let (lit, after) = rest.split_at(open);
        if !plain(lit) {
            return None;
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        let close = after.find("}}")?;
        let inner = after[2..close].trim_matches(|c: char| c == ' ');
        let path: Vec<&str> = inner.split('.').collect();
        if inner.is_empty() || !path.iter().all(|p| name(p)) {
            return None;
        }
        parts.push(Part::Path(path));
        rest = &after[close + 2..];
    }
    if !plain(rest) || rest.contains("{{") {
        return None;
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest));
    }
    Some(parts)
}

/// Render a simple template by looking its names up directly; None when a value would need
/// minijinja's own formatting (booleans print as `True`, lists and maps as literals) or is
/// undefined (which minijinja reports).
fn render_simple(parts: &[Part<'_>], ctx: &Value) -> Option<Value> {
    let lookup = |path: &[&str]| path.iter().try_fold(ctx, |v, key| v.get(key));
    if let [Part::Path(path)] = parts {
        return lookup(path).cloned();
    }
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Lit(l) => out.push_str(l),
            Part::Path(path) => match lookup(path)? {
                Value::String(s) => out.push_str(s),
                Value::Number(n) if n.is_i64() || n.is_u64() => out.push_str(&n.to_string()),
                _ => return None,
            },
        }
    }
    Some(Value::String(out))
}

/// Render every string in `value`. A string that is one whole `{{ expr }}` keeps the
/// expression's type (`port: "{{ vars.pg.port }}"` becomes the number 5432).
pub fn render_value(
    env: &Environment<'_>,
    value: &Value,
    ctx: &Value,
) -> Result<Value, minijinja::Error> {
    Ok(match value {
        Value::String(s) if is_template(s) => {
            match simple_parts(s).and_then(|parts| render_simple(&parts, ctx)) {
                Some(v) => v,
                None => render_template(env, s, ctx)?,
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(env, v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(env, v, ctx)?)))
                .collect::<Result<_, minijinja::Error>>()?,
        ),
        other => other.clone(),
    })
}

/// One template string through minijinja.
fn render_template(env: &Environment<'_>, s: &str, ctx: &Value) -> Result<Value, minijinja::Error> {
    if let Some(expr) = sole_expression(s) {
        return to_json(eval(env, expr, ctx)?);
    }
    if let Some(text) = render_interpolations(env, s, ctx) {
        return text.map(Value::String);
    }
    Ok(Value::String(env.render_str(s, ctx)?))
}

/// Text with `{{ expr }}` interpolations and no tags, each expression evaluated strictly
/// (like `when`/`expect`) and printed as minijinja prints it. None for anything else (tags,
/// comments, whitespace control), which minijinja renders as a whole.
fn render_interpolations(
    env: &Environment<'_>,
    s: &str,
    ctx: &Value,
) -> Option<Result<String, minijinja::Error>> {
    if s.contains("{%") || s.contains("{#") {
        return None;
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        let close = open + rest[open..].find("}}")?;
        let inner = &rest[open + 2..close];
        if inner.starts_with('-') || inner.ends_with('-') || inner.contains("{{") {
            return None;
        }
        out.push_str(&rest[..open]);
        match eval(env, inner.trim(), ctx) {
            Ok(v) => out.push_str(&v.to_string()),
            Err(e) => return Some(Err(e)),
        }
        rest = &rest[close + 2..];
    }
    if rest.contains("}}") {
        return None;
    }
    out.push_str(rest);
    Some(Ok(out))
}

fn to_json(v: minijinja::Value) -> Result<Value, minijinja::Error> {
    serde_json::to_value(&v)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string()))
}

/// Every string that the templates in `value` derive from `secrets.*` when rendered with
/// `ctx`: the value of each sub-expression that reads a secret (`secrets.pw | upper`, a
/// slice of it, a `~` with it), and the whole text of a template with tags that reads one.
/// These are as sensitive as the secret itself. Templates that fail to render give what
/// they can; rendering reports the error.
pub fn secret_renderings(env: &Environment<'_>, value: &Value, ctx: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match value {
        Value::String(s) if is_template(s) && s.contains("secrets") => {
            if s.contains("{%") || s.contains("{#") {
                if let Ok(Value::String(whole)) = render_template(env, s, ctx) {
                    out.push(whole);
                }
            } else {
                for inner in interpolations(s) {
                    out.extend(strict::secret_strings(env, inner, ctx));
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                out.extend(secret_renderings(env, v, ctx));
            }
        }
        Value::Object(o) => {
            for v in o.values() {
                out.extend(secret_renderings(env, v, ctx));
            }
        }
        _ => {}
    }
    out
}

/// The expressions of the `{{ … }}` in `s` (whitespace control stripped).
pub(super) fn interpolations(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        let Some(len) = rest[open..].find("}}") else {
            break;
        };
        out.push(rest[open + 2..open + len].trim_matches(|c: char| c == '-' || c.is_whitespace()));
        rest = &rest[open + len + 2..];
    }
    out
}

/// Compile an expression from a plan (`minijinja::Environment::compile_expression`, guarded
/// against input that makes minijinja's parser panic).
pub fn compile_expression<'s>(
    env: &'s Environment<'s>,
    expr: &'s str,
) -> Result<minijinja::Expression<'s, 's>, minijinja::Error> {
    strict::compile(env, expr)
}

/// Evaluate an expression; an undefined result is an error (strict mode only catches
/// undefined values when they are printed or looked into), and so is an ordering
/// comparison or arithmetic with none, undefined, or a number against a string (see
/// `strict`).
pub fn eval(
    env: &Environment<'_>,
    expr: &str,
    ctx: &Value,
) -> Result<minijinja::Value, minijinja::Error> {
    let v = strict::eval(env, expr, ctx)?;
    if v.is_undefined() {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::UndefinedError,
            format!("`{expr}` is undefined"),
        ));
    }
    Ok(v)
}

/// Evaluate a `when`/`expect` expression to a boolean (minijinja truthiness).
pub fn eval_bool(env: &Environment<'_>, expr: &str, ctx: &Value) -> Result<bool, minijinja::Error> {
    Ok(eval(env, expr, ctx)?.is_true())
}

/// A filter, test or function that a template uses and minijinja (as drplan sets it up)
/// does not have: it would fail only when rendered, mid-run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// `filter`, `test` or `function`
    pub kind: &'static str,
    pub name: String,
}

/// Every filter, test and function in `text` that does not exist, in order, once each.
/// Empty when `text` does not compile (its syntax error is reported elsewhere).
pub fn unknown_names(env: &Environment<'_>, text: &str, form: Form) -> Vec<UnknownName> {
    use minijinja::machinery::{Instruction, get_compiled_template};
    // Most templates only interpolate names: nothing to look up, and a large plan has tens
    // of thousands of them.
    if !text.contains('|') && !text.contains(" is ") && !text.contains('(') {
        return Vec::new();
    }
    // An expression is compiled as the one interpolation of a template, so that both
    // forms give instructions to look at.
    let wrapped;
    let source = match form {
        Form::Template => text,
        Form::Expression => {
            wrapped = format!("{{{{ {text} }}}}");
            &wrapped
        }
    };
    let Ok(template) = env.template_from_str(source) else {
        return Vec::new();
    };
    let compiled = get_compiled_template(&template);
    let all = std::iter::once(&compiled.instructions).chain(compiled.blocks.values());
    let mut locals = BTreeSet::new();
    let mut used = Vec::new();
    for instructions in all {
        for i in 0..instructions.len() {
            match instructions.get(i as u32) {
                Some(Instruction::ApplyFilter(name, ..)) => used.push(("filter", *name)),
                Some(Instruction::PerformTest(name, ..)) => used.push(("test", *name)),
                Some(Instruction::CallFunction(name, ..)) => used.push(("function", *name)),
                // A macro (or any name the template sets) may be called like a function.
                Some(Instruction::StoreLocal(name)) => {
                    locals.insert(*name);
                }
                _ => {}
            }
        }
    }
    let mut out: Vec<UnknownName> = Vec::new();
    for (kind, name) in used {
        let known = match kind {
            "function" => {
                locals.contains(name)
                    || ["loop", "super", "caller"].contains(&name)
                    || env.globals().any(|(g, _)| g == name)
            }
            _ => exists(env, kind, name),
        };
        let unknown = UnknownName {
            kind,
            name: name.to_owned(),
        };
        if !known && !out.contains(&unknown) {
            out.push(unknown);
        }
    }
    out
}

/// Does the filter or test `name` exist? Asked of minijinja itself: applying an unknown one
/// fails with its own error kind before any argument is looked at.
fn exists(env: &Environment<'_>, kind: &str, name: &str) -> bool {
    let probe = match kind {
        "filter" => format!("none | {name}"),
        _ => format!("none is {name}"),
    };
    let unknown = match kind {
        "filter" => minijinja::ErrorKind::UnknownFilter,
        _ => minijinja::ErrorKind::UnknownTest,
    };
    match env.compile_expression(&probe) {
        Ok(expr) => !matches!(expr.eval(()), Err(e) if e.kind() == unknown),
        Err(_) => false,
    }
}

/// `{{ … }}` interpolations in an `exec` script that are not piped into `shell_quote` last:
/// each is (byte offset in the script, the interpolation's text).
pub fn unquoted_interpolations(script: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut rest = script;
    let mut base = 0;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let inner =
            rest[start + 2..start + len].trim_matches(|c: char| c == '-' || c.is_whitespace());
        // The outermost operation must be the filter: in `v ~ '' | shell_quote` the filter
        // binds to `''` and `v` goes into the script as it is.
        let quoted = matches!(
            strict::parse(inner),
            Ok(minijinja::machinery::ast::Expr::Filter(f)) if f.name == "shell_quote"
        );
        if !quoted {
            out.push((base + start, rest[start..start + len + 2].to_string()));
        }
        base += start + len + 2;
        rest = &rest[start + len + 2..];
    }
    out
}

/// Call `f` for every template or expression string in a plan document.
pub fn walk_templates(v: &Value, pointer: &str, f: &mut impl FnMut(&str, &str, Form)) {
    walk_in_place(v, &mut pointer.to_owned(), f);
}

/// `walk_templates` with the pointer grown and shrunk in place (no string per node).
fn walk_in_place(v: &Value, pointer: &mut String, f: &mut impl FnMut(&str, &str, Form)) {
    let at = pointer.len();
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                push_token(pointer, k);
                match (k.as_str(), x) {
                    ("when" | "expect", Value::String(s)) => f(pointer, s, Form::Expression),
                    _ => walk_in_place(x, pointer, f),
                }
                pointer.truncate(at);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                push_token(pointer, &i.to_string());
                walk_in_place(x, pointer, f);
                pointer.truncate(at);
            }
        }
        Value::String(s) if is_template(s) => f(pointer, s, Form::Template),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shell_quote_survives_hostile_values() {
        let env = environment();
        let ctx = json!({ "v": "a'b $(rm -rf /) `x` \"q\"\nline" });
        let out = env
            .render_str("printf %s {{ v | shell_quote }}", &ctx)
            .unwrap();
        let sh = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&sh.stdout),
            ctx["v"].as_str().unwrap()
        );
    }

    #[test]
    fn a_whole_expression_keeps_its_type() {
        let env = environment();
        let ctx = json!({ "vars": { "port": 5432, "dir": "/d" } });
        let v = render_value(
            &env,
            &json!({ "p": "{{ vars.port }}", "s": "-D {{ vars.dir }}", "n": 3 }),
            &ctx,
        )
        .unwrap();
        assert_eq!(v, json!({ "p": 5432, "s": "-D /d", "n": 3 }));
    }

    #[test]
    fn simple_templates_take_the_fast_path_and_agree_with_minijinja() {
        let env = environment();
        let ctx = json!({ "vars": { "port": 5432, "dir": "/d", "on": true, "list": [1] } });
        for t in [
            "{{ vars.dir }}/x",
            "-p {{ vars.port }} {{vars.on}}",
            "{{ vars.dir }}{{ vars.port }}",
        ] {
            assert!(simple_parts(t).is_some(), "{t}");
            let fast = render_value(&env, &json!(t), &ctx).unwrap();
            assert_eq!(fast, json!(env.render_str(t, &ctx).unwrap()), "{t}");
        }
        // Anything else goes to minijinja: filters, tags, unclosed or odd syntax.
        for t in [
            "{{ vars.dir | upper }}",
            "{% if x %}y{% endif %}",
            "{{ vars.dir }",
            "{{ steps['a-b'].result }}",
            "{{ vars.x }} }}",
            "{# c #}{{ a }}",
        ] {
            assert!(simple_parts(t).is_none(), "{t}");
        }
        // A list is not formatted by the fast path; minijinja decides.
        assert!(render_value(&env, &json!("x {{ vars.list }}"), &ctx).is_ok());
        assert!(render_value(&env, &json!("x {{ vars.nope }}"), &ctx).is_err());
    }

    #[test]
    fn interpolations_in_text_are_strict_too() {
        let env = environment();
        let ctx = json!({ "vars": { "n": null, "m": 3, "s": "a b" } });
        let err = render_value(&env, &json!("x{{ vars.n < 1 }}"), &ctx).unwrap_err();
        assert!(err.to_string().contains("(none)"), "{err}");
        // What minijinja can compare, it prints exactly as minijinja itself does.
        let text = "x{{ vars.m < 4 }} {{ vars.s | upper }} {{ vars.n }} {{ [1, 'a'] }}";
        let ours = render_value(&env, &json!(text), &ctx).unwrap();
        assert_eq!(ours, json!(env.render_str(text, &ctx).unwrap()));
    }

    #[test]
    fn rendering_is_bounded() {
        let env = environment();
        let spin = "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}";
        let started = std::time::Instant::now();
        let err = render_value(&env, &json!(spin), &json!({})).unwrap_err();
        assert!(err.to_string().contains("fuel"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn undefined_names_are_errors() {
        let env = environment();
        assert!(render_value(&env, &json!("{{ vars.nope }}"), &json!({ "vars": {} })).is_err());
        assert!(
            env.render_str("x {{ vars.a.b }}", json!({ "vars": { "a": {} } }))
                .is_err()
        );
    }

    #[test]
    fn finds_interpolations_without_shell_quote() {
        let s = "cp {{ a | shell_quote }} {{ b }} {{- c|shell_quote -}} {{ d | upper }} {{ e ~ '' | shell_quote }} {{ (f ~ g) | shell_quote }}";
        let bad: Vec<String> = unquoted_interpolations(s)
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(
            bad,
            vec!["{{ b }}", "{{ d | upper }}", "{{ e ~ '' | shell_quote }}"]
        );
    }

    #[test]
    fn what_a_template_makes_of_a_secret_is_found() {
        let env = environment();
        let ctx = json!({ "secrets": { "pw": "a/b" }, "vars": { "u": "app" } });
        let t = json!({
            "url": "pg://{{ vars.u }}:{{ secrets.pw | replace('/', '%2F') | upper }}@db",
            "list": ["{{ secrets.pw[1:] ~ '!' }}", "{{ 'yes' if secrets.pw else 'no' }}"],
            "plain": "{{ vars.u | upper }}",
        });
        let mut found = secret_renderings(&env, &t, &ctx);
        found.sort();
        found.dedup();
        assert_eq!(found, ["/b", "/b!", "A%2FB", "a%2Fb", "a/b"]);
        // With tags, the whole text is sensitive.
        let tagged = json!("{% if secrets.pw %}on {{ vars.u }}{% endif %}");
        assert_eq!(secret_renderings(&env, &tagged, &ctx), ["on app"]);
    }

    #[test]
    fn unknown_filters_tests_and_functions_are_found() {
        let env = environment();
        let names = |t: &str, form| {
            unknown_names(&env, t, form)
                .into_iter()
                .map(|u| format!("{} {}", u.kind, u.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(
                "{{ a | nosuchfilter }} {{ b | urlencode | tojson }} {% if c is nosuchtest %}{{ nosuchfn() }}{% endif %}",
                Form::Template
            ),
            [
                "filter nosuchfilter",
                "filter urlencode",
                "filter tojson",
                "test nosuchtest",
                "function nosuchfn"
            ]
        );
        assert_eq!(
            names("result.x | nosuch > 1", Form::Expression),
            ["filter nosuch"]
        );
        // Builtins, drplan's own filter, macros and blocks of filters are known.
        let fine = "{% macro m(x) %}{{ x | upper }}{% endmacro %}{{ m(a) }} {{ a | shell_quote | replace('a', 'b') | length }} {% for i in range(3) %}{{ loop.index }}{% endfor %} {% filter upper %}x{% endfilter %} {{ a is defined and b is number }} {{ dict(a=1) | items | list }}";
        assert_eq!(names(fine, Form::Template), Vec::<String>::new());
        assert_eq!(
            names(
                "result.size > 2 and result.name is string",
                Form::Expression
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn lists_nested_variables() {
        let env = environment();
        let vars = variables(
            &env,
            "{{ steps.a.result.x }} {{ vars.pg.port }}",
            Form::Template,
        )
        .unwrap();
        assert!(vars.contains(&vec![
            "steps".to_string(),
            "a".into(),
            "result".into(),
            "x".into()
        ]));
        let vars = variables(
            &env,
            "result.in_recovery and params.max <= 3",
            Form::Expression,
        )
        .unwrap();
        assert!(vars.iter().any(|v| v[0] == "result"));
    }
}
