//! Just enough of Python's syntax to read the literals Django and Alembic
//! migrations declare (`revision = "ab12"`, `down_revision = ("a", "b")`,
//! `dependencies = [("app", "0001_initial")]`) without running them.

/// The text of the value assigned to `name` at the start of a line
/// (indentation and a type annotation allowed), up to the end of the
/// statement; `None` when there is no such assignment.
pub fn assignment<'a>(src: &'a str, name: &str) -> Option<&'a str> {
    let mut offset = 0;
    for line in src.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix(name) {
            let rest_trim = rest.trim_start();
            let after = if let Some(r) = rest_trim.strip_prefix(':') {
                // `name: Annotation = value`
                r.find('=').map(|i| &r[i + 1..])
            } else {
                rest_trim.strip_prefix('=').filter(|r| !r.starts_with('='))
            };
            if let Some(value) = after {
                let start = offset + (line.len() - trimmed.len()) + (trimmed.len() - value.len());
                return Some(statement(&src[start..]));
            }
        }
        offset += line.len();
    }
    None
}

/// An expression up to the end of its statement: the first newline outside
/// brackets and strings.
fn statement(src: &str) -> &str {
    let bytes = src.as_bytes();
    let mut depth = 0i32;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b'\'' | b'"' => {
                i = skip_string(src, i).unwrap_or(bytes.len());
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\\' if bytes.get(i + 1) == Some(&b'\n') => i += 1,
            b'\n' if depth <= 0 => return src[..i].trim(),
            _ => {}
        }
        i += 1;
    }
    src.trim()
}

/// The index just after the string literal starting at `i` (a quote).
fn skip_string(src: &str, i: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    let q = bytes[i];
    let triple = bytes.get(i + 1) == Some(&q) && bytes.get(i + 2) == Some(&q);
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            c if c == q => {
                if !triple {
                    return Some(j + 1);
                }
                if bytes.get(j + 1) == Some(&q) && bytes.get(j + 2) == Some(&q) {
                    return Some(j + 3);
                }
                j += 1;
            }
            b'\n' if !triple => return None,
            _ => j += 1,
        }
    }
    None
}

/// The string literals of an expression, in order (simple escapes undone).
pub fn strings(expr: &str) -> Result<Vec<String>, String> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\'' || bytes[i] == b'"' {
            let end =
                skip_string(expr, i).ok_or_else(|| format!("unterminated string in `{expr}`"))?;
            let q = bytes[i];
            let triple = end - i >= 6 && bytes[i + 1] == q && bytes[i + 2] == q;
            let inner = if triple {
                &expr[i + 3..end - 3]
            } else {
                &expr[i + 1..end - 1]
            };
            out.push(unescape(inner));
            i = end;
        } else if bytes[i] == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    Ok(out)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether an expression is Python's `None`.
pub fn is_none(expr: &str) -> bool {
    expr.trim() == "None"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_assignments() {
        let src = "\"\"\"doc\"\"\"\nrevision: str = 'ab12'\ndown_revision: Union[str, Sequence[str], None] = (\n    'a1', # first\n    \"b2\",\n)\nbranch_labels = None\n";
        assert_eq!(
            strings(assignment(src, "revision").unwrap()).unwrap(),
            ["ab12"]
        );
        assert_eq!(
            strings(assignment(src, "down_revision").unwrap()).unwrap(),
            ["a1", "b2"]
        );
        assert!(is_none(assignment(src, "branch_labels").unwrap()));
        assert_eq!(assignment(src, "depends_on"), None);
        let django = "class Migration(migrations.Migration):\n    dependencies = [\n        ('accounts', '0001_initial'),\n        migrations.swappable_dependency(settings.AUTH_USER_MODEL),\n    ]\n    operations = []\n";
        let deps = assignment(django, "dependencies").unwrap();
        assert!(deps.starts_with('[') && deps.ends_with(']'), "{deps}");
        assert_eq!(strings(deps).unwrap(), ["accounts", "0001_initial"]);
        assert!(strings("('unterminated)").is_err());
    }
}
