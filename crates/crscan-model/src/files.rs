//! The flattened view of an image's filesystem that detectors read.
//!
//! The image reader (`crscan-image`) streams every layer once and keeps only the files
//! some detector declared an interest in (by path or by the first bytes of the file).
//! The result is a [`FileView`]: the final state of those files after whiteouts, plus
//! symbolic links so that lookups resolve inside the image and never outside it.
//! Detectors (`crscan-catalog`) read only this view, which is why they do no I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Digest;

/// How much of a file a detector wants kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Keep {
    /// Not interesting.
    No,
    /// The final contents.
    Yes,
    /// The final contents and each earlier layer's version, so that a package
    /// database can tell which layer installed each package.
    WithHistory,
}

/// What the image reader must keep, declared by the detectors.
///
/// Paths passed in are absolute and normalised (`/usr/lib/os-release`, no `.`/`..`,
/// no trailing slash).
pub trait FileInterest: Send + Sync {
    /// Whether a file at `path` should be kept, judging by its path alone.
    fn by_path(&self, path: &str) -> Keep;

    /// How many leading bytes [`FileInterest::by_magic`] needs; 0 disables it.
    fn magic_len(&self) -> usize {
        0
    }

    /// Whether a file should be kept, judging by its first bytes (for example the ELF
    /// magic of a Go binary, or the zip magic of a jar). Called only for files that
    /// `by_path` declined, with at most `magic_len` bytes.
    fn by_magic(&self, _path: &str, _head: &[u8]) -> bool {
        false
    }
}

/// One version of a kept file, as one layer wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVersion {
    /// The layer that wrote this version; `None` for a directory source.
    pub layer_digest: Option<Digest>,
    pub contents: Arc<[u8]>,
}

/// A kept file in its final state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Absolute normalised path.
    pub path: String,
    /// The layer that last wrote the file; `None` for a directory source.
    pub layer_digest: Option<Digest>,
    /// Unix mode bits from the tar header or the filesystem.
    pub mode: u32,
    /// The final contents (possibly truncated to a size cap: see `truncated`).
    pub contents: Arc<[u8]>,
    /// True when the file was larger than the cap and only a prefix is kept.
    pub truncated: bool,
    /// Earlier versions, oldest first, excluding the final one. Filled only for paths
    /// whose interest was [`Keep::WithHistory`].
    pub history: Vec<FileVersion>,
}

/// The final state of the kept files of an image, with its symbolic links.
#[derive(Debug, Clone, Default)]
pub struct FileView {
    files: BTreeMap<String, ImageFile>,
    symlinks: BTreeMap<String, String>,
}

/// Longest chain of symbolic links a lookup follows before giving up.
const MAX_LINK_HOPS: usize = 40;

impl FileView {
    pub fn new() -> FileView {
        FileView::default()
    }

    /// Adds or replaces a file.
    pub fn insert(&mut self, file: ImageFile) {
        self.symlinks.remove(&file.path);
        self.files.insert(file.path.clone(), file);
    }

    /// Records a symbolic link at `path` pointing to `target` (as written in the image,
    /// relative or absolute; absolute targets are taken relative to the image root).
    pub fn insert_symlink(&mut self, path: String, target: String) {
        self.files.remove(&path);
        self.symlinks.insert(path, target);
    }

    /// Removes a path and everything below it (a whiteout).
    pub fn remove_tree(&mut self, path: &str) {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        self.files.remove(path);
        self.symlinks.remove(path);
        self.files.retain(|key, _| !key.starts_with(&prefix));
        self.symlinks.retain(|key, _| !key.starts_with(&prefix));
    }

    /// Removes the file or symbolic link stored exactly at `path` (a lower entry that an
    /// upper layer replaced), leaving anything below it.
    pub fn remove(&mut self, path: &str) {
        self.files.remove(path);
        self.symlinks.remove(path);
    }

    /// Removes everything strictly below `dir` (an opaque directory).
    pub fn remove_children(&mut self, dir: &str) {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.files.retain(|key, _| !key.starts_with(&prefix));
        self.symlinks.retain(|key, _| !key.starts_with(&prefix));
    }

    /// Mutable access to a file stored exactly at `path` (no link resolution).
    pub fn get_exact_mut(&mut self, path: &str) -> Option<&mut ImageFile> {
        self.files.get_mut(path)
    }

    /// The file at `path`, following symbolic links (in the final component and in
    /// parent directories) inside the image. Loops and escapes give `None`.
    pub fn get(&self, path: &str) -> Option<&ImageFile> {
        let resolved = self.resolve(path)?;
        self.files.get(&resolved)
    }

    /// Resolves symbolic links in `path` inside the image. Returns the normalised
    /// path of the target, or `None` after too many hops.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let mut pending: Vec<String> = normalize_components(path);
        pending.reverse();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0usize;
        while let Some(component) = pending.pop() {
            if component == ".." {
                resolved.pop();
                continue;
            }
            resolved.push(component);
            let current = format!("/{}", resolved.join("/"));
            if let Some(target) = self.symlinks.get(&current) {
                hops += 1;
                if hops > MAX_LINK_HOPS {
                    return None;
                }
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                let mut target_components: Vec<String> = target
                    .split('/')
                    .filter(|part| !part.is_empty() && *part != ".")
                    .map(str::to_owned)
                    .collect();
                target_components.reverse();
                pending.extend(target_components);
            }
        }
        Some(format!("/{}", resolved.join("/")))
    }

    /// All kept files, in path order.
    pub fn files(&self) -> impl Iterator<Item = &ImageFile> {
        self.files.values()
    }

    /// Kept files whose path starts with `prefix`, in path order.
    pub fn files_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a ImageFile> {
        self.files
            .range(prefix.to_owned()..)
            .take_while(move |(key, _)| key.starts_with(prefix))
            .map(|(_, file)| file)
    }

    /// All symbolic links as (path, target).
    pub fn symlinks(&self) -> impl Iterator<Item = (&str, &str)> {
        self.symlinks.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Splits a path into components, dropping empty ones and `.`, keeping `..`.
fn normalize_components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .map(str::to_owned)
        .collect()
}

/// Normalises a path from an archive or link target into an absolute path inside the
/// image: `./a/../b/` becomes `/b`; `..` never climbs above the root.
pub fn normalize_path(path: &str) -> String {
    // Built in one buffer: the layer walker calls this once per tar entry.
    let mut out = String::with_capacity(path.len() + 1);
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                let parent = out.rfind('/').unwrap_or(0);
                out.truncate(parent);
            }
            other => {
                out.push('/');
                out.push_str(other);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> ImageFile {
        ImageFile {
            path: path.to_owned(),
            layer_digest: None,
            mode: 0o644,
            contents: Arc::from(text.as_bytes()),
            truncated: false,
            history: Vec::new(),
        }
    }

    #[test]
    fn resolves_links_inside_the_image() {
        let mut view = FileView::new();
        view.insert(file("/usr/lib/os-release", "ID=debian"));
        view.insert_symlink("/etc/os-release".into(), "../usr/lib/os-release".into());
        view.insert_symlink("/lib".into(), "/usr/lib".into());
        view.insert_symlink("/escape".into(), "../../../../usr/lib/os-release".into());
        assert_eq!(
            view.get("/etc/os-release").unwrap().path,
            "/usr/lib/os-release"
        );
        assert_eq!(
            view.get("/lib/os-release").unwrap().path,
            "/usr/lib/os-release"
        );
        assert_eq!(view.get("/escape").unwrap().path, "/usr/lib/os-release");
    }

    #[test]
    fn link_loops_end() {
        let mut view = FileView::new();
        view.insert_symlink("/a".into(), "/b".into());
        view.insert_symlink("/b".into(), "/a".into());
        assert!(view.get("/a").is_none());
    }

    #[test]
    fn whiteouts_remove_trees() {
        let mut view = FileView::new();
        view.insert(file("/a/b", "1"));
        view.insert(file("/a/c/d", "2"));
        view.insert(file("/ab", "3"));
        view.remove_tree("/a");
        assert_eq!(view.len(), 1);
        assert!(view.get("/ab").is_some());
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize_path("./a/../b/"), "/b");
        assert_eq!(normalize_path("../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalize_path("/"), "/");
    }
}
