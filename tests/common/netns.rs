//! Hosts of their own for a test cluster: each node in a Linux network namespace with its own address, all on one
//! switch, so that a test can cut a node off from its peers as a real network partition does, while the test
//! process (the clients) still reaches every node.
//!
//! ```text
//!   test process (root namespace), 10.A.B.254 ── veth ──┐
//!                                                        │ bridge, in a namespace of its own ("the switch")
//!   node 1 (namespace), 10.A.B.1 ──────────── veth ──────┤
//!   node 2 (namespace), 10.A.B.2 ──────────── veth ──────┤
//!   node 3 (namespace), 10.A.B.3 ──────────── veth ──────┘
//! ```
//!
//! The bridge lives in its own namespace, not the root one: with br_netfilter loaded (Docker loads it) bridged
//! frames pass the root namespace's iptables FORWARD chain, whose policy Docker sets to DROP. The switch's
//! namespace has empty tables, so nothing of the host's firewall is touched.
//!
//! A cut is a pair of firewall rules, one in each node's namespace (whose tables are its own), dropping what
//! arrives from the other: packets between the two vanish without an error, as on a dead link, and established
//! connections hang until their timeouts. Needs root, `ip` (iproute2) and `iptables`.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The namespaces, links and addresses of one cluster; removed on drop.
pub struct Network {
    tag: String,
    subnet: [u8; 2],
    nodes: Vec<i32>,
}

impl Network {
    /// A switch, and a namespace with an address on it for each node id. Panics (a test set-up failure) without
    /// root or iproute2.
    pub fn new(nodes: &[i32]) -> Network {
        // Unique per process and per cluster within it, so that test binaries and tests may run side by side.
        let n = (std::process::id() % 16_000) * 4 + NEXT.fetch_add(1, Ordering::Relaxed) % 4;
        let network = Network {
            tag: format!("fe{n}"),
            subnet: [100 + (n / 256 % 100) as u8, (n % 256) as u8],
            nodes: nodes.to_vec(),
        };
        network.remove();
        network.create();
        network
    }

    /// Node `node_id`'s address.
    pub fn address(&self, node_id: i32) -> Ipv4Addr {
        let host = u8::try_from(node_id).expect("a small node id");
        Ipv4Addr::new(10, self.subnet[0], self.subnet[1], host)
    }

    /// The namespace node `node_id` runs in (`ip netns exec <it> ...`).
    pub fn namespace(&self, node_id: i32) -> String {
        format!("{}n{node_id}", self.tag)
    }

    /// Cuts `node_id` off from every other node (the test process still reaches it).
    pub fn isolate(&self, node_id: i32) {
        for peer in self.peers(node_id) {
            self.cut(node_id, peer);
        }
    }

    /// Undoes [`isolate`](Self::isolate).
    pub fn heal(&self, node_id: i32) {
        for peer in self.peers(node_id) {
            self.mend(node_id, peer);
        }
    }

    /// Cuts the link between two nodes, both ways.
    pub fn cut(&self, a: i32, b: i32) {
        self.drop_rule("-A", a, b);
        self.drop_rule("-A", b, a);
    }

    /// Restores the link between two nodes.
    pub fn mend(&self, a: i32, b: i32) {
        // Both rules, even if one is missing.
        self.drop_rule("-D", a, b);
        self.drop_rule("-D", b, a);
    }

    fn peers(&self, node_id: i32) -> Vec<i32> {
        self.nodes
            .iter()
            .copied()
            .filter(|n| *n != node_id)
            .collect()
    }

    /// In `to`'s namespace, a firewall rule that drops every packet from `from` (`-A`), or its removal (`-D`).
    /// Removing one that is not there is not an error: healing is idempotent.
    fn drop_rule(&self, verb: &str, from: i32, to: i32) {
        let source = format!("{}/32", self.address(from));
        let namespace = self.namespace(to);
        let args = [
            "netns", "exec", &namespace, "iptables", verb, "INPUT", "-s", &source, "-j", "DROP",
        ];
        if verb == "-A" {
            ip(&args);
        } else {
            let _ = try_ip(&args);
        }
    }

    fn switch(&self) -> String {
        format!("{}s", self.tag)
    }

    fn create(&self) {
        let switch = self.switch();
        let host_link = format!("{}h", self.tag);
        ip(&["netns", "add", &switch]);
        in_ns(&switch, &["link", "add", "br0", "type", "bridge"]);
        in_ns(&switch, &["link", "set", "br0", "up"]);
        ip(&[
            "link", "add", &host_link, "type", "veth", "peer", "name", "up0", "netns", &switch,
        ]);
        in_ns(&switch, &["link", "set", "up0", "master", "br0"]);
        in_ns(&switch, &["link", "set", "up0", "up"]);
        let host_address = format!(
            "{}/24",
            Ipv4Addr::new(10, self.subnet[0], self.subnet[1], 254)
        );
        ip(&["addr", "add", &host_address, "dev", &host_link]);
        ip(&["link", "set", &host_link, "up"]);
        for node in &self.nodes {
            let namespace = self.namespace(*node);
            let port = format!("p{node}");
            ip(&["netns", "add", &namespace]);
            in_ns(
                &switch,
                &[
                    "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                    &namespace,
                ],
            );
            in_ns(&switch, &["link", "set", &port, "master", "br0"]);
            in_ns(&switch, &["link", "set", &port, "up"]);
            let address = format!("{}/24", self.address(*node));
            in_ns(&namespace, &["addr", "add", &address, "dev", "eth0"]);
            in_ns(&namespace, &["link", "set", "eth0", "up"]);
            in_ns(&namespace, &["link", "set", "lo", "up"]);
        }
    }

    /// Deleting a namespace deletes the veth ends in it, and so their peers.
    fn remove(&self) {
        for node in &self.nodes {
            let _ = try_ip(&["netns", "del", &self.namespace(*node)]);
        }
        let _ = try_ip(&["netns", "del", &self.switch()]);
        let _ = try_ip(&["link", "del", &format!("{}h", self.tag)]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.remove();
    }
}

fn in_ns(namespace: &str, args: &[&str]) {
    let mut full = vec!["netns", "exec", namespace, "ip"];
    full.extend_from_slice(args);
    ip(&full);
}

fn ip(args: &[&str]) {
    if let Err(error) = try_ip(args) {
        panic!(
            "ip {}: {error} (network namespaces need root, iproute2 and iptables)",
            args.join(" ")
        );
    }
}

fn try_ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}
