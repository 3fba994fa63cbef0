//! Site values a template may do without: a name read only as `x | default(…)`, or tested
//! with `x is defined` / `x is undefined`. The site binding lets a site leave such a value
//! out (its last name only: `vars.pg` must still exist for `vars.pg.control | default(…)`),
//! where every other name the plan reads must be in the site.

use super::strict::{children, parse};
use super::{Form, VarPath, interpolations, sole_expression};
use minijinja::machinery::ast::Expr;
use std::collections::BTreeSet;

/// The variables `text` reads only through `default` or a `defined`/`undefined` test. Only
/// expressions (`when`, `expect`) and `{{ … }}` interpolations in text without tags are
/// looked into; a name in a tag is never optional.
pub fn optional_variables(text: &str, form: Form) -> BTreeSet<VarPath> {
    let mut walk = Walk::default();
    let expressions: Vec<&str> = match form {
        Form::Expression => vec![text],
        Form::Template if text.contains("{%") || text.contains("{#") => Vec::new(),
        Form::Template => match sole_expression(text) {
            Some(expr) => vec![expr],
            None => interpolations(text),
        },
    };
    for expr in expressions {
        match parse(expr) {
            Ok(ast) => walk.expr(&ast),
            Err(_) => return BTreeSet::new(),
        }
    }
    walk.guarded.difference(&walk.plain).cloned().collect()
}

/// Paths read under a guard, and paths read plainly (which a guard elsewhere does not excuse).
#[derive(Default)]
struct Walk {
    guarded: BTreeSet<VarPath>,
    plain: BTreeSet<VarPath>,
}

impl Walk {
    fn expr(&mut self, e: &Expr<'_>) {
        let operand = match e {
            Expr::Filter(f) if f.name == "default" => f.expr.as_ref(),
            Expr::Test(t) if t.name == "defined" || t.name == "undefined" => Some(&t.expr),
            _ => None,
        };
        if let Some(path) = operand.and_then(path_of) {
            self.guarded.insert(path);
            // The guard's own arguments (`default(vars.x)`) are read plainly.
            for child in children(e).into_iter().skip(1) {
                self.expr(child);
            }
            return;
        }
        if let Some(path) = path_of(e) {
            self.plain.insert(path);
            return;
        }
        for child in children(e) {
            self.expr(child);
        }
    }
}

/// `a.b.c` or `a['b'].c` as a path; None for anything computed.
fn path_of(e: &Expr<'_>) -> Option<VarPath> {
    match e {
        Expr::Var(v) => Some(vec![v.id.to_string()]),
        Expr::GetAttr(g) => {
            let mut p = path_of(&g.expr)?;
            p.push(g.name.to_string());
            Some(p)
        }
        Expr::GetItem(g) => {
            let Expr::Const(c) = &g.subscript_expr else {
                return None;
            };
            let mut p = path_of(&g.expr)?;
            p.push(c.value.as_str()?.to_string());
            Some(p)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(text: &str, form: Form) -> Vec<String> {
        optional_variables(text, form)
            .into_iter()
            .map(|p| p.join("."))
            .collect()
    }

    #[test]
    fn a_default_or_a_defined_test_makes_the_last_name_optional() {
        assert_eq!(
            paths(
                "{{ hosts.pg1.vars.pg.control | default('pg_ctl') }}",
                Form::Template
            ),
            ["hosts.pg1.vars.pg.control"]
        );
        assert_eq!(
            paths(
                "-D {{ vars.a | default('x') }} -p {{ vars.b }}",
                Form::Template
            ),
            ["vars.a"]
        );
        assert_eq!(
            paths(
                "vars.c is defined and vars['d'] is undefined",
                Form::Expression
            ),
            ["vars.c", "vars.d"]
        );
        // Read plainly somewhere else in the same text: not optional.
        assert!(paths("{{ vars.a | default(1) }}{{ vars.a }}", Form::Template).is_empty());
        // The default's own argument is read plainly.
        assert_eq!(
            paths("{{ vars.a | default(vars.b) }}", Form::Template),
            ["vars.a"]
        );
        // Tags, computed names and other filters are never optional.
        assert!(
            paths(
                "{% if x %}{{ vars.a | default(1) }}{% endif %}",
                Form::Template
            )
            .is_empty()
        );
        assert!(paths("{{ (vars.a ~ 'x') | default(1) }}", Form::Template).is_empty());
        assert!(paths("{{ vars.a | upper }}", Form::Template).is_empty());
    }

    #[test]
    fn strict_rendering_takes_the_default_for_a_missing_name() {
        let env = super::super::environment();
        let ctx = json!({ "vars": { "pg": { "port": 1 } } });
        let v = super::super::render_value(
            &env,
            &json!({
                "c": "{{ vars.pg.control | default('pg_ctl') }}",
                "p": "{{ vars.pg.port | default(5432) }}",
            }),
            &ctx,
        )
        .unwrap();
        assert_eq!(v, json!({ "c": "pg_ctl", "p": 1 }));
        // Only the last name may be missing.
        assert!(
            super::super::render_value(&env, &json!("{{ vars.x.y | default(1) }}"), &ctx).is_err()
        );
    }
}
