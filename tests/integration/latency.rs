//! The latency monitor and the latency histograms on a real node: a slow script is recorded
//! as a `command` spike that LATEST, HISTORY, GRAPH, DOCTOR and RESET see; SETs fill SET's
//! histogram (LATENCY HISTOGRAM, INFO latencystats) until `latency-tracking no`.

use crate::support::{show, start_basalt};

#[test]
fn spikes_and_histograms() {
    let node = start_basalt(&["--latency-monitor-threshold", "5"]);
    let mut c = node.client();
    let slow = "local i = 0 while i < 5000000 do i = i + 1 end return 1";
    assert_eq!(show(&c.call(&["EVAL", slow, "0"])), ":1\r\n");
    let latest = show(&c.call(&["LATENCY", "LATEST"]));
    assert!(
        latest.starts_with("*1\r\n*4\r\n$7\r\ncommand\r\n:"),
        "{latest}"
    );
    let history = show(&c.call(&["LATENCY", "HISTORY", "command"]));
    assert!(history.starts_with("*1\r\n*2\r\n:"), "{history}");
    let graph = show(&c.call(&["LATENCY", "GRAPH", "command"]));
    assert!(graph.contains("command - high "), "{graph}");
    let doctor = show(&c.call(&["LATENCY", "DOCTOR"]));
    assert!(doctor.contains("1. command: 1 latency spikes"), "{doctor}");
    assert_eq!(show(&c.call(&["LATENCY", "RESET"])), ":1\r\n");
    assert_eq!(show(&c.call(&["LATENCY", "LATEST"])), "*0\r\n");

    for i in 0..20 {
        c.call(&["SET", &format!("k{i}"), "v"]);
    }
    let histogram = show(&c.call(&["LATENCY", "HISTOGRAM", "set"]));
    assert!(
        histogram.starts_with(
            "*2\r\n$3\r\nset\r\n*4\r\n$5\r\ncalls\r\n:20\r\n$14\r\nhistogram_usec\r\n*"
        ),
        "{histogram}"
    );
    let info = show(&c.call(&["INFO", "latencystats"]));
    let line = info
        .lines()
        .find(|l| l.starts_with("latency_percentiles_usec_set:"))
        .unwrap_or_else(|| panic!("{info}"));
    let fields: Vec<&str> = line.split_once(':').unwrap().1.split(',').collect();
    assert_eq!(fields.len(), 3, "{line}");
    assert!(
        fields[0].starts_with("p50=") && fields[2].starts_with("p99.9="),
        "{line}"
    );

    // With tracking off, calls still count but the histogram stops.
    c.call(&["CONFIG", "SET", "latency-tracking", "no"]);
    for i in 0..5 {
        c.call(&["SET", &format!("k{i}"), "w"]);
    }
    let histogram = show(&c.call(&["LATENCY", "HISTOGRAM", "set"]));
    assert!(histogram.contains("calls\r\n:25\r\n"), "{histogram}");
    let last_bucket_count = histogram
        .trim_end()
        .rsplit("\r\n")
        .next()
        .unwrap()
        .to_string();
    assert_eq!(last_bucket_count, ":20", "{histogram}");
}
