//! Test support shared by the integration tests and the SSH benchmark.
pub mod sshd;
