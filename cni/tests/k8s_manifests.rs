//! The Kubernetes installer (deploy/kubernetes/*.yaml): every YAML document parses, has the fields
//! its kind needs, refers only to things that exist (volumes, ConfigMap keys, env variables,
//! selectors), and the conflist it installs is one weft-cni accepts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_yaml::Value;

fn docs() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes");
    let mut out = vec![];
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML in {}", dir.display());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, d) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let v = Value::deserialize(d)
                .unwrap_or_else(|e| panic!("{} document {i}: {e}", f.display()));
            if !v.is_null() {
                out.push((format!("{} document {i}", f.display()), v));
            }
        }
    }
    out
}

use serde::Deserialize;

fn s<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    get(v, path)?.as_str()
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn seq<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    get(v, path)
        .and_then(Value::as_sequence)
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

/// Checks a pod template; returns the ConfigMap keys it reads.
fn check_pod(at: &str, tpl: &Value, configmaps: &BTreeMap<String, Value>) {
    let spec = get(tpl, "spec").unwrap_or_else(|| panic!("{at}: template without spec"));
    let volumes: BTreeSet<&str> = seq(spec, "volumes")
        .iter()
        .map(|v| s(v, "name").unwrap_or_else(|| panic!("{at}: volume without name")))
        .collect();
    let containers: Vec<&Value> = seq(spec, "containers")
        .into_iter()
        .chain(seq(spec, "initContainers"))
        .collect();
    assert!(!seq(spec, "containers").is_empty(), "{at}: no containers");
    let mut names = BTreeSet::new();
    for c in containers {
        let name = s(c, "name").unwrap_or_else(|| panic!("{at}: container without name"));
        assert!(names.insert(name), "{at}: two containers named {name}");
        let at = format!("{at}: container {name}");
        assert!(
            s(c, "image").is_some_and(|i| i.contains(':')),
            "{at}: image with a tag"
        );
        for m in seq(c, "volumeMounts") {
            let v = s(m, "name").unwrap();
            assert!(
                volumes.contains(v),
                "{at}: mounts volume {v}, which is not declared"
            );
            assert!(
                s(m, "mountPath").is_some_and(|p| p.starts_with('/')),
                "{at}: mountPath"
            );
        }
        let env: BTreeSet<&str> = seq(c, "env")
            .iter()
            .map(|e| s(e, "name").unwrap())
            .collect();
        for e in seq(c, "env") {
            if let Some(r) = get(e, "valueFrom.configMapKeyRef") {
                let (cm, key) = (s(r, "name").unwrap(), s(r, "key").unwrap());
                let data = configmaps
                    .get(cm)
                    .unwrap_or_else(|| panic!("{at}: ConfigMap {cm} does not exist"));
                assert!(
                    get(data, key).is_some(),
                    "{at}: ConfigMap {cm} has no key {key}"
                );
            }
        }
        // $(VAR) in args must name a variable of the container.
        for a in seq(c, "args").iter().chain(seq(c, "command").iter()) {
            let a = a.as_str().unwrap();
            let mut rest = a;
            while let Some(i) = rest.find("$(") {
                let end = rest[i..].find(')').unwrap();
                let var = &rest[i + 2..i + end];
                assert!(env.contains(var), "{at}: $({var}) is not in env");
                rest = &rest[i + end..];
            }
        }
    }
}

#[test]
fn manifests_are_valid() {
    let docs = docs();
    let mut kinds: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut configmaps = BTreeMap::new();
    let mut pod_labels: Vec<(String, BTreeMap<String, String>)> = vec![];
    for (at, d) in &docs {
        let kind = s(d, "kind").unwrap_or_else(|| panic!("{at}: no kind"));
        assert!(s(d, "apiVersion").is_some(), "{at}: no apiVersion");
        let name = s(d, "metadata.name").unwrap_or_else(|| panic!("{at}: no metadata.name"));
        if kind != "Namespace" {
            assert_eq!(
                s(d, "metadata.namespace"),
                Some("weft-system"),
                "{at}: namespace"
            );
        }
        kinds
            .entry(kind.to_string())
            .or_default()
            .push(name.to_string());
        if kind == "ConfigMap" {
            configmaps.insert(
                name.to_string(),
                get(d, "data").cloned().unwrap_or(Value::Null),
            );
        }
    }
    for want in [
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "DaemonSet",
    ] {
        assert!(
            kinds.contains_key(want),
            "no {want} in the manifests: {kinds:?}"
        );
    }
    for (at, d) in &docs {
        let kind = s(d, "kind").unwrap();
        if !matches!(kind, "Deployment" | "DaemonSet") {
            continue;
        }
        let at = format!("{at} ({kind} {})", s(d, "metadata.name").unwrap());
        let sel: BTreeMap<String, String> =
            serde_yaml::from_value(get(d, "spec.selector.matchLabels").cloned().unwrap())
                .unwrap_or_else(|e| panic!("{at}: spec.selector.matchLabels: {e}"));
        let labels: BTreeMap<String, String> =
            serde_yaml::from_value(get(d, "spec.template.metadata.labels").cloned().unwrap())
                .unwrap();
        for (k, v) in &sel {
            assert_eq!(
                labels.get(k),
                Some(v),
                "{at}: selector {k}={v} does not match the template"
            );
        }
        assert_eq!(
            get(d, "spec.template.spec.hostNetwork").and_then(Value::as_bool),
            Some(true),
            "{at}: hostNetwork"
        );
        check_pod(&at, get(d, "spec.template").unwrap(), &configmaps);
        pod_labels.push((s(d, "metadata.name").unwrap().to_string(), labels));
    }
    // Services select pods that exist.
    for (at, d) in docs.iter().filter(|(_, d)| s(d, "kind") == Some("Service")) {
        let sel: BTreeMap<String, String> =
            serde_yaml::from_value(get(d, "spec.selector").cloned().unwrap()).unwrap();
        assert!(
            pod_labels
                .iter()
                .any(|(_, l)| sel.iter().all(|(k, v)| l.get(k) == Some(v))),
            "{at}: the Service selects no pod"
        );
        assert!(!seq(d, "spec.ports").is_empty(), "{at}: no ports");
    }
    // The DaemonSet: privileged netplugin and OVS, the init step installing weft-cni + conflist.
    let ds = &docs
        .iter()
        .find(|(_, d)| s(d, "kind") == Some("DaemonSet"))
        .unwrap()
        .1;
    let spec = get(ds, "spec.template.spec").unwrap();
    let containers = seq(spec, "containers");
    let by_name = |n: &str| containers.iter().find(|c| s(c, "name") == Some(n)).copied();
    for n in ["netplugin", "openvswitch"] {
        let c = by_name(n).unwrap_or_else(|| panic!("DaemonSet has no {n} container"));
        assert_eq!(
            get(c, "securityContext.privileged").and_then(Value::as_bool),
            Some(true),
            "{n}"
        );
    }
    let np = by_name("netplugin").unwrap();
    let args: Vec<&str> = seq(np, "args")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(&"--socket=/run/weft/netplugin.sock"),
        "{args:?}"
    );
    let init = seq(spec, "initContainers");
    let install = init
        .iter()
        .find(|c| s(c, "name") == Some("install-cni"))
        .expect("install-cni");
    let script = seq(install, "command")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(script.contains("/host/opt/cni/bin/weft-cni"), "{script}");
    assert!(
        script.contains("/host/etc/cni/net.d/10-weft.conflist"),
        "{script}"
    );
    // The conflist the init step installs is valid for weft-cni and names netplugin's socket.
    let conflist = s(&configmaps["weft-config"], "cni-conflist").expect("cni-conflist");
    let cl: serde_json::Value = serde_json::from_str(conflist).expect("cni-conflist is JSON");
    let plugin = cl["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "weft-cni")
        .expect("a weft-cni plugin");
    let mut one = plugin.clone();
    one["cniVersion"] = cl["cniVersion"].clone();
    one["name"] = cl["name"].clone();
    let conf = weft_cni::config::NetConf::parse(one.to_string().as_bytes()).unwrap();
    assert_eq!(conf.agent_socket, Path::new("/run/weft/netplugin.sock"));
    weft_cni::config::check_version(weft_cni::config::Command::Add, &conf.cni_version).unwrap();
    let netmaster = s(&configmaps["weft-config"], "netmaster").unwrap();
    assert!(
        netmaster.starts_with("http://") && netmaster.ends_with(":9998"),
        "{netmaster}"
    );
}
