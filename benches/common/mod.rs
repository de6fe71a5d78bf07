//! Running commands as processes and measuring them, for the bench
//! binaries: warm-up runs, wall time and peak resident memory (wait4).

#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sample {
    pub wall: Duration,
    pub max_rss_kib: i64,
}

/// Runs `cmd` once; returns its wall time and peak RSS.
///
/// The command is started by a small process — this bench binary run
/// again with `--measure-child` — rather than forked from the bench itself:
/// a process's peak RSS counts the pages it shared with its parent before
/// `exec`, so a child of a bench that holds 40 MiB of fixtures would report
/// at least 40 MiB whatever it used. The helper times the command and reads
/// its rusage with wait4; its own start-up is not in the figures.
pub fn run_once(cmd: &mut Command) -> Sample {
    let mut helper = Command::new(std::env::current_exe().expect("the bench binary"));
    helper.arg("--measure-child").arg(cmd.get_program());
    helper.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => helper.env(k, v),
            None => helper.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        helper.current_dir(dir);
    }
    let out = helper
        .stderr(Stdio::inherit())
        .output()
        .expect("the measuring helper");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text.split_whitespace();
    let (wall_ns, rss, code): (u64, i64, i32) = (
        f.next().and_then(|v| v.parse().ok()).expect("wall"),
        f.next().and_then(|v| v.parse().ok()).expect("rss"),
        f.next().and_then(|v| v.parse().ok()).expect("exit code"),
    );
    assert!(code == 0 || code == 1, "{cmd:?} exited with {code}");
    Sample {
        wall: Duration::from_nanos(wall_ns),
        max_rss_kib: rss,
    }
}

/// When this bench binary was started by [`run_once`] to measure one
/// command: runs it, prints `<wall ns> <peak RSS KiB> <exit code>` and
/// exits. Call first thing in `main`.
// The child is reaped by wait4 rather than `Child::wait`, to get its rusage.
#[allow(clippy::zombie_processes)]
pub fn measure_child_mode() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_none_or(|a| a != "--measure-child") {
        return;
    }
    let start = Instant::now();
    let child = Command::new(&args[2])
        .args(&args[3..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child; status and usage are valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(r, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    println!("{} {} {code}", wall.as_nanos(), usage.ru_maxrss);
    std::process::exit(0);
}

pub struct Stats {
    pub median: Duration,
    pub min: Duration,
    pub p95: Duration,
    pub max_rss_mib: f64,
}

pub fn measure(runs: usize, mut make: impl FnMut() -> Command) -> Stats {
    for _ in 0..3 {
        run_once(&mut make());
    }
    stats((0..runs).map(|_| run_once(&mut make())).collect())
}

/// Measures two commands in alternation, so that whatever else the machine
/// does weighs on both alike.
pub fn measure_pair(
    runs: usize,
    mut a: impl FnMut() -> Command,
    mut b: impl FnMut() -> Command,
) -> (Stats, Stats) {
    for _ in 0..3 {
        run_once(&mut a());
        run_once(&mut b());
    }
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        sa.push(run_once(&mut a()));
        sb.push(run_once(&mut b()));
    }
    (stats(sa), stats(sb))
}

/// Measures several commands in turn (A B C … A B C …), so that whatever
/// else the machine does weighs on all alike; warm-up rounds first.
pub fn measure_all(runs: usize, makers: &mut [&mut dyn FnMut() -> Command]) -> Vec<Stats> {
    for _ in 0..3 {
        for make in makers.iter_mut() {
            run_once(&mut make());
        }
    }
    let mut samples: Vec<Vec<Sample>> = makers.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for (i, make) in makers.iter_mut().enumerate() {
            samples[i].push(run_once(&mut make()));
        }
    }
    samples.into_iter().map(stats).collect()
}

/// A peer tool's own executable under target/bench-tools (installed by
/// scripts/bench-deps.sh), never a launcher: npm's `.bin/dbmate` is a
/// Node.js script that starts a runtime and then the real binary, which
/// would count Node's start-up against the peer.
pub fn native_tool(name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tools");
    let mut candidates = vec![root.join("bin").join(name)];
    if let Ok(scoped) = std::fs::read_dir(root.join("node_modules/@dbmate")) {
        for platform in scoped.flatten() {
            candidates.push(platform.path().join("bin").join(name));
        }
    }
    let path = candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: run scripts/bench-deps.sh"));
    let head = std::fs::read(&path).unwrap_or_default();
    assert!(
        head.starts_with(b"\x7fELF"),
        "{}: not a native executable (a launcher script would time its runtime's start-up)",
        path.display()
    );
    path
}

pub fn stats(mut samples: Vec<Sample>) -> Stats {
    let runs = samples.len();
    samples.sort_by_key(|s| s.wall);
    let p95 = samples[((runs as f64 * 0.95).ceil() as usize).min(runs) - 1].wall;
    Stats {
        median: samples[runs / 2].wall,
        min: samples[0].wall,
        p95,
        max_rss_mib: samples.iter().map(|s| s.max_rss_kib).max().unwrap() as f64 / 1024.0,
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The number after `name` on the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
