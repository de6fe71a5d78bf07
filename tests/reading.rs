//! Reading the migrations directory is bounded: special files, oversized
//! files, runaway walks and links out of the project are refused with a
//! clear message, and names are shown escaped.

mod support;

use support::Project;

fn sqlite_project(extra_config: &str) -> Project {
    Project::new(
        &format!("{extra_config}\n[environments.dev]\nurl = \"sqlite://dev.db\"\n"),
        &[("1_users.sql", "CREATE TABLE users (id int);\n")],
    )
}

#[test]
fn a_link_to_a_device_is_refused_not_read() {
    // Allowed out of the project, so the device itself is what is refused.
    let project = sqlite_project("allow_links_outside = true");
    std::os::unix::fs::symlink("/dev/zero", project.path().join("migrations/2_zero.sql")).unwrap();
    let run = project.envgate(&["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "migrations/2_zero.sql: not a regular file (a device): envgate reads only files"
        ),
        "{run:?}"
    );
}

#[test]
fn a_fifo_is_refused_without_hanging() {
    let project = sqlite_project("");
    let fifo = project.path().join("migrations/2_pipe.sql");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let run = project.envgate(&["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("migrations/2_pipe.sql: not a regular file (a FIFO)"),
        "{run:?}"
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused() {
    let project = sqlite_project("max_migration_size = \"1KiB\"");
    project.write("migrations/2_big.sql", &"-- padding\n".repeat(200));
    let run = project.envgate(&["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "migrations/2_big.sql: cannot read: larger than max_migration_size (1024 bytes)"
        ),
        "{run:?}"
    );
    let bad = sqlite_project("max_migration_size = \"lots\"");
    let run = bad.envgate(&["status"]);
    assert!(
        run.stderr
            .contains("`max_migration_size` = \"lots\" is not a size such as \"64MiB\""),
        "{run:?}"
    );
}

#[test]
fn a_link_out_of_the_project_is_refused_unless_allowed() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.sql"), "CREATE TABLE x (id int);\n").unwrap();
    let project = sqlite_project("");
    std::os::unix::fs::symlink(
        outside.path().join("x.sql"),
        project.path().join("migrations/2_x.sql"),
    )
    .unwrap();
    let run = project.envgate(&["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("migrations/2_x.sql: a symbolic link to")
            && run
                .stderr
                .contains("outside the project; envgate does not follow it"),
        "{run:?}"
    );
    // A link inside the project is fine, and so is one out of it once allowed.
    project.write("shared/3_y.sql", "CREATE TABLE y (id int);\n");
    std::os::unix::fs::symlink(
        "../shared/3_y.sql",
        project.path().join("migrations/3_y.sql"),
    )
    .unwrap();
    let toml = std::fs::read_to_string(project.path().join("envgate.toml")).unwrap();
    project.write(
        "envgate.toml",
        &format!("allow_links_outside = true\n{toml}"),
    );
    // (dev.db does not exist: unreachable, exit 4, once the files are read.)
    let run = project.envgate(&["status", "--format", "json"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(run.json()["migrations"].as_array().unwrap().len(), 3);
}

#[test]
fn a_walk_of_the_whole_file_system_is_bounded() {
    let project = Project::new(
        "format = \"flyway\"\nmigrations = \"/\"\n\n[environments.dev]\nurl = \"sqlite://dev.db\"\n",
        &[],
    );
    let run = project.envgate(&["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "error: /: more than 200000 entries under the migrations directory; is `migrations` right?"
        ),
        "{run:?}"
    );
}

#[test]
fn ignored_names_are_shown_escaped() {
    let project = sqlite_project("");
    project.write("migrations/notes\n\u{1b}[2J.txt", "x");
    let run = project.envgate(&["-v", "status"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr
            .contains("ignored migrations/notes\\n\\u{1b}[2J.txt: not a .sql file"),
        "{run:?}"
    );
    assert!(!run.stderr.contains('\u{1b}'), "{run:?}");
}
