//! drplan: disaster-recovery failover and failback as declarative, validated, resumable plans.
pub mod journal;
pub mod transport;
pub mod whoami;
