//! The real local Redis Cluster the Cluster tests run on (see `muster::local_cluster`).

pub use muster::local_cluster::LocalCluster as TestCluster;
