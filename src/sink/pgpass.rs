//! libpq's password file (`~/.pgpass`, or the file `PGPASSFILE` names), read as libpq reads it:
//! lines of `hostname:port:database:username:password`, the first line whose four fields match
//! the connection giving its password. A field of `*` matches anything; `\` makes the next
//! character (a `:` or `\`) a plain one; a line starting with `#` is a comment. A file that its
//! group or others may read is not used (libpq refuses it too).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The password `path` gives the connection `wanted` (host, port, database, user), with its
/// line number; None when the file is missing or no line matches. The error says why the file
/// was not read.
pub fn lookup(path: &Path, wanted: [&str; 4]) -> Result<Option<(String, usize)>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{} cannot be read: {e}", path.display())),
    };
    if !meta.is_file() {
        return Err(format!("{} is not a plain file", path.display()));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} has group or world access; permissions should be u=rw (0600) or less",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    Ok(find(&text, wanted))
}

/// The first line of `text` that matches `wanted`: its password and line number.
fn find(text: &str, wanted: [&str; 4]) -> Option<(String, usize)> {
    text.lines().enumerate().find_map(|(n, line)| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            return None;
        }
        let fields = fields(line);
        let [host, port, database, user, password, ..] = fields.as_slice() else {
            return None;
        };
        let matches = [host, port, database, user]
            .iter()
            .zip(wanted)
            .all(|((field, any), want)| *any || field == want);
        matches.then(|| (password.0.clone(), n + 1))
    })
}

/// A line's fields, split at each `:` that no `\` makes plain, each with its `\`s taken out and
/// whether it is a bare `*` (anything).
fn fields(line: &str) -> Vec<(String, bool)> {
    let mut fields = Vec::new();
    let (mut field, mut escaped_any) = (String::new(), false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                escaped_any = true;
                field.push(chars.next().unwrap_or('\\'));
            }
            ':' => {
                let any = field == "*" && !escaped_any;
                fields.push((std::mem::take(&mut field), any));
                escaped_any = false;
            }
            c => field.push(c),
        }
    }
    let any = field == "*" && !escaped_any;
    fields.push((field, any));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANTED: [&str; 4] = ["db.example.com", "5432", "metrics", "dau"];

    #[test]
    fn the_first_matching_line_gives_the_password() {
        let text = "# a comment:*:*:*:no\n\
                    db.example.com:5433:metrics:dau:other port\n\
                    *:5432:*:dau:first\r\n\
                    db.example.com:5432:metrics:dau:second\n";
        assert_eq!(find(text, WANTED), Some(("first".into(), 3)));
        assert_eq!(find(text, ["h", "5432", "x", "root"]), None);
    }

    #[test]
    fn backslashes_make_colons_and_backslashes_plain() {
        let text = "db.example.com:5432:metrics:dau:pa\\:ss\\\\word:ignored";
        assert_eq!(find(text, WANTED), Some(("pa:ss\\word".into(), 1)));
        // An escaped star is a star, not anything.
        assert_eq!(find("\\*:*:*:*:x", WANTED), None);
        assert_eq!(
            find("\\*:*:*:*:x", ["*", "1", "d", "u"]),
            Some(("x".into(), 1))
        );
        // A colon in a field that is escaped is part of it.
        assert_eq!(
            find("fe80\\:\\:1:*:*:*:v6", ["fe80::1", "5432", "d", "u"]),
            Some(("v6".into(), 1))
        );
    }

    #[test]
    fn short_lines_match_nothing() {
        assert_eq!(find("db.example.com:5432:metrics:dau", WANTED), None);
        assert_eq!(find("", WANTED), None);
    }

    #[test]
    fn a_file_others_may_read_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        assert_eq!(lookup(&path, WANTED), Ok(None));
        std::fs::write(&path, "*:*:*:*:secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(lookup(&path, WANTED), Ok(Some(("secret".into(), 1))));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = lookup(&path, WANTED).unwrap_err();
        assert!(refused.contains("group or world access"), "{refused}");
        assert!(
            lookup(dir.path(), WANTED)
                .unwrap_err()
                .contains("not a plain file")
        );
    }
}
