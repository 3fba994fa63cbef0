//! The step DAG: waves of steps that may run together, cycles named in full, ancestry.
//!
//! petgraph stays private to this file; callers see step indices (positions in the
//! plan's `steps`) and plain vectors.

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// Dependencies between steps: an edge `a → b` means `b` needs `a`.
#[derive(Debug, Clone)]
pub struct Dag {
    graph: DiGraph<usize, ()>,
}

impl Dag {
    /// `needs[i]` lists the indices step `i` waits for.
    pub fn new(needs: &[Vec<usize>]) -> Dag {
        let mut graph = DiGraph::with_capacity(needs.len(), needs.iter().map(Vec::len).sum());
        for i in 0..needs.len() {
            graph.add_node(i);
        }
        for (i, ns) in needs.iter().enumerate() {
            for &n in ns {
                graph.add_edge(NodeIndex::new(n), NodeIndex::new(i), ());
            }
        }
        Dag { graph }
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every dependency cycle, each as the steps in order (`a → b → c → a` is `[a, b, c]`).
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        for scc in tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() > 1 || self_loop {
                out.push(self.cycle_within(&scc));
            }
        }
        out.sort();
        out
    }

    /// One simple cycle through a strongly connected component, starting at its lowest step.
    fn cycle_within(&self, scc: &[NodeIndex]) -> Vec<usize> {
        let inside: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
        let Some(&start) = scc.iter().min() else {
            return Vec::new();
        };
        // Breadth-first from start back to start, staying inside the component: shortest cycle.
        let mut prev = std::collections::HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            for m in self.graph.neighbors_directed(n, Direction::Outgoing) {
                if m == start {
                    let mut path = vec![n.index()];
                    let mut cur = n;
                    while cur != start {
                        cur = prev[&cur];
                        path.push(cur.index());
                    }
                    path.reverse();
                    return path;
                }
                if inside.contains(&m) && !prev.contains_key(&m) {
                    prev.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        vec![start.index()]
    }

    /// Steps grouped into waves: a step's wave is one more than the latest wave it needs.
    /// Steps in one wave never depend on each other. Only meaningful without cycles.
    pub fn waves(&self) -> Vec<Vec<usize>> {
        let n = self.len();
        let mut indegree: Vec<usize> = (0..n)
            .map(|i| {
                self.graph
                    .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
                    .count()
            })
            .collect();
        let mut level = vec![0usize; n];
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut waves: Vec<Vec<usize>> = Vec::new();
        while let Some(i) = ready.pop() {
            if waves.len() <= level[i] {
                waves.resize(level[i] + 1, Vec::new());
            }
            waves[level[i]].push(i);
            for m in self
                .graph
                .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            {
                let m = m.index();
                level[m] = level[m].max(level[i] + 1);
                indegree[m] -= 1;
                if indegree[m] == 0 {
                    ready.push(m);
                }
            }
        }
        waves.iter_mut().for_each(|w| w.sort_unstable());
        waves
    }

    /// The steps `i` needs directly.
    pub fn needs(&self, i: usize) -> Vec<usize> {
        self.adjacent(i, Direction::Incoming)
    }

    /// The steps that need `i` directly.
    pub fn dependants(&self, i: usize) -> Vec<usize> {
        self.adjacent(i, Direction::Outgoing)
    }

    /// The steps one edge from `i` in `direction`, in order, each once.
    fn adjacent(&self, i: usize, direction: Direction) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(i), direction)
            .map(petgraph::prelude::NodeIndex::index)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Is `a` among the steps `b` waits for, directly or transitively?
    pub fn is_ancestor(&self, a: usize, b: usize) -> bool {
        let mut seen = vec![false; self.len()];
        let mut stack = vec![NodeIndex::new(b)];
        while let Some(n) = stack.pop() {
            for m in self.graph.neighbors_directed(n, Direction::Incoming) {
                if m.index() == a {
                    return true;
                }
                if !seen[m.index()] {
                    seen[m.index()] = true;
                    stack.push(m);
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_group_independent_steps() {
        // 0 → 1, 0 → 2, {1,2} → 3, 4 alone
        let dag = Dag::new(&[vec![], vec![0], vec![0], vec![1, 2], vec![]]);
        assert_eq!(dag.waves(), vec![vec![0, 4], vec![1, 2], vec![3]]);
        assert!(dag.cycles().is_empty());
        assert!(dag.is_ancestor(0, 3));
        assert!(!dag.is_ancestor(4, 3));
        assert!(!dag.is_ancestor(3, 0));
    }

    #[test]
    fn cycles_are_named_in_order() {
        // 0 needs 2, 1 needs 0, 2 needs 1: 0 → 1 → 2 → 0; 3 needs itself
        let dag = Dag::new(&[vec![2], vec![0], vec![1], vec![3]]);
        assert_eq!(dag.cycles(), vec![vec![0, 1, 2], vec![3]]);
    }
}
