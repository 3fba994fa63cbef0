//! The step graph for Graphviz (`--format dot`) and Mermaid (`--format mermaid`).

use super::Preview;

fn label(s: &super::json::StepView) -> String {
    format!("{}\\n{} on {}", s.name, s.action, s.on.role).replace('"', "'")
}

/// Graphviz DOT; points of no return are drawn as double octagons.
pub fn dot(p: &Preview) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n",
        p.plan.name
    );
    for s in &p.steps {
        let shape = if s.point_of_no_return {
            ", shape=doubleoctagon"
        } else {
            ""
        };
        out.push_str(&format!(
            "  \"{}\" [label=\"{}\"{shape}];\n",
            s.id,
            label(s)
        ));
    }
    for s in &p.steps {
        for n in &s.needs {
            out.push_str(&format!("  \"{n}\" -> \"{}\";\n", s.id));
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
        let text = format!("{}<br/>{} on {}", s.name, s.action, s.on.role).replace('"', "'");
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
