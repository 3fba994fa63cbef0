//! drplan: disaster-recovery failover and failback as declarative, validated, resumable plans.
pub mod journal;
mod private_fs;
pub mod transport;
pub mod whoami;
