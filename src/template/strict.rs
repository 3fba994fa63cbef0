//! Strict evaluation of `when`/`expect`/`until` expressions.
//!
//! minijinja orders every value against every other (none sorts below numbers), so
//! `0 >= result.size` is *true* when `size` is null — a failback once waited for a standby
//! to catch up and passed against a null LSN. Here an ordering comparison (`<`, `<=`, `>`,
//! `>=`) needs two numbers or two strings, and arithmetic refuses none, undefined, and a
//! number mixed with a string: anything else is an error naming the operands and their
//! values, so the check fails loudly instead of answering true or false. `is none`,
//! `is defined` and `==` stay as they are, for those who mean them.
//!
//! How: the expression is parsed (minijinja's own parser), and the nodes that can hide
//! such a comparison are walked here in minijinja's evaluation order, short-circuits
//! included; each operand is evaluated by minijinja from its own source text, checked, and
//! the node's value is again minijinja's. So every value means exactly what minijinja says
//! it means; this file only refuses the comparisons that have no meaning.

use minijinja::machinery::ast::{BinOpKind, CallArg, CompareOpKind, Expr, UnaryOpKind};
use minijinja::machinery::{Span, parse_expr};
use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, Value};

/// Evaluate `expr` against `ctx` with the strict rules above.
pub(super) fn eval(
    env: &Environment<'_>,
    expr: &str,
    ctx: &serde_json::Value,
) -> Result<Value, Error> {
    let ast = parse(expr)?;
    let walk = Walk {
        env,
        src: expr,
        ctx,
    };
    walk.value(&ast)
}

/// The string values of every sub-expression of `expr` that reads `secrets` (the secret
/// itself, and whatever filters, slices or concatenations made of it). Sub-expressions that
/// cannot be evaluated on their own are left out.
pub(super) fn secret_strings(
    env: &Environment<'_>,
    expr: &str,
    ctx: &serde_json::Value,
) -> Vec<String> {
    let Ok(ast) = parse(expr) else {
        return Vec::new();
    };
    let walk = Walk {
        env,
        src: expr,
        ctx,
    };
    let mut out = Vec::new();
    walk.secret_strings(&ast, &mut out);
    out
}

/// minijinja's parser for one expression, which panics (2.24: "empty lexer stack") when the
/// text holds a `}}` outside a string and anything after it: refused first, as the syntax
/// error it is. Found by the `template` fuzz target; every expression drplan compiles from
/// a plan goes through here or `compile`.
pub(super) fn parse(expr: &str) -> Result<Expr<'_>, Error> {
    refuse_interpolation_end(expr)?;
    parse_expr(expr)
}

/// `env.compile_expression`, with `parse`'s guard.
pub(super) fn compile<'s>(
    env: &'s Environment<'s>,
    expr: &'s str,
) -> Result<minijinja::Expression<'s, 's>, Error> {
    refuse_interpolation_end(expr)?;
    env.compile_expression(expr)
}

fn refuse_interpolation_end(expr: &str) -> Result<(), Error> {
    let (mut quote, mut escaped) = (None, false);
    let bytes = expr.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == q {
                    quote = None;
                }
            }
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'}' && bytes.get(i + 1) == Some(&b'}') => {
                return Err(Error::new(
                    ErrorKind::SyntaxError,
                    "`}}` ends a `{{ … }}` interpolation and cannot appear in an expression",
                ));
            }
            None => {}
        }
    }
    Ok(())
}

struct Walk<'a> {
    env: &'a Environment<'a>,
    src: &'a str,
    ctx: &'a serde_json::Value,
}

impl Walk<'_> {
    fn value(&self, e: &Expr<'_>) -> Result<Value, Error> {
        if !hides_ordering(e) {
            return self.minijinja(e);
        }
        match e {
            Expr::BinOp(b) => match b.op {
                BinOpKind::ScAnd | BinOpKind::ScOr => {
                    let left = self.value(&b.left)?;
                    if left.is_true() == matches!(b.op, BinOpKind::ScOr) {
                        return Ok(left);
                    }
                    self.value(&b.right)
                }
                BinOpKind::Lt | BinOpKind::Lte | BinOpKind::Gt | BinOpKind::Gte => {
                    let (l, r) = (self.value(&b.left)?, self.value(&b.right)?);
                    self.orderable(&b.left, &l, &b.right, &r)?;
                    self.minijinja(e)
                }
                BinOpKind::Add
                | BinOpKind::Sub
                | BinOpKind::Mul
                | BinOpKind::Div
                | BinOpKind::FloorDiv
                | BinOpKind::Rem
                | BinOpKind::Pow => {
                    let (l, r) = (self.value(&b.left)?, self.value(&b.right)?);
                    self.computable(&b.left, &l, &b.right, &r)?;
                    self.minijinja(e)
                }
                _ => {
                    self.value(&b.left)?;
                    self.value(&b.right)?;
                    self.minijinja(e)
                }
            },
            Expr::Compare(c) => {
                let mut left = (&c.expr, self.value(&c.expr)?);
                for op in &c.ops {
                    let right = self.value(&op.expr)?;
                    if matches!(
                        op.op,
                        CompareOpKind::Lt
                            | CompareOpKind::Lte
                            | CompareOpKind::Gt
                            | CompareOpKind::Gte
                    ) {
                        self.orderable(left.0, &left.1, &op.expr, &right)?;
                    }
                    left = (&op.expr, right);
                }
                self.minijinja(e)
            }
            Expr::UnaryOp(u) => {
                let v = self.value(&u.expr)?;
                match u.op {
                    UnaryOpKind::Not => Ok(Value::from(!v.is_true())),
                    UnaryOpKind::Neg => {
                        if v.kind() != ValueKind::Number {
                            return Err(refuse(format!(
                                "cannot negate `{}`: it is {}, not a number",
                                self.text(&u.expr),
                                shown(&v)
                            )));
                        }
                        self.minijinja(e)
                    }
                }
            }
            Expr::IfExpr(i) => {
                if self.value(&i.test_expr)?.is_true() {
                    self.value(&i.true_expr)
                } else {
                    match &i.false_expr {
                        Some(f) => self.value(f),
                        None => self.minijinja(e),
                    }
                }
            }
            other => {
                for child in children(other) {
                    if hides_ordering(child) {
                        self.value(child)?;
                    }
                }
                self.minijinja(other)
            }
        }
    }

    /// Push the string value of `e` and of each node below it that reads `secrets`; true
    /// when `e` reads it.
    fn secret_strings(&self, e: &Expr<'_>, out: &mut Vec<String>) -> bool {
        let mut reads = matches!(e, Expr::Var(v) if v.id == "secrets");
        let mut derived = reads;
        for child in children(e) {
            let child_reads = self.secret_strings(child, out);
            reads |= child_reads;
            // `'yes' if secrets.pw else 'no'`: the condition chooses the value, it is not in
            // it (and masking every `yes` would hide ordinary words).
            let condition = matches!(e, Expr::IfExpr(i) if std::ptr::eq(child, &i.test_expr));
            derived |= child_reads && !condition;
        }
        if derived
            && let Ok(v) = self.minijinja(e)
            && let Some(s) = v.as_str()
        {
            out.push(s.to_owned());
        }
        reads
    }

    /// minijinja's value of one node, from its own source text.
    fn minijinja(&self, e: &Expr<'_>) -> Result<Value, Error> {
        compile(self.env, self.text(e))?.eval(self.ctx)
    }

    /// The node's source text. minijinja's spans end right but do not always start right
    /// (a comparison's starts at the token before it, a test's at the test's name), so a
    /// node that begins with an operand starts where that operand's text starts, widened
    /// over the parentheses the operand opened.
    fn text(&self, e: &Expr<'_>) -> &str {
        let end = span(e).end_offset as usize;
        let mut start = self.start(e);
        while balance(&self.src[start..end]) < 0 {
            match self.src[..start].trim_end().strip_suffix('(') {
                Some(before) => start = before.len(),
                None => break,
            }
        }
        self.src[start..end].trim()
    }

    fn start(&self, e: &Expr<'_>) -> usize {
        match (e, leftmost(e)) {
            (_, Some(left)) => self.offset(self.text(left)),
            // `x is not none` is `not (x is none)`, its span starting at `not`, after `x`:
            // a negation starts at the earlier of its own start and its operand's.
            (Expr::UnaryOp(u), None) => {
                (span(e).start_offset as usize).min(self.offset(self.text(&u.expr)))
            }
            (_, None) => span(e).start_offset as usize,
        }
    }

    /// Where `text`, a slice of the source, starts in it.
    fn offset(&self, text: &str) -> usize {
        text.as_ptr() as usize - self.src.as_ptr() as usize
    }

    fn orderable(&self, le: &Expr<'_>, l: &Value, re: &Expr<'_>, r: &Value) -> Result<(), Error> {
        let ok = matches!(
            (l.kind(), r.kind()),
            (ValueKind::Number, ValueKind::Number) | (ValueKind::String, ValueKind::String)
        );
        if ok {
            return Ok(());
        }
        Err(refuse(format!(
            "cannot order `{}` ({}) against `{}` ({}): an ordering comparison needs two numbers or two strings",
            self.text(le),
            shown(l),
            self.text(re),
            shown(r)
        )))
    }

    fn computable(&self, le: &Expr<'_>, l: &Value, re: &Expr<'_>, r: &Value) -> Result<(), Error> {
        let missing = |v: &Value| v.is_undefined() || v.is_none();
        let mixed = matches!(
            (l.kind(), r.kind()),
            (ValueKind::Number, ValueKind::String) | (ValueKind::String, ValueKind::Number)
        );
        if !missing(l) && !missing(r) && !mixed {
            return Ok(());
        }
        Err(refuse(format!(
            "cannot compute with `{}` ({}) and `{}` ({})",
            self.text(le),
            shown(l),
            self.text(re),
            shown(r)
        )))
    }
}

fn refuse(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// Open minus closed parentheses outside string literals.
fn balance(text: &str) -> i32 {
    let (mut depth, mut quote, mut escaped) = (0, None, false);
    for c in text.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            },
        }
    }
    depth
}

/// A value as messages show it: `none`, `undefined`, `"text"`, `42`.
fn shown(v: &Value) -> String {
    if v.is_undefined() {
        "undefined".into()
    } else if v.is_none() {
        "none".into()
    } else if let Some(s) = v.as_str() {
        format!("{s:?}")
    } else {
        v.to_string()
    }
}

/// Does evaluating this node involve an ordering comparison, arithmetic, or a branch whose
/// untaken side must not be evaluated? Only then is it walked here.
fn hides_ordering(e: &Expr<'_>) -> bool {
    let here = match e {
        Expr::BinOp(b) => !matches!(b.op, BinOpKind::Eq | BinOpKind::Ne | BinOpKind::Concat),
        Expr::Compare(_) | Expr::IfExpr(_) => true,
        Expr::UnaryOp(u) => matches!(u.op, UnaryOpKind::Neg),
        _ => false,
    };
    here || children(e).into_iter().any(hides_ordering)
}

/// The operand a node's source text begins with, if it begins with one.
fn leftmost<'x, 'a>(e: &'x Expr<'a>) -> Option<&'x Expr<'a>> {
    match e {
        Expr::BinOp(b) => Some(&b.left),
        Expr::Compare(c) => Some(&c.expr),
        Expr::Test(t) => Some(&t.expr),
        Expr::Filter(f) => f.expr.as_ref(),
        Expr::GetAttr(g) => Some(&g.expr),
        Expr::GetItem(g) => Some(&g.expr),
        Expr::Slice(s) => Some(&s.expr),
        Expr::Call(c) => Some(&c.expr),
        Expr::IfExpr(i) => Some(&i.true_expr),
        Expr::Var(_) | Expr::Const(_) | Expr::UnaryOp(_) | Expr::List(_) | Expr::Map(_) => None,
    }
}

fn span(e: &Expr<'_>) -> Span {
    match e {
        Expr::Var(s) => s.span(),
        Expr::Const(s) => s.span(),
        Expr::Slice(s) => s.span(),
        Expr::UnaryOp(s) => s.span(),
        Expr::BinOp(s) => s.span(),
        Expr::Compare(s) => s.span(),
        Expr::IfExpr(s) => s.span(),
        Expr::Filter(s) => s.span(),
        Expr::Test(s) => s.span(),
        Expr::GetAttr(s) => s.span(),
        Expr::GetItem(s) => s.span(),
        Expr::Call(s) => s.span(),
        Expr::List(s) => s.span(),
        Expr::Map(s) => s.span(),
    }
}

/// The sub-expressions of a node, in evaluation order.
pub(super) fn children<'x, 'a>(e: &'x Expr<'a>) -> Vec<&'x Expr<'a>> {
    let args = |args: &'x [CallArg<'a>]| {
        args.iter().map(|a| match a {
            CallArg::Pos(x)
            | CallArg::Kwarg(_, x)
            | CallArg::PosSplat(x)
            | CallArg::KwargSplat(x) => x,
        })
    };
    match e {
        Expr::Var(_) | Expr::Const(_) => Vec::new(),
        Expr::Slice(s) => std::iter::once(&s.expr)
            .chain(s.start.iter())
            .chain(s.stop.iter())
            .chain(s.step.iter())
            .collect(),
        Expr::UnaryOp(u) => vec![&u.expr],
        Expr::BinOp(b) => vec![&b.left, &b.right],
        Expr::Compare(c) => std::iter::once(&c.expr)
            .chain(c.ops.iter().map(|o| &o.expr))
            .collect(),
        Expr::IfExpr(i) => std::iter::once(&i.test_expr)
            .chain(std::iter::once(&i.true_expr))
            .chain(i.false_expr.iter())
            .collect(),
        Expr::Filter(f) => f.expr.iter().chain(args(&f.args)).collect(),
        Expr::Test(t) => std::iter::once(&t.expr).chain(args(&t.args)).collect(),
        Expr::GetAttr(g) => vec![&g.expr],
        Expr::GetItem(g) => vec![&g.expr, &g.subscript_expr],
        Expr::Call(c) => std::iter::once(&c.expr).chain(args(&c.args)).collect(),
        Expr::List(l) => l.items.iter().collect(),
        Expr::Map(m) => m
            .keys
            .iter()
            .zip(&m.values)
            .flat_map(|(k, v)| [k, v])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(expr: &str, ctx: serde_json::Value) -> Result<bool, String> {
        let env = super::super::environment();
        eval(&env, expr, &ctx)
            .map(|v| v.is_true())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn ordering_against_none_is_an_error_naming_the_values() {
        let ctx = json!({ "result": { "size": null, "lsn": "0/3000" } });
        let err = run("0 >= result.size", ctx.clone()).unwrap_err();
        assert!(err.contains("`result.size` (none)"), "{err}");
        assert!(err.contains("`0` (0)"), "{err}");
        assert!(run("result.lsn > 3", ctx.clone()).is_err());
        assert!(run("result.missing < 3", ctx.clone()).is_err());
        assert!(run("1 < result.size < 3", ctx.clone()).is_err());
        assert!(run("result.size + 1 > 0", ctx.clone()).is_err());
        assert!(run("(result.size * 2) | string", ctx.clone()).is_err());
        assert!(run("-result.size", ctx).is_err());
    }

    #[test]
    fn a_negated_test_is_read_from_its_operand_on() {
        let ctx = json!({ "result": { "replica": { "state": "streaming" }, "gone": null } });
        let both = "result.replica is not none and result.replica.state == 'streaming'";
        assert_eq!(run(both, ctx.clone()), Ok(true));
        assert_eq!(run("result.replica is not none", ctx.clone()), Ok(true));
        assert_eq!(
            run("result.gone is not none and true", ctx.clone()),
            Ok(false)
        );
        assert_eq!(run("not (result.gone is none) or true", ctx), Ok(true));
    }

    #[test]
    fn meaningful_expressions_keep_minijinja_semantics() {
        let ctx = json!({ "result": { "size": 3, "name": "b", "none": null, "up": true } });
        assert_eq!(run("result.size >= 3", ctx.clone()), Ok(true));
        assert_eq!(
            run("result.size + 1 > 3 and result.name > 'a'", ctx.clone()),
            Ok(true)
        );
        assert_eq!(run("1 < result.size < 3", ctx.clone()), Ok(false));
        assert_eq!(run("result.none is none", ctx.clone()), Ok(true));
        assert_eq!(run("result.none == none", ctx.clone()), Ok(true));
        assert_eq!(run("result.missing is defined", ctx.clone()), Ok(false));
        assert_eq!(run("not result.up", ctx.clone()), Ok(false));
        assert_eq!(run("[result.size > 1] | first", ctx.clone()), Ok(true));
        assert_eq!(run("'b' in result.name", ctx.clone()), Ok(true));
        assert_eq!(
            run("result.up and (result.size) > 2", ctx.clone()),
            Ok(true)
        );
        assert_eq!(
            run("result.up and ((result.size + 1) * 2) >= 8", ctx.clone()),
            Ok(true)
        );
        assert_eq!(
            run("(result.size > 2) == true and '(' != ')'", ctx.clone()),
            Ok(true)
        );
        assert_eq!(run("result.up and not (result.size < 1)", ctx), Ok(true));
    }

    #[test]
    fn an_interpolation_end_in_an_expression_is_a_syntax_error_not_a_panic() {
        let ctx = json!({ "result": { "x": "}}" } });
        for bad in ["true }} x", "result.x }} ", "(1) }}{{ 2"] {
            let err = run(bad, ctx.clone()).unwrap_err();
            assert!(err.contains("`}}`"), "{bad}: {err}");
            let env = super::super::environment();
            assert!(super::super::variables(&env, bad, super::super::Form::Expression).is_err());
        }
        // Inside a string it is only text.
        assert_eq!(
            run("result.x == '}}' and \"}}\" != 'a\\'}}'", ctx),
            Ok(true)
        );
    }

    #[test]
    fn short_circuits_guard_what_they_should() {
        let ctx = json!({ "result": { "reachable": false, "lsn": null } });
        assert_eq!(
            run("result.reachable and result.lsn > 5", ctx.clone()),
            Ok(false)
        );
        assert_eq!(
            run("not result.reachable or result.lsn > 5", ctx.clone()),
            Ok(true)
        );
        assert_eq!(
            run("result.lsn > 5 if result.reachable else true", ctx.clone()),
            Ok(true)
        );
        assert!(run("result.reachable or result.lsn > 5", ctx).is_err());
    }
}
