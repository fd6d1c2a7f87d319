//! Znode paths: validation and parent/child arithmetic on `&str`.
//!
//! A path is absolute and `/`-separated, with no empty, `.` or `..` component, no trailing `/`
//! except the root `/`, and no NUL.

use super::error::{CoordError, PathError};

/// The root path.
pub const ROOT: &str = "/";

/// One malformed path of each kind and the reason `check` gives, shared by the unit tests and
/// the conformance suite (which expects every operation of every implementation to refuse them).
pub(crate) const MALFORMED_PATHS: [(&str, PathError); 7] = [
    ("", PathError::Empty),
    ("a", PathError::NotAbsolute),
    ("/a/", PathError::TrailingSlash),
    ("/a//b", PathError::EmptyComponent),
    ("/a/./b", PathError::RelativeComponent),
    ("/a/..", PathError::RelativeComponent),
    ("/a\0b", PathError::Nul),
];

/// Checks `path` and returns what is wrong with it.
///
/// # Errors
/// The first [`PathError`] found.
pub fn check(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if path == ROOT {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(PathError::TrailingSlash);
    }
    if path.contains('\0') {
        return Err(PathError::Nul);
    }
    path[1..].split('/').try_for_each(check_component)
}

fn check_component(component: &str) -> Result<(), PathError> {
    match component {
        "" => Err(PathError::EmptyComponent),
        "." | ".." => Err(PathError::RelativeComponent),
        _ => Ok(()),
    }
}

/// Checks `path` as an operation argument.
///
/// # Errors
/// [`CoordError::InvalidPath`] if the path is not valid.
pub fn validate(path: &str) -> Result<(), CoordError> {
    check(path).map_err(|reason| CoordError::InvalidPath {
        path: path.to_owned(),
        reason,
    })
}

/// Checks `path` as the target of a create or delete: valid and not the root.
///
/// # Errors
/// [`CoordError::InvalidPath`] if the path is not valid or is the root.
pub fn validate_non_root(path: &str) -> Result<(), CoordError> {
    validate(path)?;
    if path == ROOT {
        return Err(CoordError::InvalidPath {
            path: path.to_owned(),
            reason: PathError::Root,
        });
    }
    Ok(())
}

/// The parent of a valid non-root path.
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => ROOT,
        Some(slash) => &path[..slash],
    }
}

/// The last component of a valid non-root path.
pub fn name(path: &str) -> &str {
    path.rfind('/').map_or(path, |slash| &path[slash + 1..])
}

/// The path of child `name` under `parent`.
pub fn join(parent: &str, name: &str) -> String {
    if parent == ROOT {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The strict ancestors of a valid path, nearest first, ending with the root.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut current = path;
    std::iter::from_fn(move || {
        if current == ROOT {
            return None;
        }
        current = parent(current);
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_paths() {
        for path in ["/", "/a", "/a/b", "/brokers/ids/0", "/a.b", "/...", "/ü"] {
            assert_eq!(check(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn rejects_each_kind_of_bad_path() {
        for (path, expected) in MALFORMED_PATHS {
            assert_eq!(check(path), Err(expected), "{path:?}");
        }
    }

    #[test]
    fn root_is_not_a_create_target() {
        assert!(matches!(
            validate_non_root("/"),
            Err(CoordError::InvalidPath {
                reason: PathError::Root,
                ..
            })
        ));
    }

    #[test]
    fn parent_name_join_agree() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(name("/a/b/c"), "c");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), ["/a/b", "/a", "/"]);
        assert_eq!(ancestors("/").count(), 0);
    }
}
