//! Test networks of Linux network namespaces: each node in its own namespace, joined to a
//! bridge in the root namespace by a veth pair, on test addresses `10.<subnet>.77.0/24`
//! (the bridge is `.254`). Needs root and iproute2. Removed on drop.

use std::process::{Command, Stdio};

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn in_ns(ns: &str, args: &[&str]) -> bool {
    let mut all = vec!["netns", "exec", ns, "ip"];
    all.extend_from_slice(args);
    ip(&all)
}

/// A bridge and one namespace per node, removed on drop.
pub(crate) struct Net {
    tag: String,
    subnet: u16,
    nodes: usize,
}

impl Net {
    pub(crate) fn create(nodes: usize) -> Result<Net, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        // Names and subnets unique to this process and to each Net it creates (tests
        // run in parallel).
        static CREATED: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let k = CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = (std::process::id() % 200) as u16;
        let net = Net {
            tag: format!("b{id}x{k}"),
            subnet: 20 + (id * 7 + k) % 200,
            nodes,
        };
        let bridge = net.bridge();
        let gateway = format!("10.{}.77.254/24", net.subnet);
        let ok = ip(&["link", "add", &bridge, "type", "bridge"])
            && ip(&["addr", "add", &gateway, "dev", &bridge])
            && ip(&["link", "set", &bridge, "up"]);
        if !ok {
            return Err("cannot create a bridge (iproute2 missing or no CAP_NET_ADMIN)".into());
        }
        for i in 0..nodes {
            let (ns, outer, inner) = (
                net.ns(i),
                format!("{}o{i}", net.tag),
                format!("{}i{i}", net.tag),
            );
            let addr = format!("{}/24", net.ip(i));
            let ok = ip(&["netns", "add", &ns])
                && ip(&[
                    "link", "add", &outer, "type", "veth", "peer", "name", &inner,
                ])
                && ip(&["link", "set", &inner, "netns", &ns])
                && ip(&["link", "set", &outer, "master", &bridge])
                && ip(&["link", "set", &outer, "up"])
                && in_ns(&ns, &["addr", "add", &addr, "dev", &inner])
                && in_ns(&ns, &["link", "set", &inner, "up"])
                && in_ns(&ns, &["link", "set", "lo", "up"]);
            if !ok {
                return Err(format!("cannot set up namespace {ns}"));
            }
        }
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    pub(crate) fn ns(&self, i: usize) -> String {
        format!("{}n{i}", self.tag)
    }

    pub(crate) fn ip(&self, i: usize) -> String {
        format!("10.{}.77.{}", self.subnet, i + 1)
    }

    /// Drops every packet between nodes `a` and `b` (both directions).
    pub(crate) fn cut(&self, a: usize, b: usize) {
        assert!(in_ns(
            &self.ns(a),
            &["route", "add", "blackhole", &self.ip(b)]
        ));
        assert!(in_ns(
            &self.ns(b),
            &["route", "add", "blackhole", &self.ip(a)]
        ));
    }

    pub(crate) fn heal(&self, a: usize, b: usize) {
        assert!(in_ns(
            &self.ns(a),
            &["route", "del", "blackhole", &self.ip(b)]
        ));
        assert!(in_ns(
            &self.ns(b),
            &["route", "del", "blackhole", &self.ip(a)]
        ));
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..self.nodes {
            ip(&["netns", "del", &self.ns(i)]);
        }
        ip(&["link", "del", &self.bridge()]);
    }
}
