//! The step graph for Graphviz (`--format dot`) and Mermaid (`--format mermaid`).

use super::Preview;

/// Text inside a DOT quoted string: a quote or a backslash in a plan's names can neither
/// end the string nor start an escape sequence; a line break becomes DOT's `\n`.
fn dot_text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace('\r', "")
}

fn label(s: &super::json::StepView) -> String {
    format!(
        "{}\\n{} on {}",
        dot_text(&s.name),
        dot_text(&s.action),
        dot_text(&s.on.role)
    )
}

/// Text inside a Mermaid `"…"` label: quotes, markup and entity starts as entity codes.
fn mermaid_text(s: &str) -> String {
    s.replace('#', "#35;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace(['\n', '\r'], " ")
}

/// Graphviz DOT; points of no return are drawn as double octagons.
pub fn dot(p: &Preview) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n",
        dot_text(&p.plan.name)
    );
    for s in &p.steps {
        let shape = if s.point_of_no_return {
            ", shape=doubleoctagon"
        } else {
            ""
        };
        out.push_str(&format!(
            "  \"{}\" [label=\"{}\"{shape}];\n",
            dot_text(&s.id),
            label(s)
        ));
    }
    for s in &p.steps {
        for n in &s.needs {
            out.push_str(&format!(
                "  \"{}\" -> \"{}\";\n",
                dot_text(n),
                dot_text(&s.id)
            ));
        }
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart; points of no return are hexagons.
pub fn mermaid(p: &Preview) -> String {
    let mut out = String::from("flowchart LR\n");
    // Mermaid ids cannot hold '-': number the nodes instead.
    let node = |id: &str| p.steps.iter().position(|s| s.id == id).map_or(0, |i| i + 1);
    for (i, s) in p.steps.iter().enumerate() {
        let text = format!(
            "{}<br/>{} on {}",
            mermaid_text(&s.name),
            mermaid_text(&s.action),
            mermaid_text(&s.on.role)
        );
        if s.point_of_no_return {
            out.push_str(&format!("  s{}{{{{\"{text}\"}}}}\n", i + 1));
        } else {
            out.push_str(&format!("  s{}[\"{text}\"]\n", i + 1));
        }
    }
    for s in &p.steps {
        for n in &s.needs {
            out.push_str(&format!("  s{} --> s{}\n", node(n), node(&s.id)));
        }
    }
    out
}
