//! A root filesystem on disk (`dir:PATH`) read into the same file view as an image.
//! Symbolic links are recorded, never followed, so nothing outside the root is read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crscan_model::{FileInterest, FileView, ImageFile, Keep};

use crate::layer::{checked_path, read_capped, read_up_to};
use crate::{ImageError, Limits, MemoryBudget};

/// Walks `root` and keeps the files `interest` wants.
pub(crate) fn read_root(
    root: &Path,
    interest: &dyn FileInterest,
    limits: &Limits,
    budget: &MemoryBudget,
) -> Result<FileView, ImageError> {
    let metadata = fs::metadata(root).map_err(|error| ImageError::io(root, error))?;
    if !metadata.is_dir() {
        return Err(ImageError::io(
            root,
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    let place = || format!("directory {}", root.display());
    let mut view = FileView::new();
    let mut pending: Vec<(PathBuf, String)> = vec![(root.to_owned(), String::new())];
    let mut entries = 0u64;
    while let Some((dir, image_dir)) = pending.pop() {
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(error) if error.kind() == io::ErrorKind::PermissionDenied => continue,
            Err(error) => return Err(ImageError::io(&dir, error)),
        };
        for entry in listing {
            let entry = entry.map_err(|error| ImageError::io(&dir, error))?;
            entries += 1;
            if entries > limits.max_entries_per_layer {
                return Err(ImageError::TooManyEntries {
                    place: place(),
                    limit: limits.max_entries_per_layer,
                });
            }
            let name = entry.file_name();
            let raw = format!("{image_dir}/{}", name.to_string_lossy());
            let path = checked_path(raw.as_bytes(), &place, limits)?;
            let disk_path = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|error| ImageError::io(&disk_path, error))?;
            if file_type.is_dir() {
                pending.push((disk_path, path));
            } else if file_type.is_symlink() {
                let target =
                    fs::read_link(&disk_path).map_err(|error| ImageError::io(&disk_path, error))?;
                let target = target.to_string_lossy().into_owned();
                if target.len() > limits.max_path_len {
                    return Err(ImageError::PathTooLong {
                        place: format!("the target of {path} in {}", place()),
                        path: crate::layer::shorten(&target),
                        limit: limits.max_path_len,
                    });
                }
                view.insert_symlink(path, target);
            } else if file_type.is_file()
                && let Some(file) = keep_file(&disk_path, path, interest, limits, budget)?
            {
                view.insert(file);
            }
        }
    }
    Ok(view)
}

fn keep_file(
    disk_path: &Path,
    path: String,
    interest: &dyn FileInterest,
    limits: &Limits,
    budget: &MemoryBudget,
) -> Result<Option<ImageFile>, ImageError> {
    let by_path = interest.by_path(&path) != Keep::No;
    let magic_len = interest.magic_len();
    if !by_path && magic_len == 0 {
        return Ok(None);
    }
    let mut file = match fs::File::open(disk_path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
        Err(error) => return Err(ImageError::io(disk_path, error)),
    };
    let io_error = |error| ImageError::io(disk_path, error);
    let mut head = Vec::new();
    if !by_path {
        head.resize(magic_len, 0);
        let count = read_up_to(&mut file, &mut head).map_err(io_error)?;
        head.truncate(count);
        if !interest.by_magic(&path, &head) {
            return Ok(None);
        }
    }
    let metadata = file.metadata().map_err(io_error)?;
    let charged = metadata.len().min(limits.max_file_bytes);
    budget.charge(charged, &path, "the directory")?;
    let (contents, truncated) =
        read_capped(&mut file, head, metadata.len(), limits.max_file_bytes).map_err(io_error)?;
    budget.release(charged.saturating_sub(contents.len() as u64));
    Ok(Some(ImageFile {
        path,
        layer_digest: None,
        mode: mode_of(&metadata),
        contents: Arc::from(contents),
        truncated,
        history: Vec::new(),
    }))
}

#[cfg(unix)]
fn mode_of(metadata: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(metadata: &fs::Metadata) -> u32 {
    if metadata.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}
