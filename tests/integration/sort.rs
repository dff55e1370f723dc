//! SORT in a cluster, through any node: as Redis Cluster, BY and GET patterns must name
//! keys of one slot (a hash tag); keys of the sorted key's shard are found, keys of
//! another shard are not (nil, as a Redis Cluster node finds none of another node's keys),
//! and STORE refuses a pattern of another shard rather than read it on the wrong replicas.

use redis::Value;

use crate::cluster::Cluster;
use crate::cluster_protocol::{connect, query, text};

fn strings(v: &Value) -> Vec<Option<String>> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Nil => None,
                other => Some(text(other)),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn sort_patterns_follow_redis_cluster_rules_through_any_node() {
    let cluster = Cluster::start("sort", 3, &[]);
    let ports = cluster.ports();
    let mut a = connect(ports[0]);
    query(&mut a, &["RPUSH", "{u}ids", "3", "1", "2"]).unwrap();
    for (id, weight, name) in [("1", "30", "one"), ("2", "10", "two"), ("3", "20", "three")] {
        query(&mut a, &["SET", &format!("{{u}}w_{id}"), weight]).unwrap();
        query(&mut a, &["HSET", &format!("{{u}}h_{id}"), "name", name]).unwrap();
    }
    // A key of another slot (and, with the default shard count, another shard).
    query(&mut a, &["SET", "{o2}x_1", "far"]).unwrap();
    for port in &ports {
        let mut c = connect(*port);
        let sorted = query(
            &mut c,
            &[
                "SORT",
                "{u}ids",
                "BY",
                "{u}w_*",
                "GET",
                "{u}h_*->name",
                "GET",
                "#",
            ],
        )
        .unwrap();
        assert_eq!(
            strings(&sorted),
            [
                Some("two"),
                Some("2"),
                Some("three"),
                Some("3"),
                Some("one"),
                Some("1")
            ]
            .map(|s| s.map(String::from))
        );
        let refused = query(&mut c, &["SORT", "{u}ids", "BY", "w_*"]).unwrap_err();
        assert!(
            refused.to_string().contains(
                "BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots"
            ),
            "{refused}"
        );
        let refused = query(&mut c, &["SORT", "{u}ids", "GET", "h_*->name"]).unwrap_err();
        assert!(
            refused.to_string().contains("GET option of SORT denied"),
            "{refused}"
        );
        // Another shard's keys are not found.
        let far = query(&mut c, &["SORT", "{u}ids", "GET", "{o2}x_*"]).unwrap();
        assert_eq!(strings(&far), [None, None, None]);
        let refused = query(
            &mut c,
            &["SORT", "{u}ids", "GET", "{o2}x_*", "STORE", "{u}dst"],
        )
        .unwrap_err();
        assert!(refused.to_string().contains("another shard"), "{refused}");
        // STORE with patterns of the key's own slot, applied on every replica alike.
        let stored = query(
            &mut c,
            &["SORT", "{u}ids", "BY", "{u}w_*", "DESC", "STORE", "{u}dst"],
        )
        .unwrap();
        assert_eq!(stored, Value::Int(3));
        let list = query(&mut c, &["LRANGE", "{u}dst", "0", "-1"]).unwrap();
        assert_eq!(
            strings(&list),
            [Some("1"), Some("3"), Some("2")].map(|s| s.map(String::from))
        );
    }
}
