//! The deployment recipes in `deploy/` checked offline (`deploy/check.sh`): the
//! Kubernetes manifests against the API's JSON schemas (`kubernetes-validate`), the
//! scripts with `bash -n` and `shellcheck`. Without those tools on the PATH the test says
//! so and passes, unless `LLMIB_REQUIRE_DEPLOY_TOOLS=1`.

use std::path::Path;
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tools_present() -> bool {
    let missing: Vec<&str> = ["kubernetes-validate", "shellcheck"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var("LLMIB_REQUIRE_DEPLOY_TOOLS").is_ok_and(|v| v == "1");
    assert!(!required, "missing {}", missing.join(", "));
    eprintln!(
        "deploy recipes NOT checked: {} not installed",
        missing.join(", ")
    );
    false
}

fn deploy() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy"))
}

#[test]
fn the_recipes_pass_the_offline_checks() {
    if !tools_present() {
        return;
    }
    let out = Command::new(deploy().join("check.sh")).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("kubernetes manifests: valid"), "{text}");
    assert!(text.contains("shellcheck clean"), "{text}");
}

#[test]
fn the_schema_check_refuses_a_broken_job() {
    if !tools_present() {
        return;
    }
    let rendered = Command::new(deploy().join("kubernetes/launch.sh"))
        .arg("--render")
        .envs([
            ("RUN_ID", "neg"),
            ("SHARDS", "2"),
            ("TRACE", "t.msgpack"),
            ("BACKEND", "openai"),
            ("ENDPOINT", "http://g:8000"),
            ("IMAGE", "llmib:test"),
            ("START_AT", "1800000000000000000"),
        ])
        .output()
        .unwrap();
    assert!(rendered.status.success());
    let good = String::from_utf8(rendered.stdout).unwrap();
    assert!(good.contains("completions: 2") && good.contains("\"1800000000000000000\""));
    let dir = tempfile::tempdir().unwrap();
    for (name, broken) in [
        (
            "typo.yaml",
            good.replace("completionMode:", "completionMod:"),
        ),
        (
            "type.yaml",
            good.replace("completions: 2", "completions: two"),
        ),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, broken).unwrap();
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", "1.30.0"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name} passed the schema check");
    }
}
