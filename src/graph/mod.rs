//! `PlanGraph`: a bound plan with its DAG (`plan::Dag`) resolved into waves.

mod plan_graph;

pub use plan_graph::PlanGraph;
