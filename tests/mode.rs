//! `envgate mode set`: envgate.toml edited in place, comments and layout
//! kept, checked before it is written, and the next step said.

mod support;

use support::Project;

const CONFIG: &str = "# Environments, reviewed by the DBAs.\n\
[environments.dev]\n\
url = \"sqlite://dev.db\"\n\
\n\
[environments.prod]            # the one that matters\n\
url = \"sqlite://prod.db\"\n\
mode = \"export_only\"         # bundles only, see #12\n\
admins = [\"alice\", \"@acme/dba\"]\n";

#[test]
fn mode_set_edits_in_place_and_says_what_the_change_needs() {
    let p = Project::new(CONFIG, &[]);
    let read = || std::fs::read_to_string(p.path().join("envgate.toml")).unwrap();

    let run = p.envgate(&["mode", "set", "--env", "prod", "managed"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        read(),
        CONFIG.replace(
            "mode = \"export_only\"         # bundles",
            "mode = \"managed\"         # bundles"
        ),
        "only the value changed"
    );
    assert!(
        run.stdout.starts_with(
            "envgate.toml: 'prod' is now managed (was export_only); nothing else in the file changed."
        ),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "one of its admins (alice, @acme/dba) must approve the request (envgate's `envgate/mode` check fails until one does)"
        ),
        "{run:?}"
    );

    // Back: tightening needs nobody.
    let run = p.envgate(&["mode", "set", "--env", "prod", "export_only"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("no approval is needed"), "{run:?}");
    assert_eq!(read(), CONFIG);
    let run = p.envgate(&["mode", "set", "--env", "prod", "export_only"]);
    assert_eq!(
        run.stdout,
        "envgate.toml: 'prod' is already export_only; nothing changed.\n"
    );

    // dev's mode came from its name: now written down.
    let run = p.envgate(&["mode", "set", "--env", "dev", "export_only"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        read().contains("url = \"sqlite://dev.db\"\nmode = \"export_only\"\n"),
        "{}",
        read()
    );

    // What the configuration forbids is refused, and the file untouched.
    let before = read();
    let flyway = Project::new(
        "format = \"flyway\"\n[environments.legacy]\nurl = \"sqlite://legacy.db\"\n",
        &[],
    );
    let run = flyway.envgate(&["mode", "set", "--env", "legacy", "managed"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("'legacy' cannot be managed:")
            && run
                .stderr
                .contains("envgate never writes another tool's ledger"),
        "{run:?}"
    );
    assert!(
        !std::fs::read_to_string(flyway.path().join("envgate.toml"))
            .unwrap()
            .contains("mode")
    );
    let run = p.envgate(&["mode", "set", "--env", "prod", "writable"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("'writable' is not a mode: managed, export_only or reconcile_only")
    );
    let run = p.envgate(&["mode", "set", "--env", "qa", "managed"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("no environment 'qa' (configured: dev, prod)"),
        "{run:?}"
    );
    assert_eq!(read(), before);
    let leftovers: Vec<_> = std::fs::read_dir(p.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".envgate-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
