//! muster on a real local Redis Cluster (three masters, three replicas): the muster loop, an
//! escalation on the manual clock, instances killed mid-fan-out, a slot migrated during a
//! fan-out, and a master failover with `redis.wait_replicas = 1`.

mod common;

use common::cluster::TestCluster;
use common::scenarios::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_muster_loop_runs_on_a_cluster() {
    let cluster = TestCluster::start().await;
    fill_standby_withdraw_stand_down(&cluster.url()).await;
}
