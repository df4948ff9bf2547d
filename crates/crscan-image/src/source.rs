//! Image sources as users name them (`oci:PATH[:TAG]`, `oci-archive:FILE`,
//! `docker-archive:FILE`, `dir:PATH`) and bare paths recognised by their content.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::ImageError;
use crate::container::Container;

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An OCI image layout directory; `tag` matches the
    /// `org.opencontainers.image.ref.name` annotation in `index.json`.
    OciLayout { path: PathBuf, tag: Option<String> },
    /// A tar file (gzip-compressed or not) holding an OCI image layout.
    OciArchive(PathBuf),
    /// A `docker save` tar file (gzip-compressed or not).
    DockerArchive(PathBuf),
    /// A root filesystem on disk.
    Dir(PathBuf),
}

/// Transports other tools know that this reader does not read.
const FOREIGN_TRANSPORTS: &[&str] = &[
    "docker:",
    "docker-daemon:",
    "containers-storage:",
    "registry:",
    "ostree:",
    "sif:",
];

impl ImageSource {
    /// Parses a source as a user writes it; a bare path is recognised by content.
    pub fn parse(text: &str) -> Result<ImageSource, ImageError> {
        if let Some(rest) = text.strip_prefix("oci:") {
            return Ok(parse_oci(rest));
        }
        if let Some(rest) = text.strip_prefix("oci-archive:") {
            return nonempty(rest, text).map(ImageSource::OciArchive);
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            return nonempty(rest, text).map(ImageSource::DockerArchive);
        }
        if let Some(rest) = text.strip_prefix("dir:") {
            return nonempty(rest, text).map(ImageSource::Dir);
        }
        if text.contains("://")
            || FOREIGN_TRANSPORTS
                .iter()
                .any(|prefix| text.starts_with(prefix))
        {
            return Err(ImageError::UnknownSource(text.to_owned()));
        }
        ImageSource::sniff(Path::new(text))
    }

    /// Recognises a path by its content: a directory with an `oci-layout` file is an
    /// OCI layout, another directory a root filesystem; a tar file (gzip-compressed
    /// or not) with `manifest.json` is a docker archive (newer `docker save` output
    /// also holds an OCI layout, and `manifest.json` reads it fine), one with only
    /// `oci-layout` an OCI archive.
    pub fn sniff(path: &Path) -> Result<ImageSource, ImageError> {
        let metadata = std::fs::metadata(path).map_err(|error| ImageError::io(path, error))?;
        if metadata.is_dir() {
            if path.join("oci-layout").is_file() {
                return Ok(ImageSource::OciLayout {
                    path: path.to_owned(),
                    tag: None,
                });
            }
            return Ok(ImageSource::Dir(path.to_owned()));
        }
        let unknown = || {
            ImageError::UnknownSource(format!(
                "{}: neither an OCI layout, an OCI archive, a docker archive nor a directory",
                path.display()
            ))
        };
        let container = Container::open_archive(path).map_err(|_| unknown())?;
        if container.contains("manifest.json") {
            Ok(ImageSource::DockerArchive(path.to_owned()))
        } else if container.contains("oci-layout") && container.contains("index.json") {
            Ok(ImageSource::OciArchive(path.to_owned()))
        } else {
            Err(unknown())
        }
    }
}

fn nonempty(rest: &str, text: &str) -> Result<PathBuf, ImageError> {
    if rest.is_empty() {
        return Err(ImageError::UnknownSource(text.to_owned()));
    }
    Ok(PathBuf::from(rest))
}

/// Splits `PATH[:TAG]`: a path that exists as written wins; otherwise the text after
/// the last colon is a tag unless it holds a slash.
fn parse_oci(rest: &str) -> ImageSource {
    if !Path::new(rest).exists()
        && let Some((path, tag)) = rest.rsplit_once(':')
        && !tag.is_empty()
        && !tag.contains('/')
        && !path.is_empty()
    {
        return ImageSource::OciLayout {
            path: PathBuf::from(path),
            tag: Some(tag.to_owned()),
        };
    }
    ImageSource::OciLayout {
        path: PathBuf::from(rest),
        tag: None,
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::OciLayout { path, tag: None } => write!(f, "oci:{}", path.display()),
            ImageSource::OciLayout {
                path,
                tag: Some(tag),
            } => write!(f, "oci:{}:{tag}", path.display()),
            ImageSource::OciArchive(path) => write!(f, "oci-archive:{}", path.display()),
            ImageSource::DockerArchive(path) => write!(f, "docker-archive:{}", path.display()),
            ImageSource::Dir(path) => write!(f, "dir:{}", path.display()),
        }
    }
}

impl std::str::FromStr for ImageSource {
    type Err = ImageError;

    fn from_str(text: &str) -> Result<ImageSource, ImageError> {
        ImageSource::parse(text)
    }
}
