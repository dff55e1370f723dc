//! The deployment files (`deploy/`): neither Docker nor Kubernetes runs here, so this checks
//! what can be checked — the manifests parse, the start script is valid shell, every
//! setting they pass is one Basalt accepts (a node started with exactly those flags serves),
//! the probes' paths answer, and the Dockerfile copies files that exist and exposes the
//! ports the start script opens.

use std::path::Path;
use std::process::Command;

use crate::support::{free_port, start_basalt};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The StatefulSet's container (args, env names, probe paths), read with PyYAML.
fn statefulset_container() -> serde_json::Value {
    let script = r#"
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = sorted(d["kind"] for d in docs)
sts = next(d for d in docs if d["kind"] == "StatefulSet")
c = sts["spec"]["template"]["spec"]["containers"][0]
print(json.dumps({"kinds": kinds, "replicas": sts["spec"]["replicas"], "args": c["args"],
  "env": [e["name"] for e in c["env"]], "ports": {p["name"]: p["containerPort"] for p in c["ports"]},
  "probes": [c["livenessProbe"]["httpGet"]["path"], c["readinessProbe"]["httpGet"]["path"]]}))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(root().join("deploy/kubernetes/basalt.yaml"))
        .output()
        .expect("python3 (with PyYAML, which scripts/setup.sh installs)");
    assert!(
        out.status.success(),
        "the manifest does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The flags the start script passes to basalt (`set -- ... "$@"` lines), in order.
fn start_script_flags() -> Vec<String> {
    let script = std::fs::read_to_string(root().join("deploy/start.sh")).unwrap();
    script
        .lines()
        .filter_map(|l| l.trim().strip_prefix("set -- "))
        .flat_map(|l| l.split_whitespace())
        .filter(|w| w.starts_with("--"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_deployment_files_use_settings_that_exist() {
    let status = Command::new("sh")
        .arg("-n")
        .arg(root().join("deploy/start.sh"))
        .status()
        .unwrap();
    assert!(status.success(), "deploy/start.sh is not valid shell");
    let container = statefulset_container();
    assert_eq!(
        container["kinds"],
        serde_json::json!(["Service", "Service", "StatefulSet"])
    );
    assert_eq!(container["replicas"], 3);
    for env in ["POD_NAME", "POD_NAMESPACE", "SERVICE_NAME"] {
        assert!(
            container["env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == env),
            "{env}"
        );
    }
    let flags = start_script_flags();
    for wanted in [
        "--bind",
        "--port",
        "--dir",
        "--http-port",
        "--cluster-announce-ip",
        "--join",
    ] {
        assert!(
            flags.iter().any(|f| f == wanted),
            "start.sh lacks {wanted}: {flags:?}"
        );
    }
    assert_eq!(container["ports"]["client"], 6379);
    assert_eq!(container["ports"]["cluster"], 16379);
    assert_eq!(container["ports"]["http"], 8080);

    // A node started with the start script's settings (on free ports, announcing a name)
    // and the manifest's extra args serves RESP and the probes' paths.
    let http = free_port();
    let http_arg = http.to_string();
    let mut args: Vec<String> = vec![
        "--http-port".into(),
        http_arg,
        "--cluster-announce-ip".into(),
        "localhost".into(),
    ];
    args.extend(
        container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = start_basalt(&args);
    assert_eq!(
        crate::support::show(&node.client().call(&["PING"])),
        "+PONG\r\n"
    );
    for path in container["probes"].as_array().unwrap() {
        let url = format!("http://127.0.0.1:{http}{}", path.as_str().unwrap());
        let response = ureq::get(&url).call().expect("a probe answered");
        assert_eq!(response.status(), 200, "{url}");
    }

    // The Dockerfile copies what exists and exposes the ports the start script opens.
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let source = line.split_whitespace().nth(1).unwrap();
        assert!(root().join(source).exists(), "{line}: {source} is missing");
    }
    let exposed: Vec<&str> = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(exposed, ["6379", "16379", "8080"]);
}
