//! The process's secrets, and the doors text leaves the process through.
//!
//! Every secret envgate reads — environment URLs in any form, accepted or
//! rejected, `url_file` contents, the control store's URL, the bot's
//! webhook secrets, private key and tokens, credential files — is
//! registered here the moment it is read, before anything can print, log,
//! audit, comment or send it. Every text that leaves the process goes
//! through [`scrub`] on its way out: standard output and error ([`out`],
//! [`err`], and the `say!`/`warn!`-style macros), the log writer
//! ([`LogWriter`]), request bodies to the forges, audit records (before they
//! are hashed) and the control store's rows. Masking is by value, so it
//! does not depend on parsing a URL the way a driver would: a password a
//! database server echoes back in its error is masked as well.
//!
//! A guard test keeps the doors few: no `println!`, `eprintln!`,
//! `std::io::stdout()` or `std::io::stderr()` outside this module.

use crate::core::redact::Redactor;
use std::borrow::Cow;
use std::io::Write;
use std::sync::{Arc, RwLock};

static REGISTRY: RwLock<Option<Arc<Redactor>>> = RwLock::new(None);

fn update(f: impl FnOnce(&mut Redactor)) {
    let mut guard = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    let mut next = guard.as_deref().cloned().unwrap_or_default();
    f(&mut next);
    *guard = Some(Arc::new(next));
}

fn current() -> Option<Arc<Redactor>> {
    REGISTRY
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .filter(|r| !r.is_empty())
        .cloned()
}

/// Registers one secret (a token, a key, a file's content).
pub fn register(secret: &str) {
    let secret = secret.trim();
    if !secret.is_empty() {
        update(|r| {
            r.add(secret);
        });
    }
}

/// Registers every secret a connection string holds, in whatever form it
/// was written (see [`crate::core::redact::connection_secrets`]).
pub fn register_url(text: &str) {
    update(|r| r.add_url(text));
}

/// Registers a secret source read whole (a `url_file`, a credentials
/// file): its whole content and every secret in it.
pub fn register_source(text: &str) {
    update(|r| {
        r.add(text.trim());
        r.add_url(text);
    });
}

/// `text` with every registered secret masked.
pub fn scrub(text: &str) -> Cow<'_, str> {
    match current() {
        Some(r) => Cow::Owned(r.redact(text)),
        None => Cow::Borrowed(text),
    }
}

/// The same, owned.
pub fn scrubbed(text: &str) -> String {
    scrub(text).into_owned()
}

/// The same for bytes.
pub fn scrub_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    match current() {
        Some(r) => Cow::Owned(r.redact_bytes(bytes)),
        None => Cow::Borrowed(bytes),
    }
}

/// Writes to standard output, scrubbed.
pub fn out(text: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(scrub(text).as_bytes())?;
    o.flush()
}

/// Writes to standard error, scrubbed (errors ignored: there is nowhere
/// left to report them).
pub fn err(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(scrub(text).as_bytes());
    let _ = e.flush();
}

/// Whether standard output / error is a terminal.
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}

pub fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// A line to standard output, scrubbed (a closed pipe is ignored).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        { let _ = $crate::secrets::out(&format!("{}\n", format_args!($($arg)*))); }
    };
}

/// A line to standard error, scrubbed.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::secrets::err(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// The log writer: each event is formatted into a buffer, scrubbed, then
/// written to standard error whole.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

/// One event's bytes, written scrubbed when dropped.
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(&scrub_bytes(&self.0));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::with_capacity(256))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_scrubbed_in_every_form() {
        register_url("user=app password='Reg1stered?secret' host=db");
        register("tok_ABCDEF123");
        let text = "auth failed for Reg1stered?secret; json \"Reg1stered?secret\"; \
                    url Reg1stered%3Fsecret; token tok_ABCDEF123";
        let out = scrub(text);
        assert!(!out.contains("Reg1stered"), "{out}");
        assert!(!out.contains("tok_ABCDEF123"), "{out}");
        assert_eq!(scrub("nothing here"), "nothing here");
    }

    /// The doors stay few: output goes through this module only.
    #[test]
    fn no_output_bypasses_the_scrubber() {
        let forbidden = [
            "println!(",
            "eprintln!(",
            "print!(",
            "eprint!(",
            "std::io::stdout()",
            "std::io::stderr()",
            "io::stdout()",
            "io::stderr()",
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![root];
        let mut checked = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path.ends_with("secrets.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap();
                for word in forbidden {
                    assert!(
                        !code.contains(word),
                        "{} writes with {word}: use crate::secrets (outln!, errln!, out, err)",
                        path.display()
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 50);
    }
}
