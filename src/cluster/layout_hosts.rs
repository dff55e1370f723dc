//! The hosts that run cluster clients: the addresses from which some connection, on any
//! node, asked for the cluster's layout (CLUSTER SLOTS, SHARDS or NODES).
//!
//! A cluster client asks one node for the layout, then opens a connection to each master
//! that never asks again; in the default `cluster-redirects auto` mode those connections
//! look like plain clients. Knowing that their host runs a cluster client is one of the
//! signs that lets a node answer such a connection with MOVED once its map is stale (see
//! `RouteHistory` in the commands' session). Nodes tell each other of a host when it
//! first asks here, so the set is cluster-wide; it is bounded and kept in memory only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Hosts kept at most; past it the one told of longest ago is forgotten.
pub const HOSTS_MAX: usize = 4096;
/// A host that asks again after this long is told to the other nodes again (a node that
/// joined or restarted since learns of it).
const RETELL_AFTER: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct LayoutHosts {
    /// Host → when this node last told the others of it (or heard of it).
    hosts: Mutex<HashMap<IpAddr, Instant>>,
}

impl LayoutHosts {
    /// Notes that a connection from `host` asked for the layout here; true when the other
    /// nodes should be told (new here, or last told long ago).
    pub fn asked_here(&self, host: IpAddr) -> bool {
        let now = Instant::now();
        let mut hosts = self.hosts.lock();
        match hosts.get_mut(&host) {
            Some(told) if now.duration_since(*told) < RETELL_AFTER => false,
            Some(told) => {
                *told = now;
                true
            }
            None => {
                insert_bounded(&mut hosts, host, now);
                true
            }
        }
    }

    /// Notes a host another node was asked from.
    pub fn heard_of(&self, host: IpAddr) {
        let mut hosts = self.hosts.lock();
        if let Some(told) = hosts.get_mut(&host) {
            *told = Instant::now();
        } else {
            insert_bounded(&mut hosts, host, Instant::now());
        }
    }

    pub fn contains(&self, host: IpAddr) -> bool {
        self.hosts.lock().contains_key(&host)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.hosts.lock().len()
    }
}

fn insert_bounded(hosts: &mut HashMap<IpAddr, Instant>, host: IpAddr, now: Instant) {
    if hosts.len() >= HOSTS_MAX {
        // Rare (only with thousands of client hosts): one pass finds the oldest.
        if let Some(oldest) = hosts.iter().min_by_key(|(_, t)| **t).map(|(h, _)| *h) {
            hosts.remove(&oldest);
        }
    }
    hosts.insert(host, now);
}

/// A host as the cluster port carries it: 4 bytes (IPv4) or 16 (IPv6).
pub fn encode_host(host: IpAddr) -> Vec<u8> {
    match host {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// The host a peer sent; `None` for any other length.
pub fn decode_host(raw: &[u8]) -> Option<IpAddr> {
    match raw.len() {
        4 => <[u8; 4]>::try_from(raw).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(raw).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_told_once_and_the_set_stays_bounded() {
        let hosts = LayoutHosts::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(hosts.asked_here(a));
        assert!(!hosts.asked_here(a), "told already");
        assert!(hosts.contains(a));
        std::thread::sleep(Duration::from_millis(2));
        for i in 0..HOSTS_MAX as u32 + 10 {
            hosts.heard_of(IpAddr::from((0x0b00_0000 + i).to_be_bytes()));
        }
        assert_eq!(hosts.len(), HOSTS_MAX);
        assert!(!hosts.contains(a), "the oldest went first");
    }

    #[test]
    fn hosts_round_trip_and_bad_lengths_are_refused() {
        for host in ["127.0.0.1", "::1", "fe80::2"] {
            let ip: IpAddr = host.parse().unwrap();
            assert_eq!(decode_host(&encode_host(ip)), Some(ip));
        }
        assert_eq!(decode_host(b""), None);
        assert_eq!(decode_host(&[1, 2, 3]), None);
        assert_eq!(decode_host(&[0; 17]), None);
    }
}
