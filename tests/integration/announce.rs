//! What a node announces: with `cluster-announce-ip` (here a name, as a StatefulSet pod's
//! DNS name would be), peers reach it there and clients are told that host.

use crate::cluster::Cluster;
use crate::support::show;

#[test]
fn nodes_announced_by_name_replicate_to_each_other() {
    let cluster = Cluster::start_each("announce", 3, &["--shards", "4"], |_| {
        vec!["--cluster-announce-ip".into(), "localhost".into()]
    });
    for i in 0..3 {
        let info = show(&cluster.client(i).call(&["INFO", "raft"]));
        let addr = info
            .lines()
            .find_map(|l| l.strip_prefix("cluster_addr:"))
            .unwrap_or_default()
            .trim()
            .to_string();
        assert_eq!(
            addr,
            format!("localhost:{}", cluster.cluster_port(i)),
            "node {i}"
        );
        let nodes = show(&cluster.client(i).call(&["CLUSTER", "NODES"]));
        assert!(
            nodes.lines().filter(|l| l.contains(" localhost:")).count() == 3,
            "{nodes}"
        );
    }
    let mut c = cluster.client(0);
    for i in 0..30 {
        assert_eq!(show(&c.call(&["SET", &format!("n{i}"), "v"])), "+OK\r\n");
    }
    cluster.wait_replicated(3);
    assert_eq!(cluster.dbsize(2), 30);
}
