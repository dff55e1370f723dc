//! Introspection on a real node. The latency monitor and histograms: a slow script is
//! recorded as a `command` spike that LATEST, HISTORY, GRAPH, DOCTOR and RESET see; SETs fill
//! SET's histogram (LATENCY HISTOGRAM, INFO latencystats) until `latency-tracking no`.
//! MEMORY STATS: redis-server's fields in its order, with figures that add up.

use crate::support::{show, start_basalt, start_redis, RawReply};

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

/// A RESP2 reply as strings and arrays.
enum Value {
    Text(String),
    Array(Vec<Value>),
}

fn parse<'a>(lines: &mut impl Iterator<Item = &'a str>) -> Value {
    let line = lines.next().expect("a complete reply");
    match line.as_bytes()[0] {
        b'*' => {
            let n: usize = line[1..].parse().unwrap();
            Value::Array((0..n).map(|_| parse(lines)).collect())
        }
        b'$' => Value::Text(lines.next().unwrap_or_default().to_string()),
        _ => Value::Text(line[1..].to_string()),
    }
}

/// The field names of a map sent as a flat array, nested maps' names after their own.
fn field_names(value: &Value, prefix: &str, out: &mut Vec<String>) {
    let Value::Array(items) = value else { return };
    for pair in items.chunks(2) {
        if let Value::Text(name) = &pair[0] {
            let name = format!("{prefix}{name}");
            out.push(name.clone());
            if let Some(inner) = pair.get(1) {
                field_names(inner, &format!("{name}."), out);
            }
        }
    }
}

fn stats_fields(reply: &RawReply) -> Vec<String> {
    let text = show(reply);
    let mut out = Vec::new();
    field_names(&parse(&mut text.split("\r\n")), "", &mut out);
    out
}

#[test]
fn memory_stats_has_redis_fields_and_figures_that_add_up() {
    let basalt = start_basalt(&[]);
    let redis = start_redis();
    let (mut b, mut r) = (basalt.client(), redis.client());
    for c in [&mut b, &mut r] {
        for i in 0..100 {
            c.call(&["SET", &format!("k{i}"), "some value"]);
        }
    }
    let (bs, rs) = (b.call(&["MEMORY", "STATS"]), r.call(&["MEMORY", "STATS"]));
    assert_eq!(stats_fields(&bs), stats_fields(&rs));
    let text = show(&bs);
    let field = |name: &str| -> i64 {
        let at = text
            .find(&format!("${}\r\n{name}\r\n", name.len()))
            .unwrap();
        let rest = &text[at..];
        let line = rest.split("\r\n").nth(2).unwrap();
        line.trim_start_matches(':').parse().unwrap_or(-1)
    };
    assert_eq!(field("keys.count"), 100);
    assert!(field("total.allocated") > 0);
    assert!(field("peak.allocated") >= field("total.allocated"));
    assert!(field("startup.allocated") <= field("total.allocated"));
    assert_eq!(show(&b.call(&["MEMORY", "PURGE"])), "+OK\r\n");
    let doctor = show(&b.call(&["MEMORY", "DOCTOR"]));
    assert!(doctor.contains("Sam"), "{doctor}");
    let malloc = show(&b.call(&["MEMORY", "MALLOC-STATS"]));
    assert!(malloc.len() > 20, "{malloc}");
}

/// CLIENT PAUSE WRITE holds writes (and EXEC of a transaction with one, and scripts) but not
/// reads; CLIENT UNPAUSE from another client releases them at once; ALL holds reads too until
/// the pause runs out.
#[test]
fn client_pause_holds_writes_or_everything() {
    use std::time::{Duration, Instant};
    let node = start_basalt(&[]);
    let (mut a, mut b) = (node.client(), node.client());
    a.call(&["SET", "k", "1"]);
    assert_eq!(
        show(&a.call(&["CLIENT", "PAUSE", "20000", "WRITE"])),
        "+OK\r\n"
    );
    let started = Instant::now();
    assert_eq!(show(&b.call(&["GET", "k"])), "$1\r\n1\r\n");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a read was held"
    );
    let writer = std::thread::spawn(move || {
        let started = Instant::now();
        let reply = show(&b.call(&["INCR", "k"]));
        (reply, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !writer.is_finished(),
        "a write ran during CLIENT PAUSE WRITE"
    );
    assert_eq!(show(&a.call(&["CLIENT", "UNPAUSE"])), "+OK\r\n");
    let (reply, waited) = writer.join().unwrap();
    assert_eq!(reply, ":2\r\n");
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(10),
        "{waited:?}"
    );

    // ALL holds reads too, until the pause runs out; a key expired meanwhile reads as gone.
    a.call(&["SET", "short", "v", "PX", "100"]);
    assert_eq!(show(&a.call(&["CLIENT", "PAUSE", "800", "ALL"])), "+OK\r\n");
    let mut c = node.client();
    let started = Instant::now();
    assert_eq!(show(&c.call(&["PING"])), "+PONG\r\n");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(600),
        "PING was not held: {waited:?}"
    );
    assert_eq!(show(&c.call(&["GET", "short"])), "$-1\r\n");
}
